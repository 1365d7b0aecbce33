package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"strings"
)

// maxJWKSSize keeps a misconfigured path (a log file, /dev/zero) from being
// slurped whole.
const maxJWKSSize = 1 << 20

type jwksDoc struct {
	Keys []jwkJSON `json:"keys"`
}

// jwkJSON holds the RFC 7517/7518 members we use.
type jwkJSON struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// loadJWKS reads a JWKS file into kid → public key. Keys we cannot use
// (encryption keys, other algorithms or curves) are skipped, as an identity
// provider's set often holds some; a usable key without a kid, a duplicate
// kid or a broken key is an error, since it would fail every token silently.
func loadJWKS(path string) (map[string]any, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("JWKS: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxJWKSSize+1))
	if err != nil {
		return nil, fmt.Errorf("JWKS: %w", err)
	}
	if len(data) > maxJWKSSize {
		return nil, fmt.Errorf("JWKS %s: larger than %d bytes", path, maxJWKSSize)
	}
	var doc jwksDoc
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("JWKS %s: %w", path, err)
	}
	keys := make(map[string]any, len(doc.Keys))
	for i, j := range doc.Keys {
		if !usable(j) {
			continue
		}
		if j.Kid == "" {
			return nil, fmt.Errorf("JWKS %s: key %d has no kid", path, i)
		}
		if _, dup := keys[j.Kid]; dup {
			return nil, fmt.Errorf("JWKS %s: duplicate kid %q", path, j.Kid)
		}
		key, err := j.publicKey()
		if err != nil {
			return nil, fmt.Errorf("JWKS %s: kid %q: %w", path, j.Kid, err)
		}
		keys[j.Kid] = key
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("JWKS %s: no RS256 or ES256 signing key", path)
	}
	return keys, nil
}

func usable(j jwkJSON) bool {
	if j.Use != "" && j.Use != "sig" {
		return false
	}
	switch j.Kty {
	case "RSA":
		return j.Alg == "" || j.Alg == "RS256"
	case "EC":
		return j.Crv == "P-256" && (j.Alg == "" || j.Alg == "ES256")
	}
	return false
}

func (j jwkJSON) publicKey() (any, error) {
	switch j.Kty {
	case "RSA":
		n, err := b64uint(j.N)
		if err != nil {
			return nil, fmt.Errorf("n: %w", err)
		}
		e, err := b64uint(j.E)
		if err != nil {
			return nil, fmt.Errorf("e: %w", err)
		}
		if !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 || e.Bit(0) == 0 {
			return nil, errors.New("e: not a sensible RSA exponent")
		}
		return checkKey(&rsa.PublicKey{N: n, E: int(e.Int64())})
	case "EC":
		x, err := b64coord(j.X)
		if err != nil {
			return nil, fmt.Errorf("x: %w", err)
		}
		y, err := b64coord(j.Y)
		if err != nil {
			return nil, fmt.Errorf("y: %w", err)
		}
		// ParseUncompressedPublicKey also checks the point is on the curve,
		// which a JWK built by hand from x and y would not.
		key, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return nil, err
		}
		return checkKey(key)
	}
	return nil, fmt.Errorf("kty %q", j.Kty)
}

// b64 decodes base64url, tolerating the padding some producers add.
func b64(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

func b64uint(s string) (*big.Int, error) {
	b, err := b64(s)
	if err != nil {
		return nil, err
	}
	if len(b) == 0 {
		return nil, errors.New("empty")
	}
	return new(big.Int).SetBytes(b), nil
}

// b64coord decodes a P-256 coordinate, left-padding producers that strip
// leading zero bytes.
func b64coord(s string) ([]byte, error) {
	b, err := b64(s)
	if err != nil {
		return nil, err
	}
	const size = 32
	if len(b) == 0 || len(b) > size {
		return nil, fmt.Errorf("%d bytes, want %d", len(b), size)
	}
	return append(make([]byte, size-len(b), size), b...), nil
}
