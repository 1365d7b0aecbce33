package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	cws "github.com/coder/websocket"
	"github.com/vmihailenco/msgpack/v5"
)

// protoClient is a client of the /ws protocol built on libraries nobody
// here wrote: coder/websocket and vmihailenco/msgpack (or encoding/json).
type protoClient struct {
	t    *testing.T
	c    *cws.Conn
	json bool
}

func dialProto(t *testing.T, addr string, json bool) *protoClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	proto := "wsgate.v1.msgpack"
	if json {
		proto = "wsgate.v1.json"
	}
	c, resp, err := cws.Dial(ctx, "ws://"+addr+"/ws", &cws.DialOptions{Subprotocols: []string{proto}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != proto {
		t.Fatalf("negotiated %q, want %q", got, proto)
	}
	c.SetReadLimit(1 << 20)
	t.Cleanup(func() { c.CloseNow() })
	return &protoClient{t: t, c: c, json: json}
}

func (p *protoClient) send(cmd map[string]any) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var b []byte
	var err error
	typ := cws.MessageBinary
	if p.json {
		typ = cws.MessageText
		b, err = json.Marshal(cmd)
	} else {
		b, err = msgpack.Marshal(cmd)
	}
	if err != nil {
		p.t.Fatalf("encode: %v", err)
	}
	if err := p.c.Write(ctx, typ, b); err != nil {
		p.t.Fatalf("write: %v", err)
	}
}

// recv returns the next server frame decoded into a generic map.
func (p *protoClient) recv() map[string]any {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	typ, b, err := p.c.Read(ctx)
	if err != nil {
		p.t.Fatalf("read: %v", err)
	}
	var m map[string]any
	if p.json {
		if typ != cws.MessageText {
			p.t.Fatalf("JSON connection got a binary frame")
		}
		err = json.Unmarshal(b, &m)
	} else {
		if typ != cws.MessageBinary {
			p.t.Fatalf("msgpack connection got a text frame")
		}
		err = msgpack.Unmarshal(b, &m)
	}
	if err != nil {
		p.t.Fatalf("decode %q: %v", b, err)
	}
	return m
}

// expect reads a frame and checks the given fields (numbers compared as
// printed, so msgpack's and JSON's number types need not agree).
func (p *protoClient) expect(want map[string]any) map[string]any {
	p.t.Helper()
	got := p.recv()
	for k, v := range want {
		if fmt.Sprint(got[k]) != fmt.Sprint(v) {
			p.t.Fatalf("field %q = %v, want %v (frame %v)", k, got[k], v, got)
		}
	}
	return got
}

// TestProtocolRoundTrip: subscribe, publish from another connection (and
// another encoding), receive the message with its offset, ping, unsubscribe.
func TestProtocolRoundTrip(t *testing.T) {
	srv := startServer(t, nil)
	addr := srv.Addr().String()
	for _, tc := range []struct {
		name         string
		subJSON, pub bool
	}{{"msgpack", false, false}, {"json", true, true}, {"msgpack-to-json", true, false}} {
		t.Run(tc.name, func(t *testing.T) {
			sub := dialProto(t, addr, tc.subJSON)
			pub := dialProto(t, addr, tc.pub)
			ch := "room:" + tc.name
			sub.send(map[string]any{"id": 1, "cmd": "subscribe", "channel": ch})
			sub.expect(map[string]any{"type": "reply", "id": 1, "offset": 0})
			for i := 1; i <= 3; i++ {
				data := any([]byte(fmt.Sprintf(`{"n":%d}`, i)))
				if tc.pub {
					data = json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))
				}
				pub.send(map[string]any{"id": 10 + i, "cmd": "publish", "channel": ch, "data": data})
				pub.expect(map[string]any{"type": "reply", "id": 10 + i})
				m := sub.expect(map[string]any{"type": "message", "channel": ch, "offset": i})
				if tc.subJSON {
					if got := fmt.Sprint(m["data"]); got != fmt.Sprintf("map[n:%d]", i) {
						t.Fatalf("data %v", m["data"])
					}
				} else if got := string(m["data"].([]byte)); got != fmt.Sprintf(`{"n":%d}`, i) {
					t.Fatalf("data %q", got)
				}
			}
			sub.send(map[string]any{"id": 2, "cmd": "ping"})
			sub.expect(map[string]any{"type": "reply", "id": 2})
			sub.send(map[string]any{"id": 3, "cmd": "unsubscribe", "channel": ch})
			sub.expect(map[string]any{"type": "reply", "id": 3})
			sub.send(map[string]any{"id": 4, "cmd": "unsubscribe", "channel": ch})
			m := sub.expect(map[string]any{"type": "reply", "id": 4})
			if fmt.Sprint(m["error"]) == "<nil>" {
				t.Fatalf("second unsubscribe: no error in %v", m)
			}
		})
	}
}
