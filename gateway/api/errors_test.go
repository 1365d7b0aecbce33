package api

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestAuth(t *testing.T) {
	_, h := newTest(t)
	for _, auth := range []string{
		"",                        // missing
		"apikey wrong",            // wrong key
		"apikey " + testKey + "x", // longer
		"apikey " + testKey[:4],   // prefix
		"Bearer " + testKey,       // wrong scheme
		testKey,                   // no scheme
		"apikey",                  // no key
	} {
		r := send(h, http.MethodPost, "/api/info", auth, `{}`)
		if r.status != http.StatusUnauthorized || r.errorReason() != "missing or invalid API key" ||
			r.header.Get("WWW-Authenticate") == "" || r.header.Get("Content-Type") != "application/json" {
			t.Errorf("Authorization %q: %d %v %s", auth, r.status, r.header, r.body)
		}
	}
	// The scheme is case-insensitive (RFC 9110 §11.1).
	if r := send(h, http.MethodPost, "/api/info", "ApiKey  "+testKey, `{}`); r.status != 200 {
		t.Errorf("ApiKey: %d %s", r.status, r.body)
	}
	// Authentication comes before routing: nothing leaks without a key.
	if r := send(h, http.MethodGet, "/nope", "", ``); r.status != http.StatusUnauthorized {
		t.Errorf("unauthenticated 404: %d", r.status)
	}
}

func TestEmptyKeyRefusesAll(t *testing.T) {
	h := New("", newFake(), nil)
	for _, auth := range []string{"apikey ", "apikey", ""} {
		if r := send(h, http.MethodPost, "/api/info", auth, `{}`); r.status != http.StatusUnauthorized {
			t.Errorf("%q: %d", auth, r.status)
		}
	}
}

func TestNotFound(t *testing.T) {
	_, h := newTest(t)
	for _, path := range []string{"/api/nope", "/api/", "/api", "/", "/api/publish/", "/publish", "/api/Publish"} {
		r := send(h, http.MethodPost, path, "apikey "+testKey, `{}`)
		if r.status != http.StatusNotFound || !strings.HasPrefix(r.errorReason(), "no such method") {
			t.Errorf("%s: %d %s", path, r.status, r.body)
		}
	}
}

func TestMethodNotAllowed(t *testing.T) {
	_, h := newTest(t)
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
		r := send(h, m, "/api/publish", "apikey "+testKey, ``)
		if r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != "POST" || r.errorReason() == "" {
			t.Errorf("%s: %d %v %s", m, r.status, r.header, r.body)
		}
	}
}

func TestTooLarge(t *testing.T) {
	f, h := newTest(t)
	big := `{"channel":"c","data":"` + strings.Repeat("x", maxBodyBytes) + `"}`
	// With a Content-Length, refused before reading.
	if r := call(h, "publish", big); r.status != http.StatusRequestEntityTooLarge || r.errorReason() != "body over 1048576 bytes" {
		t.Fatalf("%d %s", r.status, r.body)
	}
	// Chunked, over a real connection: refused while reading.
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/publish", struct{ *strings.Reader }{strings.NewReader(big)})
	req.Header.Set("Authorization", "apikey "+testKey)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || req.ContentLength != 0 {
		t.Fatalf("chunked: %d (content length %d)", resp.StatusCode, req.ContentLength)
	}
	// Exactly the limit is fine.
	exact := `{"channel":"c","data":"` + strings.Repeat("x", maxBodyBytes-25) + `"}`
	if len(exact) != maxBodyBytes {
		t.Fatalf("test body is %d bytes", len(exact))
	}
	if r := call(h, "publish", exact); r.status != 200 {
		t.Fatalf("at the limit: %d %s", r.status, r.body)
	}
	if f.calls("c") != 1 {
		t.Fatal("an oversized publish reached the backend")
	}
}

