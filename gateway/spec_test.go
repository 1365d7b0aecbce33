package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	cws "github.com/coder/websocket"

	"github.com/wsgate/wsgate/internal/testutil"
)

// The spec tests hold the wsgate binary to codec/README.md and README.md:
// each JSON command example of codec/README.md §3 is sent verbatim, and
// each rule of the spec that a client could check is checked from outside.

// specGateway starts the binary with namespaces that exercise the rules:
// chat (presence), jl (join_leave alone), nohist (no history), norec (no
// recovery), short (two publications of history), and the API.
func specGateway(t *testing.T) (gw *gatewayProc, api string) {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "wsgate.json")
	err := os.WriteFile(cfg, []byte(`{"namespaces":{
		"chat":   {"presence": true},
		"jl":     {"join_leave": true},
		"nohist": {"history_size": 0},
		"norec":  {"recovery": false},
		"short":  {"history_size": 2}}}`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	api = testutil.FreeAddr(t)
	gw = startGateway(t, "--config", cfg, "--api-listen", api, "--api-key", contractAPIKey,
		"--max-message-bytes", "4096", "--max-publication-bytes", "2048")
	return gw, api
}

// sendText sends a JSON command exactly as written.
func (p *protoClient) sendText(text string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.c.Write(ctx, cws.MessageText, []byte(text)); err != nil {
		p.t.Fatalf("write: %v", err)
	}
}

// expectNothingBefore sends a ping with id and fails unless its reply is
// the next frame: nothing else was sent before it.
func (p *protoClient) expectNothingBefore(id int) {
	p.t.Helper()
	p.sendText(fmt.Sprintf(`{"id":%d,"cmd":"ping"}`, id))
	p.expect(map[string]any{"type": "reply", "id": id})
}

func errCode(m map[string]any) string {
	e, ok := m["error"].(map[string]any)
	if !ok {
		return ""
	}
	return fmt.Sprint(e["code"])
}

// TestSpecCommandExamples sends every JSON command example of §3 verbatim,
// each on a fresh connection, and checks its reply.
func TestSpecCommandExamples(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the wsgate binary")
	}
	gw, _ := specGateway(t)
	doc, err := os.ReadFile("../codec/README.md")
	if err != nil {
		t.Fatal(err)
	}
	examples := regexp.MustCompile(`\{"id":(\d+),"cmd":[^\n]*\}`).FindAllStringSubmatch(string(doc), -1)
	// What each example gets on a connection of its own: an error code, or
	// the fields a success carries.
	want := map[string]string{
		"1": "offset epoch", "2": "recovered=false reason=epoch_changed", "3": "error 105",
		"4": "offset epoch", "5": "", "6": "epoch publications", "7": "clients", "8": "clients users",
		"9": "error 110", "10": "offset epoch",
	}
	seen := map[string]bool{}
	for _, ex := range examples {
		text, id := ex[0], ex[1]
		w, ok := want[id]
		if !ok {
			t.Errorf("example %s has no expectation here: %s", id, text)
			continue
		}
		seen[id] = true
		c := dialProto(t, gw.addr, true)
		c.sendText(text)
		got := c.expect(map[string]any{"type": "reply", "id": id})
		if code, isErr := strings.CutPrefix(w, "error "); isErr {
			if errCode(got) != code {
				t.Errorf("%s: %v, want error %s", text, got, code)
			}
			continue
		}
		if errCode(got) != "" {
			t.Errorf("%s: error %v", text, got)
			continue
		}
		for _, f := range strings.Fields(w) {
			name, val, hasVal := strings.Cut(f, "=")
			val = strings.ReplaceAll(val, "_", " ")
			switch {
			case hasVal && !strings.HasPrefix(fmt.Sprint(got[name]), val):
				t.Errorf("%s: %s = %v, want %s", text, name, got[name], val)
			case !hasVal && got[name] == nil:
				t.Errorf("%s: no %q in %v", text, name, got)
			}
		}
	}
	if len(seen) != len(want) {
		t.Errorf("examples found: %v, want ids %v", seen, want)
	}
}

