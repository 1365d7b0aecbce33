package auth

import (
	"os"
	"sync"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

func TestJWKSSelectByKid(t *testing.T) {
	k := keys()
	path := writeJWKS(t, "",
		jwk(t, "k1", &k.rsaA.PublicKey),
		jwk(t, "k2", &k.rsaB.PublicKey),
		jwk(t, "e1", &k.ecA.PublicKey),
		// Skipped: an encryption key and a symmetric key are not ours.
		map[string]string{"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"},
		map[string]string{"kty": "oct", "kid": "sym", "k": "c2VjcmV0"},
	)
	a := newAuth(t, Config{JWKSFile: path})
	rs := func(key any, kid string) func(*testing.T) string {
		return func(t *testing.T) string { return sign(t, jwt.SigningMethodRS256, key, claims(), kid) }
	}
	runCases(t, a, []tokenCase{
		{"k1", rs(k.rsaA, "k1"), 0, ""},
		{"k2", rs(k.rsaB, "k2"), 0, ""},
		{"e1 ES256", func(t *testing.T) string { return sign(t, jwt.SigningMethodES256, k.ecA, claims(), "e1") }, 0, ""},
		// Signed by a key that is in the set, but the kid points at the other one.
		{"kid selects the other key", rs(k.rsaB, "k1"), 401, CodeSignatureInvalid},
		{"unknown kid", rs(k.rsaA, "k9"), 401, CodeUnknownKey},
		{"skipped enc key", rs(k.rsaA, "enc"), 401, CodeUnknownKey},
		{"no kid and no PEM key", rs(k.rsaA, ""), 401, CodeUnknownKey},
		{"RS256 with kid of an EC key", rs(k.rsaA, "e1"), 401, CodeAlgorithmInvalid},
		{"ES256 with kid of an RSA key", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodES256, k.ecA, claims(), "k1")
		}, 401, CodeAlgorithmInvalid},
		{"HS256 not configured", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodHS256, testSecret, claims(), "k1")
		}, 401, CodeAlgorithmInvalid},
	})
}

// A token without kid falls back to PublicKeyPEM when both are configured.
func TestJWKSWithPEMFallback(t *testing.T) {
	k := keys()
	a := newAuth(t, Config{JWKSFile: writeJWKS(t, "", jwk(t, "k1", &k.rsaA.PublicKey)), PublicKeyPEM: pkixPEM(t, &k.rsaB.PublicKey)})
	if _, err := a.Verify(sign(t, jwt.SigningMethodRS256, k.rsaB, claims(), "")); err != nil {
		t.Fatalf("kid-less token via PEM: %v", err)
	}
	if _, err := a.Verify(sign(t, jwt.SigningMethodRS256, k.rsaA, claims(), "k1")); err != nil {
		t.Fatalf("k1: %v", err)
	}
	_, err := a.Verify(sign(t, jwt.SigningMethodRS256, k.rsaB, claims(), "k7"))
	wantErr(t, err, 401, CodeUnknownKey)
}

func TestJWKSReload(t *testing.T) {
	k := keys()
	path := writeJWKS(t, "", jwk(t, "k1", &k.rsaA.PublicKey))
	a := newAuth(t, Config{JWKSFile: path})
	t1 := sign(t, jwt.SigningMethodRS256, k.rsaA, claims(), "k1")
	t2 := sign(t, jwt.SigningMethodRS256, k.rsaB, claims(), "k2")
	if _, err := a.Verify(t1); err != nil {
		t.Fatal(err)
	}
	_, err := a.Verify(t2)
	wantErr(t, err, 401, CodeUnknownKey)

	// Rotate: k2 in, k1 out. Verify concurrently to let the race detector
	// check the swap.
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 50 {
				_, _ = a.Verify(t1)
			}
		})
	}
	writeJWKS(t, path, jwk(t, "k2", &k.rsaB.PublicKey))
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if _, err := a.Verify(t2); err != nil {
		t.Fatalf("k2 after reload: %v", err)
	}
	_, err = a.Verify(t1)
	wantErr(t, err, 401, CodeUnknownKey)

	// A broken file leaves the current keys in place.
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(); err == nil {
		t.Fatal("Reload accepted a broken file")
	}
	if _, err := a.Verify(t2); err != nil {
		t.Fatalf("k2 after failed reload: %v", err)
	}
}

func TestJWKSLoadErrors(t *testing.T) {
	k := keys()
	cases := map[string][]map[string]string{
		"no usable key": {{"kty": "oct", "kid": "s", "k": "c2VjcmV0"}},
		"missing kid":   {jwk(t, "", &k.rsaA.PublicKey)},
		"duplicate kid": {jwk(t, "k", &k.rsaA.PublicKey), jwk(t, "k", &k.rsaB.PublicKey)},
		"bad modulus":   {{"kty": "RSA", "kid": "k", "n": "!!", "e": "AQAB"}},
		"short modulus": {{"kty": "RSA", "kid": "k", "n": "AQAB", "e": "AQAB"}},
		"even exponent": {{"kty": "RSA", "kid": "k", "n": jwk(t, "", &k.rsaA.PublicKey)["n"], "e": "AAI"}},
		"EC off curve":  {{"kty": "EC", "kid": "k", "crv": "P-256", "x": b64json("x"), "y": b64json("y")}},
	}
	for name, ks := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := New(Config{JWKSFile: writeJWKS(t, "", ks...)}); err == nil {
				t.Fatal("New accepted the JWKS")
			}
		})
	}
	if _, err := New(Config{JWKSFile: "/nonexistent/jwks.json"}); err == nil {
		t.Fatal("New accepted a missing file")
	}
}
