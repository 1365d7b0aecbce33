package auth

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

func TestTokenSources(t *testing.T) {
	k := keys()
	good := sign(t, jwt.SigningMethodRS256, k.rsaA, claims(), "")
	bad := sign(t, jwt.SigningMethodRS256, k.rsaB, claims(), "")
	a := newAuth(t, Config{PublicKeyPEM: pkixPEM(t, &k.rsaA.PublicKey), Cookie: "wsgate_token"})
	cases := []struct {
		name   string
		uri    string
		header http.Header
		status int
		code   string
	}{
		{"header", "/ws", http.Header{"Authorization": {"Bearer " + good}}, 0, ""},
		{"header scheme case-insensitive", "/ws", http.Header{"Authorization": {"bearer " + good}}, 0, ""},
		{"query", "/ws?token=" + good, nil, 0, ""},
		{"query among others", "/ws?room=1&bad=%zz&token=" + url.QueryEscape(good) + "&x=y", nil, 0, ""},
		{"cookie", "/ws", http.Header{"Cookie": {"theme=dark; wsgate_token=" + good + "; sid=abc"}}, 0, ""},
		{"cookie in a second Cookie header", "/ws", http.Header{"Cookie": {"theme=dark", "wsgate_token=" + good}}, 0, ""},
		{"header beats query", "/ws?token=" + bad, http.Header{"Authorization": {"Bearer " + good}}, 0, ""},
		{"query beats cookie", "/ws?token=" + good, http.Header{"Cookie": {"wsgate_token=" + bad}}, 0, ""},
		{"bad header token is not rescued by query", "/ws?token=" + good, http.Header{"Authorization": {"Bearer " + bad}}, 401, CodeSignatureInvalid},
		{"basic auth is not a token", "/ws", http.Header{"Authorization": {"Basic dXNlcjpwYXNz"}}, 401, CodeTokenMissing},
		{"other cookie only", "/ws", http.Header{"Cookie": {"sid=abc"}}, 401, CodeTokenMissing},
		{"empty query token", "/ws?token=", nil, 401, CodeTokenMissing},
		{"missing", "/ws", http.Header{}, 401, CodeTokenMissing},
		{"bad token in query", "/ws?token=" + bad, nil, 401, CodeSignatureInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id, err := a.Authenticate(tc.uri, tc.header)
			if tc.status == 0 {
				if err != nil || id.UserID != "42" {
					t.Fatalf("id %+v err %v", id, err)
				}
				return
			}
			wantErr(t, err, tc.status, tc.code)
		})
	}
}

func TestCustomQueryParamAndNoCookie(t *testing.T) {
	k := keys()
	good := sign(t, jwt.SigningMethodRS256, k.rsaA, claims(), "")
	a := newAuth(t, Config{PublicKeyPEM: pkixPEM(t, &k.rsaA.PublicKey), QueryParam: "access_token"})
	if _, err := a.Authenticate("/ws?access_token="+good, nil); err != nil {
		t.Fatal(err)
	}
	_, err := a.Authenticate("/ws?token="+good, nil)
	wantErr(t, err, 401, CodeTokenMissing)
	// Cookie "" means cookies are not a source, whatever their name.
	_, err = a.Authenticate("/ws", http.Header{"Cookie": {"token=" + good}})
	wantErr(t, err, 401, CodeTokenMissing)
}

func TestAnonymous(t *testing.T) {
	k := keys()
	a := newAuth(t, Config{PublicKeyPEM: pkixPEM(t, &k.rsaA.PublicKey), AllowAnonymous: true})
	id, err := a.Authenticate("/ws", http.Header{})
	if err != nil || !id.Anonymous || id.UserID != "" {
		t.Fatalf("id %+v err %v", id, err)
	}
	// A presented token is still checked: no silent downgrade to anonymous.
	expired := sign(t, jwt.SigningMethodRS256, k.rsaA, with(claims(), "exp", int64(1)), "")
	_, err = a.Authenticate("/ws?token="+expired, nil)
	wantErr(t, err, 401, CodeTokenExpired)
	id, err = a.Authenticate("/ws?token="+sign(t, jwt.SigningMethodRS256, k.rsaA, claims(), ""), nil)
	if err != nil || id.Anonymous || id.UserID != "42" {
		t.Fatalf("id %+v err %v", id, err)
	}
	// Anonymous access alone is a valid configuration.
	only := newAuth(t, Config{AllowAnonymous: true})
	if id, err := only.Authenticate("/ws", nil); err != nil || !id.Anonymous {
		t.Fatalf("id %+v err %v", id, err)
	}
	_, err = only.Authenticate("/ws?token="+expired, nil)
	wantErr(t, err, 401, CodeAlgorithmInvalid)
}