// TestSpecRules checks the rules of codec/README.md a client can observe.
func TestSpecRules(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the wsgate binary")
	}
	gw, api := specGateway(t)
	c := dialProto(t, gw.addr, true)

	t.Run("id 0: no reply on success, errors still replied", func(t *testing.T) {
		c.sendText(`{"cmd":"ping"}`)
		c.sendText(`{"id":0,"cmd":"subscribe","channel":"quiet"}`)
		time.Sleep(100 * time.Millisecond) // the subscribe's answer is asynchronous
		c.expectNothingBefore(99)
		c.sendText(`{"id":0,"cmd":"unsubscribe","channel":"never"}`)
		if m := c.expect(map[string]any{"type": "reply", "id": 0}); errCode(m) != "105" {
			t.Fatalf("error with id 0: %v", m)
		}
	})

	t.Run("message pushes carry the epoch; publish replies the position", func(t *testing.T) {
		c.sendText(`{"id":1,"cmd":"subscribe","channel":"room"}`)
		sub := c.expect(map[string]any{"type": "reply", "id": 1})
		c.sendText(`{"id":2,"cmd":"publish","channel":"room","data":{"n":1}}`)
		var reply, msg map[string]any
		for reply == nil || msg == nil { // either may come first
			m := c.recv()
			if m["type"] == "reply" {
				reply = m
			} else {
				msg = m
			}
		}
		if fmt.Sprint(reply["offset"]) != "1" || reply["epoch"] != sub["epoch"] ||
			msg["type"] != "message" || msg["epoch"] != sub["epoch"] || fmt.Sprint(msg["offset"]) != "1" {
			t.Fatalf("reply %v, message %v, subscribe %v", reply, msg, sub)
		}
	})

	t.Run("history: epoch check, too old, no history", func(t *testing.T) {
		for i := range 3 {
			c.sendText(fmt.Sprintf(`{"id":%d,"cmd":"publish","channel":"h","data":%d}`, 10+i, i))
			c.expect(map[string]any{"type": "reply", "id": 10 + i})
		}
		c.sendText(`{"id":20,"cmd":"history","channel":"h","offset":1,"epoch":"not-this-one"}`)
		if m := c.expect(map[string]any{"id": 20}); errCode(m) != "112" {
			t.Fatalf("history in another epoch: %v", m)
		}
		c.sendText(`{"id":21,"cmd":"history","channel":"h","offset":1}`)
		if m := c.expect(map[string]any{"id": 21}); errCode(m) != "" || len(m["publications"].([]any)) != 2 {
			t.Fatalf("history from offset 1: %v", m)
		}
		for i := range 4 {
			c.sendText(fmt.Sprintf(`{"id":%d,"cmd":"publish","channel":"short:h","data":%d}`, 50+i, i))
			c.expect(map[string]any{"type": "reply", "id": 50 + i})
		}
		c.sendText(`{"id":23,"cmd":"history","channel":"short:h","offset":1}`)
		if m := c.expect(map[string]any{"id": 23}); errCode(m) != "112" {
			t.Fatalf("history from an offset history no longer has: %v", m)
		}
		c.sendText(`{"id":24,"cmd":"history","channel":"short:h","offset":2}`)
		if m := c.expect(map[string]any{"id": 24}); errCode(m) != "" || len(m["publications"].([]any)) != 2 {
			t.Fatalf("history from the oldest kept: %v", m)
		}
		c.sendText(`{"id":22,"cmd":"history","channel":"nohist:x"}`)
		if m := c.expect(map[string]any{"id": 22}); errCode(m) != "110" {
			t.Fatalf("history without history: %v", m)
		}
	})

	t.Run("resume with recovery off says so", func(t *testing.T) {
		c.sendText(`{"id":30,"cmd":"subscribe","channel":"norec:a","offset":3,"epoch":"e"}`)
		m := c.expect(map[string]any{"type": "reply", "id": 30, "recovered": false})
		if !strings.Contains(fmt.Sprint(m["reason"]), "recovery is off") {
			t.Fatalf("reply %v", m)
		}
	})

	t.Run("106 below the message limit, the connection stays", func(t *testing.T) {
		c.sendText(`{"id":40,"cmd":"publish","channel":"room","data":"` + strings.Repeat("x", 3000) + `"}`)
		if m := c.expect(map[string]any{"id": 40}); errCode(m) != "106" {
			t.Fatalf("publish over --max-publication-bytes: %v", m)
		}
		c.sendText(`{"id":41,"cmd":"ping"}`)
		c.expect(map[string]any{"type": "reply", "id": 41})
	})

	t.Run("join_leave alone sends join and leave", func(t *testing.T) {
		a, b := dialProto(t, gw.addr, true), dialProto(t, gw.addr, true)
		a.sendText(`{"id":1,"cmd":"subscribe","channel":"jl:x"}`)
		a.expect(map[string]any{"type": "reply", "id": 1})
		b.sendText(`{"id":1,"cmd":"subscribe","channel":"jl:x"}`)
		b.expect(map[string]any{"type": "reply", "id": 1})
		a.expect(map[string]any{"type": "join", "channel": "jl:x"})
	})

	t.Run("API: presence and history off are 400, payload limit, b64, info ready, unsubscribe push", func(t *testing.T) {
		ctx := context.Background()
		for _, req := range [][2]string{
			{"presence", `{"channel":"room"}`},
			{"presence_stats", `{"channel":"room"}`},
			{"history", `{"channel":"nohist:x"}`},
			{"publish", `{"channel":"room","data":"` + strings.Repeat("x", 3000) + `"}`},
		} {
			if code, body, _, err := apiCall(ctx, api, req[0], req[1]); err != nil || code != 400 {
				t.Errorf("%s %s: %d %s %v, want 400", req[0], req[1], code, body, err)
			}
		}
		code, body, _, err := apiCall(ctx, api, "history", `{"channel":"h"}`)
		if err != nil || code != 200 || !strings.Contains(body, `"data":0`) {
			t.Fatalf("history: %d %s %v", code, body, err)
		}
		if code, body, _, _ := apiCall(ctx, api, "publish", `{"channel":"bin","b64":"AAEC"}`); code != 200 {
			t.Fatalf("publish b64: %d %s", code, body)
		}
		if code, body, _, _ := apiCall(ctx, api, "history", `{"channel":"bin"}`); code != 200 || !strings.Contains(body, `"b64":"AAEC"`) {
			t.Fatalf("history of binary data: %d %s", code, body)
		}
		var info map[string]any
		_, body, _, _ = apiCall(ctx, api, "info", `{}`)
		if json.Unmarshal([]byte(body), &info) != nil || info["ready"] != true {
			t.Fatalf("info: %s", body)
		}
		// The server API's unsubscribe tells the client with a push.
		u := dialProto(t, gw.addr, true)
		u.sendText(`{"id":1,"cmd":"subscribe","channel":"chat:kick"}`)
		u.expect(map[string]any{"type": "reply", "id": 1})
		var members struct{ Clients []struct{ Client string } }
		_, body, _, _ = apiCall(ctx, api, "presence", `{"channel":"chat:kick"}`)
		if json.Unmarshal([]byte(body), &members) != nil || len(members.Clients) != 1 {
			t.Fatalf("presence: %s", body)
		}
		req := fmt.Sprintf(`{"client":%q,"channel":"chat:kick"}`, members.Clients[0].Client)
		if code, body, _, _ := apiCall(ctx, api, "unsubscribe", req); code != 200 || body != `{"unsubscribed":1}` {
			t.Fatalf("unsubscribe: %d %s", code, body)
		}
		u.expect(map[string]any{"type": "unsubscribe", "channel": "chat:kick"})
	})
}
