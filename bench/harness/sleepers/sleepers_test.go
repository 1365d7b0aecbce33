package sleepers

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestSleepersSendHelloAndNeverRead: the server gets the hello, then its
// writes to the sleeper stall once the small buffers are full.
func TestSleepersSendHelloAndNeverRead(t *testing.T) {
	for _, text := range []bool{false, true} {
		testSleepers(t, text)
	}
}

func testSleepers(t *testing.T, text bool) {
	type outcome struct {
		hello   string
		op      int
		written int
		err     error
	}
	results := make(chan outcome, 4)
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		var o outcome
		op, msg, err := c.ReadMessage()
		if err != nil {
			results <- outcome{err: err}
			return
		}
		o.hello, o.op = string(msg), op
		chunk := make([]byte, 16<<10)
		for o.written < 64<<20 {
			_ = c.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
			if o.err = c.WriteMessage(websocket.BinaryMessage, chunk); o.err != nil {
				break
			}
			o.written += len(chunk)
		}
		results <- o
	}))
	defer srv.Close()

	s, err := Dial(context.Background(), Config{Addr: strings.TrimPrefix(srv.URL, "http://"), Path: "/", Conns: 2, Hello: []byte("hi"), HelloText: text})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Count() != 2 {
		t.Fatalf("count %d", s.Count())
	}
	wantOp := websocket.BinaryMessage
	if text {
		wantOp = websocket.TextMessage
	}
	for range 2 {
		o := <-results
		if o.hello != "hi" || o.op != wantOp || o.err == nil || o.written >= 64<<20 {
			t.Fatalf("hello %q (opcode %d, want %d), wrote %d bytes before %v", o.hello, o.op, wantOp, o.written, o.err)
		}
	}
}

func TestDialRefused(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	_, err := Dial(context.Background(), Config{Addr: strings.TrimPrefix(srv.URL, "http://"), Path: "/", Conns: 1})
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("err %v", err)
	}
	if _, err := Dial(context.Background(), Config{Addr: "localhost:1", Conns: 1}); err == nil {
		t.Fatal("non-IPv4 address accepted")
	}
}
