package auth

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestVerifySubscription(t *testing.T) {
	k := keys()
	a := newAuth(t, Config{HMACSecret: testSecret, Issuer: testIssuer})
	sub := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodHS256, testSecret, c, "") }
	cases := []struct {
		name, token, channel, user string
		status                     int
		code                       string
	}{
		{"right channel and user", sub(with(claims(), "channel", "news")), "news", "42", 0, ""},
		{"wrong channel", sub(with(claims(), "channel", "news")), "sports", "42", 403, CodeChannelMismatch},
		{"wrong user", sub(with(claims(), "channel", "news")), "news", "7", 403, CodeUserMismatch},
		{"anonymous connection", sub(with(claims(), "channel", "news")), "news", "", 403, CodeUserMismatch},
		{"connection token (no channel claim)", sub(claims()), "news", "42", 403, CodeChannelMismatch},
		{"expired", sub(with(claims(), "channel", "news", "exp", time.Now().Add(-time.Minute).Unix())), "news", "42", 401, CodeTokenExpired},
		{"wrong issuer", sub(with(claims(), "channel", "news", "iss", "x")), "news", "42", 401, CodeIssuerInvalid},
		{"no sub", sub(with(claims(), "channel", "news", "sub", nil)), "news", "", 401, CodeSubMissing},
		{"bad signature", sign(t, jwt.SigningMethodHS256, []byte("fedcba9876543210fedcba9876543210"), with(claims(), "channel", "news"), ""), "news", "42", 401, CodeSignatureInvalid},
		{"alg none", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, with(claims(), "channel", "news"), ""), "news", "42", 401, CodeAlgorithmInvalid},
		{"RS256 not configured", sign(t, jwt.SigningMethodRS256, k.rsaA, with(claims(), "channel", "news"), ""), "news", "42", 401, CodeAlgorithmInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := a.VerifySubscription(tc.token, tc.channel, tc.user)
			if tc.status == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantErr(t, err, tc.status, tc.code)
		})
	}
}
