package loadclient

import (
	"strings"
	"testing"
)

func TestAcceptForRFCExample(t *testing.T) {
	// RFC 6455 §1.3.
	if got := acceptFor("dGhlIHNhbXBsZSBub25jZQ=="); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("acceptFor = %q", got)
	}
}

func TestRequest(t *testing.T) {
	req := string(newRequestTemplate("127.0.0.1:9", "/ws", "wsgate.v1", "https://a.example", false).build("KEY"))
	for _, want := range []string{"GET /ws HTTP/1.1\r\n", "Host: 127.0.0.1:9\r\n", "Sec-WebSocket-Protocol: wsgate.v1\r\n", "Origin: https://a.example\r\n", "Sec-WebSocket-Key: KEY\r\n\r\n", "Sec-WebSocket-Version: 13\r\n"} {
		if !strings.Contains(req, want) {
			t.Errorf("request lacks %q:\n%s", want, req)
		}
	}
	if !strings.HasSuffix(req, "\r\n\r\n") || strings.Count(req, "\r\n\r\n") != 1 {
		t.Errorf("request head not terminated once:\n%q", req)
	}
}

func TestCheckResponse(t *testing.T) {
	key := newKey()
	ok := "HTTP/1.1 101 Switching Protocols\r\nupgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Accept: " + acceptFor(key)
	tests := []struct {
		name, head, proto, wantErr string
	}{
		{"ok", ok, "", ""},
		{"ok with protocol", ok + "\r\nSec-WebSocket-Protocol: p1", "p1", ""},
		{"refused", "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0", "", "upgrade refused"},
		{"bad accept", strings.Replace(ok, acceptFor(key), "AAAA", 1), "", "Sec-WebSocket-Accept"},
		{"no upgrade", strings.Replace(ok, "upgrade: WebSocket", "X: y", 1), "", "Upgrade"},
		{"protocol not selected", ok, "p1", "subprotocol"},
		{"protocol not offered", ok + "\r\nSec-WebSocket-Protocol: p1", "", "not offered"},
		{"malformed", ok + "\r\nnonsense", "", "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := checkResponse([]byte(tt.head), key, tt.proto, false)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}
