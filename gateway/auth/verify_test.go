package auth

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

type tokenCase struct {
	name   string
	token  func(t *testing.T) string
	status int    // 0 = must verify
	code   string // expected error code
}

func runCases(t *testing.T, a *Authenticator, cases []tokenCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id, err := a.Verify(tc.token(t))
			if tc.status == 0 {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if id.UserID != "42" || id.Anonymous || id.ExpiresAt.IsZero() {
					t.Fatalf("identity %+v", id)
				}
				return
			}
			wantErr(t, err, tc.status, tc.code)
		})
	}
}

func TestRS256Matrix(t *testing.T) {
	k := keys()
	rsaPEM := pkixPEM(t, &k.rsaA.PublicKey)
	a := newAuth(t, Config{PublicKeyPEM: rsaPEM, Issuer: testIssuer, Audience: testAudience})
	rs := func(c jwt.MapClaims) func(*testing.T) string {
		return func(t *testing.T) string { return sign(t, jwt.SigningMethodRS256, k.rsaA, c, "") }
	}
	now := time.Now()
	runCases(t, a, []tokenCase{
		{"valid", rs(claims()), 0, ""},
		{"valid/aud array", rs(with(claims(), "aud", []string{"other", testAudience})), 0, ""},
		{"valid/kid ignored without JWKS", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodRS256, k.rsaA, claims(), "whatever")
		}, 0, ""},
		{"expired", rs(with(claims(), "exp", now.Add(-time.Minute).Unix())), 401, CodeTokenExpired},
		{"not yet valid/nbf", rs(with(claims(), "nbf", now.Add(time.Minute).Unix())), 401, CodeTokenNotValidYet},
		{"not yet valid/iat", rs(with(claims(), "iat", now.Add(time.Minute).Unix())), 401, CodeTokenNotValidYet},
		{"wrong signature/other key", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodRS256, k.rsaB, claims(), "")
		}, 401, CodeSignatureInvalid},
		{"wrong signature/tampered payload", func(t *testing.T) string {
			good := strings.Split(sign(t, jwt.SigningMethodRS256, k.rsaA, claims(), ""), ".")
			evil := strings.Split(sign(t, jwt.SigningMethodRS256, k.rsaB, with(claims(), "sub", "1"), ""), ".")
			return good[0] + "." + evil[1] + "." + good[2]
		}, 401, CodeSignatureInvalid},
		{"wrong issuer", rs(with(claims(), "iss", "https://evil.test")), 401, CodeIssuerInvalid},
		{"missing issuer", rs(with(claims(), "iss", nil)), 401, CodeIssuerInvalid},
		{"wrong audience", rs(with(claims(), "aud", "other")), 401, CodeAudienceInvalid},
		{"missing audience", rs(with(claims(), "aud", nil)), 401, CodeAudienceInvalid},
		{"wrong issuer beats expired", rs(with(claims(), "iss", "x", "exp", now.Add(-time.Minute).Unix())), 401, CodeIssuerInvalid},
		{"no exp", rs(with(claims(), "exp", nil)), 401, CodeExpMissing},
		// RFC 7519: NumericDate is a JSON number. jwt's own decoding takes a
		// string of digits too; a future exp as a string must not pass.
		{"exp as a string", rs(with(claims(), "exp", strconv.FormatInt(now.Add(time.Hour).Unix(), 10))), 401, CodeTokenMalformed},
		{"nbf as a string", rs(with(claims(), "nbf", strconv.FormatInt(now.Add(-time.Hour).Unix(), 10))), 401, CodeTokenMalformed},
		{"iat as a string", rs(with(claims(), "iat", strconv.FormatInt(now.Unix(), 10))), 401, CodeTokenMalformed},
		{"exp null", rs(with(claims(), "exp", json.RawMessage("null"))), 401, CodeTokenMalformed},
		{"exp as an object", rs(with(claims(), "exp", map[string]any{"n": now.Add(time.Hour).Unix()})), 401, CodeTokenMalformed},
		{"valid/exp as a float", rs(with(claims(), "exp", float64(now.Add(time.Hour).Unix())+0.5)), 0, ""},
		{"no sub", rs(with(claims(), "sub", nil)), 401, CodeSubMissing},
		{"alg none", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(), "")
		}, 401, CodeAlgorithmInvalid},
		{"alg confusion/HS256 signed with RSA public key PEM", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodHS256, rsaPEM, claims(), "")
		}, 401, CodeAlgorithmInvalid},
		{"alg confusion/HS256 signed with RSA public key DER", func(t *testing.T) string {
			der, _ := pemDER(rsaPEM)
			return sign(t, jwt.SigningMethodHS256, der, claims(), "")
		}, 401, CodeAlgorithmInvalid},
		{"ES256 while configured RS256", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodES256, k.ecA, claims(), "")
		}, 401, CodeAlgorithmInvalid},
		{"RS512 (not configured)", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodRS512, k.rsaA, claims(), "")
		}, 401, CodeAlgorithmInvalid},
		{"unknown alg", func(*testing.T) string {
			return b64json(`{"alg":"XX999","typ":"JWT"}`) + "." + b64json(`{"sub":"42"}`) + ".c2ln"
		}, 401, CodeAlgorithmInvalid},
		{"malformed/not a JWT", func(*testing.T) string { return "hello" }, 401, CodeTokenMalformed},
		{"malformed/garbage segments", func(*testing.T) string { return "a.b.c" }, 401, CodeTokenMalformed},
		{"malformed/channels not an array", rs(with(claims(), "channels", "news")), 401, CodeTokenMalformed},
		{"malformed/too long", func(*testing.T) string { return strings.Repeat("a", maxTokenLen+1) }, 401, CodeTokenMalformed},
		{"subscription token used to connect", rs(with(claims(), "channel", "news")), 401, CodeTokenWrongType},
		{"empty", func(*testing.T) string { return "" }, 401, CodeTokenMissing},
	})
}

