package gateway

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
)

func testUpgrader(mutate func(*Config)) *upgrader {
	cfg := DefaultConfig()
	cfg.Echo = true
	if mutate != nil {
		mutate(&cfg)
	}
	return &upgrader{cfg: &cfg, origins: newOriginPolicy(cfg.AllowedOrigins)}
}

func request(path string, extra ...string) []byte {
	lines := []string{
		"GET " + path + " HTTP/1.1",
		"Host: example.com",
		"Upgrade: websocket",
		"Connection: Upgrade",
		"Sec-WebSocket-Version: 13",
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
	}
	return []byte(strings.Join(append(lines, extra...), "\r\n") + "\r\n\r\n")
}

type hookFunc func(*HandshakeRequest) (Identity, error)

func (f hookFunc) Handshake(r *HandshakeRequest) (Identity, error) { return f(r) }

func TestUpgradeOutcomes(t *testing.T) {
	deny := hookFunc(func(r *HandshakeRequest) (Identity, error) {
		if r.Header.Get("Authorization") != "Bearer ok" {
			return Identity{}, &RejectError{Status: http.StatusUnauthorized, Reason: "bad token"}
		}
		return Identity{UserID: "42"}, nil
	})
	cases := []struct {
		name     string
		mutate   func(*Config)
		req      []byte
		status   string
		protocol string
		user     string
	}{
		{"echo", nil, request("/echo"), "101", "", ""},
		{"ws with query", nil, request("/ws?x=1"), "101", "", ""},
		{"msgpack subprotocol", nil, request("/ws", "Sec-WebSocket-Protocol: foo, wsgate.v1.msgpack, wsgate.v1.json"), "101", ProtocolMsgpack, ""},
		{"json subprotocol", nil, request("/ws", "Sec-WebSocket-Protocol: wsgate.v1.json"), "101", ProtocolJSON, ""},
		{"echo ignores subprotocols", nil, request("/echo", "Sec-WebSocket-Protocol: wsgate.v1.json"), "101", "", ""},
		{"unknown path", nil, request("/nope"), "404", "", ""},
		{"echo disabled", func(c *Config) { c.Echo = false }, request("/echo"), "404", "", ""},
		{"same-host origin", nil, request("/ws", "Origin: https://example.com"), "101", "", ""},
		{"foreign origin", nil, request("/ws", "Origin: https://evil.test"), "403", "", ""},
		{"allow-listed origin", func(c *Config) { c.AllowedOrigins = []string{"*.evil.test"} }, request("/ws", "Origin: https://a.evil.test"), "101", "", ""},
		{"allow-list excludes same host", func(c *Config) { c.AllowedOrigins = []string{"https://app.test"} }, request("/ws", "Origin: https://example.com"), "403", "", ""},
		{"bad version", nil, bytes.Replace(request("/ws"), []byte("Version: 13"), []byte("Version: 8"), 1), "426", "", ""},
		{"not GET", nil, bytes.Replace(request("/ws"), []byte("GET"), []byte("POST"), 1), "405", "", ""},
		{"garbage", nil, []byte("\x00\x01\r\n\r\n"), "400", "", ""},
		{"hook rejects", func(c *Config) { c.Hook = deny }, request("/ws"), "401", "", ""},
		{"hook accepts", func(c *Config) { c.Hook = deny }, request("/ws", "Authorization: Bearer ok"), "101", "", "42"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := testUpgrader(tc.mutate).upgrade(tc.req)
			if got := string(res.response); !strings.HasPrefix(got, "HTTP/1.1 "+tc.status) {
				t.Fatalf("response %q, want status %s", got, tc.status)
			}
			if res.ok != (tc.status == "101") || res.protocol != tc.protocol || res.identity.UserID != tc.user {
				t.Fatalf("ok=%v protocol=%q user=%q", res.ok, res.protocol, res.identity.UserID)
			}
		})
	}
}

// FuzzUpgrade feeds arbitrary request heads to the upgrade parser: it must
// never panic, always answer with an HTTP response, and only say ok with a
// 101 carrying Sec-WebSocket-Accept.
func FuzzUpgrade(f *testing.F) {
	f.Add(request("/echo"))
	f.Add(request("/ws", "Sec-WebSocket-Protocol: wsgate.v1.json", "Origin: http://example.com"))
	f.Add(request("/ws", "Origin: ::::"))
	f.Add([]byte("GET / HTTP/1.0\r\n\r\n"))
	f.Add([]byte("GET /ws HTTP/1.1\r\nHost:\r\nUpgrade: websocket\r\n\r\n"))
	up := testUpgrader(nil)
	f.Fuzz(func(t *testing.T, req []byte) {
		if !bytes.HasSuffix(req, []byte("\r\n\r\n")) {
			req = append(req, "\r\n\r\n"...)
		}
		res := up.upgrade(req)
		if !bytes.HasPrefix(res.response, []byte("HTTP/1.1 ")) {
			t.Fatalf("response %q is not HTTP", res.response)
		}
		if res.ok && !bytes.Contains(res.response, []byte("Sec-WebSocket-Accept: ")) {
			t.Fatalf("ok without an accept header: %q", res.response)
		}
		if res.ok != bytes.HasPrefix(res.response, []byte("HTTP/1.1 101")) {
			t.Fatalf("ok=%v with response %q", res.ok, res.response)
		}
	})
}
