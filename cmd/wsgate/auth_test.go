package main

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const testJWTSecret = "0123456789abcdef0123456789abcdef" // HS256 needs 32 bytes

// signHS256 mints a connection token for user 42 with the given claims on
// top of sub and a one-hour exp.
func signHS256(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	c := jwt.MapClaims{"sub": "42", "exp": time.Now().Add(time.Hour).Unix()}
	for k, v := range claims {
		c[k] = v
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(testJWTSecret))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestJWTLeewayDefault: with serve's default settings, a token minted on a
// clock a second ahead of the gateway's (iat or nbf one second in the
// future) is accepted, while one from a clock a minute ahead is still
// refused; --jwt-leeway 0 restores the strict check.
func TestJWTLeewayDefault(t *testing.T) {
	f, err := serveSettings(t, "--jwt-secret", testJWTSecret)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ahead := func(d time.Duration) int64 { return now.Add(d).Unix() + 1 } // +1: Unix() rounds down
	for _, c := range []jwt.MapClaims{{"iat": ahead(0)}, {"nbf": ahead(time.Second)}, {"exp": ahead(-3 * time.Second)}} {
		if _, err := f.cfg.Auth.Verify(signHS256(t, c)); err != nil {
			t.Errorf("claims %v refused with the default leeway: %v", c, err)
		}
	}
	if _, err := f.cfg.Auth.Verify(signHS256(t, jwt.MapClaims{"iat": ahead(time.Minute)})); err == nil {
		t.Error("a token issued a minute in the future was accepted with the default leeway")
	}
	strict, err := serveSettings(t, "--jwt-secret", testJWTSecret, "--jwt-leeway", "0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := strict.cfg.Auth.Verify(signHS256(t, jwt.MapClaims{"iat": ahead(0)})); err == nil {
		t.Error("--jwt-leeway 0 accepted a token issued in the future")
	}
}