func TestChannelsClaim(t *testing.T) {
	k := keys()
	a := newAuth(t, Config{PublicKeyPEM: pkixPEM(t, &k.rsaA.PublicKey)})
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	tok := sign(t, jwt.SigningMethodRS256, k.rsaA, with(claims(), "channels", []string{"news", "chat:1"}, "exp", exp.Unix()), "")
	id, err := a.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(id.Channels, []string{"news", "chat:1"}) || !id.ExpiresAt.Equal(exp) || id.UserID != "42" {
		t.Fatalf("identity %+v", id)
	}
	// No channels claim: nil, not an empty grant-all or deny-all list.
	id, err = a.Verify(sign(t, jwt.SigningMethodRS256, k.rsaA, claims(), ""))
	if err != nil || id.Channels != nil {
		t.Fatalf("id %+v err %v", id, err)
	}
}

func TestLeeway(t *testing.T) {
	k := keys()
	now := time.Now()
	cases := []jwt.MapClaims{
		with(claims(), "exp", now.Add(-20*time.Second).Unix()),
		with(claims(), "nbf", now.Add(20*time.Second).Unix()),
		with(claims(), "iat", now.Add(20*time.Second).Unix()),
	}
	strict := newAuth(t, Config{PublicKeyPEM: pkixPEM(t, &k.rsaA.PublicKey)})
	lenient := newAuth(t, Config{PublicKeyPEM: pkixPEM(t, &k.rsaA.PublicKey), Leeway: time.Minute})
	for i, c := range cases {
		tok := sign(t, jwt.SigningMethodRS256, k.rsaA, c, "")
		if _, err := strict.Verify(tok); err == nil {
			t.Errorf("case %d: accepted without leeway", i)
		}
		if _, err := lenient.Verify(tok); err != nil {
			t.Errorf("case %d: refused within leeway: %v", i, err)
		}
	}
}

func TestHS256(t *testing.T) {
	k := keys()
	a := newAuth(t, Config{HMACSecret: testSecret})
	hs := func(key []byte) func(*testing.T) string {
		return func(t *testing.T) string { return sign(t, jwt.SigningMethodHS256, key, claims(), "") }
	}
	runCases(t, a, []tokenCase{
		{"valid", hs(testSecret), 0, ""},
		{"wrong secret", hs([]byte("fedcba9876543210fedcba9876543210")), 401, CodeSignatureInvalid},
		{"RS256 while configured HS256", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodRS256, k.rsaA, claims(), "")
		}, 401, CodeAlgorithmInvalid},
		{"HS512", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodHS512, testSecret, claims(), "")
		}, 401, CodeAlgorithmInvalid},
		{"alg none", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(), "")
		}, 401, CodeAlgorithmInvalid},
	})
}

// With both an HMAC secret and an RSA key, HS256 is allowed, but it is
// checked only against the secret: public key bytes never serve as one.
func TestHS256AndRSAConfusion(t *testing.T) {
	k := keys()
	rsaPEM := pkixPEM(t, &k.rsaA.PublicKey)
	a := newAuth(t, Config{HMACSecret: testSecret, PublicKeyPEM: rsaPEM})
	runCases(t, a, []tokenCase{
		{"HS256 valid", func(t *testing.T) string { return sign(t, jwt.SigningMethodHS256, testSecret, claims(), "") }, 0, ""},
		{"RS256 valid", func(t *testing.T) string { return sign(t, jwt.SigningMethodRS256, k.rsaA, claims(), "") }, 0, ""},
		{"HS256 signed with RSA PEM", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodHS256, rsaPEM, claims(), "")
		}, 401, CodeSignatureInvalid},
	})
}

func TestES256(t *testing.T) {
	k := keys()
	ecPEM := pkixPEM(t, &k.ecA.PublicKey)
	a := newAuth(t, Config{PublicKeyPEM: ecPEM})
	runCases(t, a, []tokenCase{
		{"valid", func(t *testing.T) string { return sign(t, jwt.SigningMethodES256, k.ecA, claims(), "") }, 0, ""},
		{"wrong key", func(t *testing.T) string { return sign(t, jwt.SigningMethodES256, k.ecB, claims(), "") }, 401, CodeSignatureInvalid},
		{"expired", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodES256, k.ecA, with(claims(), "exp", time.Now().Add(-time.Minute).Unix()), "")
		}, 401, CodeTokenExpired},
		{"RS256 while configured ES256", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodRS256, k.rsaA, claims(), "")
		}, 401, CodeAlgorithmInvalid},
		{"HS256 signed with EC PEM", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodHS256, ecPEM, claims(), "")
		}, 401, CodeAlgorithmInvalid},
	})
}

func TestCertificatePEM(t *testing.T) {
	k := keys()
	a := newAuth(t, Config{PublicKeyPEM: certPEM(t, k.rsaA)})
	if _, err := a.Verify(sign(t, jwt.SigningMethodRS256, k.rsaA, claims(), "")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate("/ws", http.Header{"Authorization": {"Bearer " + sign(t, jwt.SigningMethodRS256, k.rsaB, claims(), "")}}); err == nil {
		t.Fatal("token from another key accepted")
	}
}
