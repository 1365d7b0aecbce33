package client_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/gateway/client"
)

// startGateway runs an in-process gateway with the embedded broker and a
// "room" namespace with presence and join/leave on.
func startGateway(t *testing.T) string {
	t.Helper()
	cfg := gateway.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.DrainWindow = 10 * time.Millisecond
	def := cfg.DefaultNamespace()
	room := def
	room.Presence, room.JoinLeave = true, true
	ns, err := gateway.NewNamespaces(def, map[string]gateway.Namespace{"room": room})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Namespaces = ns
	srv, err := gateway.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return "ws://" + srv.Addr().String() + "/ws"
}

func dialT(t *testing.T, url string, enc codec.Encoding) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, url, client.Options{Encoding: enc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Against the real gateway: publications cross encodings byte for byte
// (binary from MessagePack reaches JSON as base64 and is decoded), an
// idempotency key publishes once, and the reads answer.
func TestAgainstGateway(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	url := startGateway(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	mp, js := dialT(t, url, codec.Msgpack), dialT(t, url, codec.JSON)

	got := map[codec.Encoding]*tally{codec.Msgpack: {}, codec.JSON: {}}
	for enc, c := range map[codec.Encoding]*client.Client{codec.Msgpack: mp, codec.JSON: js} {
		if _, err := c.Subscribe(ctx, "room:a", got[enc].handle); err != nil {
			t.Fatal(err)
		}
	}
	binary := []byte{0, 0xff, '\n', 0xc1}
	if _, err := mp.Publish(ctx, "room:a", binary); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "room:a", []byte(`{"text":"hi"}`)); err != nil {
		t.Fatal(err)
	}
	for enc, ta := range got {
		waitFor(t, 5*time.Second, enc.String()+" subscriber", func() bool { return ta.count() == 2 })
		ta.mu.Lock()
		if string(ta.pubs[0].Data) != string(binary) || string(ta.pubs[1].Data) != `{"text":"hi"}` || ta.pubs[1].Offset != 2 {
			t.Errorf("%v subscriber got %+v", enc, ta.pubs)
		}
		ta.mu.Unlock()
	}

	key := client.WithIdempotencyKey("order-7")
	first, err := js.Publish(ctx, "room:a", []byte(`7`), key)
	if err != nil || first.Replayed {
		t.Fatalf("first keyed publish: %+v, %v", first, err)
	}
	again, err := mp.Publish(ctx, "room:a", []byte(`7`), key)
	if err != nil || !again.Replayed || again.Offset != first.Offset || again.Epoch != first.Epoch {
		t.Fatalf("repeat: %+v, %v; first %+v", again, err, first)
	}
	var se *client.ServerError
	if _, err := mp.Publish(ctx, "room:a", []byte(`8`), key); !errors.As(err, &se) || se.Code != codec.CodeKeyReused {
		t.Fatalf("key reused with other data: %v", err)
	}

	h, err := mp.History(ctx, "room:a", client.HistoryOptions{Since: 1})
	if err != nil {
		t.Fatal(err)
	}
	var offs []uint64
	for _, p := range h.Publications {
		offs = append(offs, p.Offset)
	}
	if !slices.Equal(offs, []uint64{2, 3}) || h.Epoch != first.Epoch {
		t.Fatalf("history since 1: %v (epoch %s)", offs, h.Epoch)
	}
	if _, err := js.History(ctx, "room:a", client.HistoryOptions{Since: 1, Epoch: "not-it"}); !errors.As(err, &se) || se.Code != codec.CodeUnrecoverable {
		t.Fatalf("history of another epoch: %v", err)
	}
	members, err := js.Presence(ctx, "room:a")
	if err != nil || len(members) != 2 {
		t.Fatalf("presence: %v, %v", members, err)
	}
	clients, users, err := mp.PresenceStats(ctx, "room:a")
	if err != nil || clients != 2 || users != 0 { // two anonymous connections: no user
		t.Fatalf("presence_stats: %d clients, %d users, %v", clients, users, err)
	}
	if _, err := mp.Presence(ctx, "nopresence"); !errors.As(err, &se) || se.Code != codec.CodeNotAvailable {
		t.Fatalf("presence where it is off: %v", err)
	}

	// A third client's join and leave reach the subscribers as events
	// (after any the first two caused each other).
	ta := got[codec.JSON]
	ta.mu.Lock()
	before := len(ta.notices)
	ta.mu.Unlock()
	third := dialT(t, url, codec.Msgpack)
	if _, err := third.Subscribe(ctx, "room:a", func(client.Event) {}); err != nil {
		t.Fatal(err)
	}
	third.Close()
	waitFor(t, 10*time.Second, "join and leave", func() bool {
		ta.mu.Lock()
		defer ta.mu.Unlock()
		if len(ta.notices) < before+2 {
			return false
		}
		j, jok := ta.notices[before].(client.Join)
		l, lok := ta.notices[before+1].(client.Leave)
		if !jok || !lok || j.Client != l.Client || j.Channel != "room:a" {
			t.Fatalf("notices %#v, want the third client's join and leave", ta.notices[before:])
		}
		return true
	})
}
