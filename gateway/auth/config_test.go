package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestNewRejectsBadConfig(t *testing.T) {
	k := keys()
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(k.rsaA)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]Config{
		"nothing configured": {},
		"short HMAC secret":  {HMACSecret: []byte("short")},
		"negative leeway":    {HMACSecret: testSecret, Leeway: -time.Second},
		"leeway over 5 min":  {HMACSecret: testSecret, Leeway: MaxLeeway + time.Second},
		"not PEM":            {PublicKeyPEM: []byte("not a key")},
		"private key PEM":    {PublicKeyPEM: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER})},
		"RSA 1024":           {PublicKeyPEM: pkixPEM(t, &small.PublicKey)},
		"EC P-384":           {PublicKeyPEM: pkixPEM(t, &p384.PublicKey)},
		"hook URL relative":  {HookURL: "/auth"},
		"hook URL scheme":    {HookURL: "ftp://auth.test/x"},
	}
	for name, cfg := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := New(cfg); err == nil {
				t.Fatal("New accepted the config")
			}
		})
	}
}

func TestPKCS1PEM(t *testing.T) {
	k := keys()
	p := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.rsaA.PublicKey)})
	if _, err := New(Config{PublicKeyPEM: p}); err != nil {
		t.Fatal(err)
	}
}

// The secret is copied: a caller zeroing its slice must not change the key.
func TestSecretCopied(t *testing.T) {
	secret := []byte(string(testSecret))
	a := newAuth(t, Config{HMACSecret: secret})
	clear(secret)
	tok := sign(t, jwt.SigningMethodHS256, testSecret, claims(), "")
	if _, err := a.Verify(tok); err != nil {
		t.Fatal(err)
	}
}

func TestErrorShape(t *testing.T) {
	a := newAuth(t, Config{HMACSecret: testSecret})
	_, err := a.Authenticate("/ws?token=x.y.z", http.Header{})
	var ae *Error
	if !errors.As(err, &ae) || ae.Err == nil || errors.Unwrap(err) == nil {
		t.Fatalf("want a wrapped cause, got %#v", err)
	}
	if !strings.Contains(err.Error(), CodeTokenMalformed) {
		t.Fatalf("message %q lacks the code", err)
	}
	if got := ForwardedHeaders(); got[0] != "Cookie" {
		t.Fatalf("ForwardedHeaders %v", got)
	}
	ForwardedHeaders()[0] = "X" // a copy: the allow-list cannot be changed from outside
	if ForwardedHeaders()[0] != "Cookie" {
		t.Fatal("ForwardedHeaders leaked the package slice")
	}
}
