package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	testIssuer   = "https://issuer.test"
	testAudience = "wsgate"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef") // 32 bytes

// testKeys are generated once per test binary: RSA generation is slow under
// the race detector.
type testKeys struct {
	rsaA, rsaB *rsa.PrivateKey
	ecA, ecB   *ecdsa.PrivateKey
}

var keysOnce = sync.OnceValue(func() *testKeys {
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	var k testKeys
	var err error
	k.rsaA, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	k.rsaB, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	k.ecA, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	k.ecB, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	return &k
})

func keys() *testKeys { return keysOnce() }

// pkixPEM encodes a public key as a "PUBLIC KEY" PEM block.
func pkixPEM(t *testing.T, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// certPEM wraps priv's public key in a self-signed certificate.
func certPEM(t *testing.T, priv *rsa.PrivateKey) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "issuer.test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// claims returns a valid claim set for user 42, ready to be tweaked.
func claims() jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{
		"sub": "42",
		"iss": testIssuer,
		"aud": testAudience,
		"iat": now.Unix(),
		"exp": now.Add(time.Hour).Unix(),
	}
}

// with returns c with the given claims set (nil deletes).
func with(c jwt.MapClaims, kv ...any) jwt.MapClaims {
	for i := 0; i < len(kv); i += 2 {
		k := kv[i].(string)
		if kv[i+1] == nil {
			delete(c, k)
		} else {
			c[k] = kv[i+1]
		}
	}
	return c
}

// sign mints a token; kid "" leaves the header without one.
func sign(t *testing.T, m jwt.SigningMethod, key any, c jwt.MapClaims, kid string) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newAuth(t *testing.T, cfg Config) *Authenticator {
	t.Helper()
	a, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return a
}

// wantErr asserts err is an *Error with exactly this status and code.
func wantErr(t *testing.T, err error, status int, code string) {
	t.Helper()
	var ae *Error
	if !errors.As(err, &ae) {
		t.Fatalf("got error %v (%T), want *Error %d %s", err, err, status, code)
	}
	if ae.Status != status || ae.Code != code {
		t.Fatalf("got %d %s (%v), want %d %s", ae.Status, ae.Code, ae, status, code)
	}
	if ae.Reason == "" {
		t.Fatalf("error %v has no reason", ae)
	}
}

// jwk renders a public key as a JWK with the given kid.
func jwk(t *testing.T, kid string, pub any) map[string]string {
	t.Helper()
	enc := base64.RawURLEncoding.EncodeToString
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return map[string]string{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
			"n": enc(k.N.Bytes()), "e": enc(big.NewInt(int64(k.E)).Bytes())}
	case *ecdsa.PublicKey:
		raw, err := k.Bytes() // 0x04 || X || Y
		if err != nil {
			t.Fatal(err)
		}
		return map[string]string{"kty": "EC", "kid": kid, "crv": "P-256",
			"x": enc(raw[1:33]), "y": enc(raw[33:])}
	}
	t.Fatalf("jwk: unsupported %T", pub)
	return nil
}

// writeJWKS writes {"keys": keys} to path (created in a temp dir when "").
func writeJWKS(t *testing.T, path string, keys ...map[string]string) string {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "jwks.json")
	}
	data, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func b64json(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func pemDER(p []byte) ([]byte, error) {
	b, _ := pem.Decode(p)
	if b == nil {
		return nil, errors.New("no PEM")
	}
	return b.Bytes, nil
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func errorsIsDeadline(err error) bool { return errors.Is(err, context.DeadlineExceeded) }
