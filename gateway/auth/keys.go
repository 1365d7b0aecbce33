package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"

	"github.com/golang-jwt/jwt/v5"
)

const minRSABits = 2048

// keyring is one immutable generation of keys; Reload replaces it whole so
// a verification never sees half a rotation.
type keyring struct {
	hmac    []byte
	pem     any            // *rsa.PublicKey or *ecdsa.PublicKey, or nil
	jwks    map[string]any // kid → *rsa.PublicKey or *ecdsa.PublicKey; nil without a JWKS file
	methods []string       // exactly the algorithms the keys above can verify
	parser  *jwt.Parser
}

func newKeyring(cfg *Config, pemKey any, jwks map[string]any) *keyring {
	k := &keyring{hmac: cfg.HMACSecret, pem: pemKey, jwks: jwks}
	// Non-nil even when empty: jwt skips the method check for a nil list.
	k.methods = []string{}
	if len(k.hmac) > 0 {
		k.methods = append(k.methods, jwt.SigningMethodHS256.Alg())
	}
	for _, key := range append([]any{pemKey}, mapValues(jwks)...) {
		if alg := algFor(key); alg != "" && !slices.Contains(k.methods, alg) {
			k.methods = append(k.methods, alg)
		}
	}
	k.parser = jwt.NewParser(
		jwt.WithValidMethods(k.methods),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.Leeway),
	)
	return k
}

func mapValues(m map[string]any) []any {
	out := make([]any, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// algFor is the one algorithm a public key may verify. Tying the algorithm
// to the key's type (not to the token's header) is what defeats algorithm
// confusion.
func algFor(key any) string {
	switch k := key.(type) {
	case *rsa.PublicKey:
		return jwt.SigningMethodRS256.Alg()
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() {
			return jwt.SigningMethodES256.Alg()
		}
	}
	return ""
}

// keyfunc picks the verification key. The parser has already refused any
// algorithm outside k.methods; this also checks that the chosen key's type
// matches the algorithm, so an HS256 token is only ever checked against the
// HMAC secret and never against public key bytes.
func (k *keyring) keyfunc(t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	if alg == jwt.SigningMethodHS256.Alg() {
		if len(k.hmac) == 0 {
			return nil, errKeyMismatch
		}
		return k.hmac, nil
	}
	var key any
	if kid, has := t.Header["kid"]; has && k.jwks != nil {
		s, _ := kid.(string)
		if key = k.jwks[s]; key == nil {
			return nil, fmt.Errorf("%w: kid %q", errUnknownKey, s)
		}
	} else if k.pem != nil {
		key = k.pem
	} else {
		return nil, fmt.Errorf("%w: token has no kid", errUnknownKey)
	}
	if algFor(key) != alg {
		return nil, fmt.Errorf("%w: %s token, %T key", errKeyMismatch, alg, key)
	}
	return key, nil
}

// allows reports whether the token header names an algorithm we accept.
func (k *keyring) allows(t *jwt.Token) bool {
	alg, _ := t.Header["alg"].(string)
	return slices.Contains(k.methods, alg)
}

// parsePublicKeyPEM reads the first PEM block: a PKIX public key, a PKCS #1
// RSA public key, or a certificate (whose key is used; its validity dates
// and chain are not checked, as it is only a key container here).
func parsePublicKeyPEM(data []byte) (any, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	var (
		key any
		err error
	)
	switch block.Type {
	case "PUBLIC KEY":
		key, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		key, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			key = cert.PublicKey
		}
	default:
		return nil, fmt.Errorf("PEM block %q: want PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE (never a private key)", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("PEM block %q: %w", block.Type, err)
	}
	return checkKey(key)
}

// checkKey accepts only the key types we have an algorithm for, and refuses
// RSA keys too short to be trusted.
func checkKey(key any) (any, error) {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("RSA key is %d bits, need at least %d", k.N.BitLen(), minRSABits)
		}
		return k, nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("EC key on %s, only P-256 (ES256) is supported", k.Curve.Params().Name)
		}
		return k, nil
	default:
		return nil, fmt.Errorf("unsupported key type %T (want RSA or EC P-256)", key)
	}
}
