package auth

import (
	"net/http"
	"net/url"
	"strings"
)

// Token finds the client's token: "Authorization: Bearer", then the query
// parameter, then the cookie. The first source that holds one wins; the
// others are not looked at, so a stale cookie cannot shadow a fresh header.
func (a *Authenticator) Token(uri string, header http.Header) (string, bool) {
	if t := bearer(header); t != "" {
		return t, true
	}
	if t := queryParam(uri, a.cfg.QueryParam); t != "" {
		return t, true
	}
	if a.cfg.Cookie != "" {
		if t := cookie(header, a.cfg.Cookie); t != "" {
			return t, true
		}
	}
	return "", false
}

// bearer returns the token of an "Authorization: Bearer …" header; other
// schemes (Basic, …) are not ours and are ignored.
func bearer(h http.Header) string {
	scheme, tok, ok := strings.Cut(h.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

// queryParam reads one parameter from a request target. Browsers cannot set
// headers on a WebSocket, so the query is how most of them send a token.
func queryParam(uri, name string) string {
	_, q, ok := strings.Cut(uri, "?")
	if !ok {
		return ""
	}
	// ParseQuery keeps going past a bad pair, so an unrelated malformed
	// parameter does not hide the token; its error is therefore ignored.
	vals, _ := url.ParseQuery(q)
	return vals.Get(name)
}

// cookie reuses net/http's lenient parser, which skips malformed cookies
// instead of failing the whole header the way http.ParseCookie does.
func cookie(h http.Header, name string) string {
	r := http.Request{Header: h}
	c, err := r.Cookie(name)
	if err != nil {
		return ""
	}
	return c.Value
}