func TestBadRequest(t *testing.T) {
	long := strings.Repeat("r", maxReasonBytes+1)
	tests := []struct{ method, body, reason string }{
		// Malformed JSON.
		{"publish", `{`, "malformed JSON: unexpected end of input"},
		{"publish", `{"channel":"c",}`, "malformed JSON at byte 16: invalid character '}' looking for beginning of object key string"},
		{"publish", `{"channel":"c"} x`, "malformed JSON: data after the top-level object"},
		{"publish", `{} {}`, "malformed JSON: data after the top-level object"},
		{"publish", `[1]`, "body must be a JSON object, not array"},
		{"info", `"x"`, "body must be a JSON object, not string"},
		// Wrong types.
		{"publish", `{"channel":5,"data":1}`, `field "channel" must be a string, not number`},
		{"publish", `{"channel":"c","b64":1}`, `field "b64" must be a string, not number`},
		{"publish", `{"channel":"c","data":1,"idempotency_key":7}`, `field "idempotency_key" must be a string, not number`},
		{"history", `{"channel":"c","since":-1}`, `field "since" must be an integer from 0 to 18446744073709551615, not number -1`},
		{"history", `{"channel":"c","since":1.5}`, `field "since" must be an integer from 0 to 18446744073709551615, not number 1.5`},
		{"history", `{"channel":"c","limit":"10"}`, `field "limit" must be an integer, not string`},
		{"history", `{"channel":"c","reverse":"yes"}`, `field "reverse" must be a boolean, not string`},
		{"disconnect", `{"user":"1","code":4000.5}`, `field "code" must be an integer, not number 4000.5`},
		{"disconnect", `{"user":{}}`, `field "user" must be a string, not object`},
		{"broadcast", `{"channels":"a","data":1}`, `field "channels" must be an array of strings, not string`},
		{"broadcast", `{"channels":["a",1],"data":1}`, `field "channels" must be an array of strings, not an array with a number`},
		// Missing fields.
		{"publish", ``, `missing "channel"`},
		{"publish", `{"data":1}`, `missing "channel"`},
		{"publish", `{"channel":null,"data":1}`, `missing "channel"`},
		{"publish", `{"channel":"c"}`, `missing "data" or "b64"`},
		{"publish", `{"channel":"c","b64":null}`, `missing "data" or "b64"`},
		{"broadcast", `{"data":1}`, `missing "channels"`},
		{"broadcast", `{"channels":[],"data":1}`, `missing "channels"`},
		{"disconnect", `{}`, `missing "user" or "client"`},
		{"disconnect", `{"user":""}`, `missing "user" or "client"`},
		{"unsubscribe", `{"user":"1"}`, `missing "channel"`},
		{"unsubscribe", `{"channel":"c"}`, `missing "user" or "client"`},
		{"presence", `{}`, `missing "channel"`},
		{"presence_stats", `{}`, `missing "channel"`},
		{"history", `{}`, `missing "channel"`},
		// Invalid values.
		{"publish", `{"channel":"a b","data":1}`, `channel: bad channel name "a b" (1 to the gateway's limit of bytes from A-Z a-z 0-9 _ : # , . @ = + - /)`},
		{"publish", `{"channel":"$sys","data":1}`, `channel: bad channel name "$sys"`},
		{"publish", `{"channel":"` + strings.Repeat("c", 129) + `","data":1}`, `channel: bad channel name "ccc`},
		{"publish", `{"channel":"c","data":1,"b64":""}`, `"data" and "b64" are mutually exclusive`},
		{"publish", `{"channel":"c","b64":"!!"}`, `"b64" is not standard base64: illegal base64 data at input byte 0`},
		{"publish", `{"channel":"c","b64":"AA"}`, `"b64" is not standard base64`},
		{"publish", `{"channel":"c","data":1,"idempotency_key":""}`, `"idempotency_key" must be 1 to 256 bytes`},
		{"publish", `{"channel":"c","data":1,"idempotency_key":"` + strings.Repeat("k", 257) + `"}`, `"idempotency_key" must be 1 to 256 bytes`},
		{"broadcast", `{"channels":["a","b c"],"data":1}`, `channels[1]: bad channel name "b c"`},
		{"broadcast", `{"channels":["a","b","a"],"data":1}`, `channels[2]: channel "a" is listed twice`},
		{"broadcast", `{"channels":["a"]}`, `missing "data" or "b64"`},
		{"disconnect", `{"user":"1","code":1000}`, `"code" must be from 4000 to 4999, not 1000`},
		{"disconnect", `{"user":"1","code":70000}`, `"code" must be from 4000 to 4999, not 70000`},
		{"disconnect", `{"user":"1","reason":"` + long + `"}`, `"reason" is 124 bytes, at most 123 fit in a close frame`},
		{"unsubscribe", `{"client":"x","channel":"*"}`, `channel: bad channel name "*"`},
		{"history", `{"channel":"c","limit":-1}`, `"limit" must not be negative`},
		{"channels", `{"pattern":"chat *"}`, `"pattern" "chat *": only channel-name characters and '*' are allowed`},
		{"channels", `{"pattern":"` + strings.Repeat("*", 257) + `"}`, `"pattern" is over 256 bytes`},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+clip(tt.body)[:min(len(tt.body), 40)], func(t *testing.T) {
			f, h := newTest(t)
			r := call(h, tt.method, tt.body)
			if r.status != http.StatusBadRequest || !strings.HasPrefix(r.errorReason(), tt.reason) {
				t.Fatalf("%s %s:\ngot  %d %s\nwant 400 %s", tt.method, tt.body, r.status, r.body, tt.reason)
			}
			if f.last() != nil || len(f.published) != 0 {
				t.Fatalf("a bad request reached the backend: %v %v", f.last(), f.published)
			}
		})
	}
}

func TestBroadcastTooManyChannels(t *testing.T) {
	_, h := newTest(t)
	var b strings.Builder
	b.WriteString(`{"data":1,"channels":["c0"`)
	for i := 1; i <= maxBroadcastChannels; i++ {
		fmt.Fprintf(&b, `,"c%d"`, i)
	}
	b.WriteString(`]}`)
	r := call(h, "broadcast", b.String())
	if r.status != 400 || r.errorReason() != `"channels" has 10001 entries, at most 10000 are allowed` {
		t.Fatalf("%d %s", r.status, r.body)
	}
}

func TestBackendErrors(t *testing.T) {
	tests := []struct {
		err        error
		status     int
		retryAfter string
	}{
		{fmt.Errorf("broker: delivery queue full: %w", ErrUnavailable), 503, "1"},
		{fmt.Errorf("presence disabled for channel: %w", ErrInvalid), 400, ""},
		{errString("redis: connection refused"), 500, ""},
	}
	for _, tt := range tests {
		f, h := newTest(t)
		f.err = tt.err
		f.failOn["c"] = tt.err
		for _, req := range [][2]string{
			{"publish", `{"channel":"c","data":1}`},
			{"disconnect", `{"user":"1"}`},
			{"unsubscribe", `{"user":"1","channel":"c"}`},
			{"presence", `{"channel":"c"}`},
			{"presence_stats", `{"channel":"c"}`},
			{"history", `{"channel":"c"}`},
			{"channels", `{}`},
			{"info", `{}`},
		} {
			r := call(h, req[0], req[1])
			if r.status != tt.status || r.errorReason() != tt.err.Error() || r.header.Get("Retry-After") != tt.retryAfter {
				t.Errorf("%s with %v: %d %v %s", req[0], tt.err, r.status, r.header, r.body)
			}
		}
	}
}
