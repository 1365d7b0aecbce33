package floor

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsgate/wsgate/bench/harness/wire"
	"github.com/wsgate/wsgate/bench/loadclient"
	"github.com/wsgate/wsgate/gateway/wsframe"
)

// TestFloorDelivers runs the floor in-process and receives its frames (and
// answers its pings) with the benchmark's own client.
func TestFloorDelivers(t *testing.T) {
	const conns = 20
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		errc <- Run(Config{Listen: "127.0.0.1:0", Conns: conns}, inR, outW)
		outW.Close()
	}()
	lines := bufio.NewScanner(outR)
	next := func() Event {
		t.Helper()
		if !lines.Scan() {
			t.Fatalf("floor ended early: %v", <-errc)
		}
		var ev Event
		if err := json.Unmarshal(lines.Bytes(), &ev); err != nil {
			t.Fatal(err)
		}
		return ev
	}
	ev := next()
	if ev.Event != "listening" {
		t.Fatalf("first event %+v", ev)
	}

	var got, bad atomic.Int64
	var lastSeq atomic.Uint64
	pool, err := loadclient.Dial(context.Background(), loadclient.Config{
		Addr: ev.Listen, Path: "/ws", Conns: conns,
		OnMessage: func(_ *loadclient.Conn, _ byte, p []byte) {
			push, err := wire.ParsePush(p)
			if err != nil || !push.IsMessage() || len(p) < wire.PushBytes {
				bad.Add(1)
				return
			}
			seq, sent, ok := wire.ParseStamp(push.Data)
			if !ok || time.Since(sent) > time.Minute {
				bad.Add(1)
			}
			lastSeq.Store(max(lastSeq.Load(), seq))
			got.Add(1)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if st := pool.Stats(); st.Connected != conns {
		t.Fatalf("connected %d: %s", st.Connected, st.FirstError)
	}
	if ev := next(); ev.Event != "ready" || ev.Conns != conns {
		t.Fatalf("ready event %+v", ev)
	}

	send := func(c Command) Event {
		t.Helper()
		b, _ := json.Marshal(c)
		if _, err := inW.Write(append(b, '\n')); err != nil {
			t.Fatal(err)
		}
		return next()
	}
	wait := func(want int64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for got.Load() < want && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if got.Load() != want || bad.Load() != 0 {
			t.Fatalf("received %d (want %d), %d bad", got.Load(), want, bad.Load())
		}
	}

	ev = send(Command{Cmd: "rate", Rate: 200, Messages: 5})
	if ev.Event != "done" || ev.Messages != 5 || ev.Writes != 5*conns {
		t.Fatalf("rate: %+v", ev)
	}
	wait(5 * conns)

	ev = send(Command{Cmd: "burst", Burst: 4, Bursts: 2, PauseMs: 1, Coalesce: true})
	if ev.Event != "done" || ev.Messages != 8 || ev.Writes != 2*conns {
		t.Fatalf("coalesced burst: %+v", ev)
	}
	wait(13 * conns)

	ev = send(Command{Cmd: "burst", Burst: 3, Bursts: 1})
	if ev.Event != "done" || ev.Writes != 3*conns {
		t.Fatalf("burst: %+v", ev)
	}
	wait(16 * conns)
	if lastSeq.Load() != 15 {
		t.Fatalf("last seq %d", lastSeq.Load())
	}

	// The heartbeat floor: 400 ms at a 200 ms interval pings every
	// socket twice, and every client's pong is read back; 100 ms of a
	// 200 ms interval pings half of them once.
	pings0 := pool.Stats().PingsIn
	ev = send(Command{Cmd: "ping", DurationMs: 400, IntervalMs: 200})
	if ev.Event != "done" || ev.Messages != 2*conns || ev.Pongs != 2*conns || ev.Writes != 2*conns {
		t.Fatalf("ping: %+v, want %d pings, pongs and writes", ev, 2*conns)
	}
	ev = send(Command{Cmd: "ping", DurationMs: 100, IntervalMs: 200})
	if ev.Event != "done" || ev.Messages != conns/2 || ev.Pongs != conns/2 {
		t.Fatalf("ping for half an interval: %+v, want %d pings and pongs", ev, conns/2)
	}
	if in := pool.Stats().PingsIn - pings0; in != 2*conns+conns/2 {
		t.Fatalf("the clients saw %d pings, want %d", in, 2*conns+conns/2)
	}
	if ev := send(Command{Cmd: "ping"}); ev.Event != "error" {
		t.Fatalf("ping without a duration: %+v", ev)
	}

	if ev := send(Command{Cmd: "dance"}); ev.Event != "error" {
		t.Fatalf("unknown command: %+v", ev)
	}
	// Clients that have gone end no measurement: their sockets are no
	// longer pinged, and the missing pongs show.
	pool.Close()
	if ev := send(Command{Cmd: "ping", DurationMs: 300, IntervalMs: 100}); ev.Event != "done" || ev.Pongs != 0 || ev.Messages >= 3*conns {
		t.Fatalf("ping after the clients left: %+v", ev)
	}
	inW.Close()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// TestFloorAcceptIdle: with fewer clients than expected, the floor reports
// ready with what it has instead of waiting forever.
func TestFloorAcceptIdle(t *testing.T) {
	outR, outW := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		errc <- Run(Config{Listen: "127.0.0.1:0", Conns: 5, AcceptIdle: 300 * time.Millisecond}, strings.NewReader(""), outW)
		outW.Close()
	}()
	lines := bufio.NewScanner(outR)
	var evs []Event
	for lines.Scan() {
		var ev Event
		if err := json.Unmarshal(lines.Bytes(), &ev); err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
		if ev.Event == "listening" {
			pool, err := loadclient.Dial(context.Background(), loadclient.Config{Addr: ev.Listen, Path: "/", Conns: 2})
			if err != nil {
				t.Fatal(err)
			}
			defer pool.Close()
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[1].Event != "ready" || evs[1].Conns != 2 {
		t.Fatalf("events %+v", evs)
	}
}

// TestCountPongs: pongs are counted frame by frame; other frames, their
// payloads and a frame cut off at the end are not.
func TestCountPongs(t *testing.T) {
	pong := loadclient.ClientFrame(wsframe.OpPong, nil)
	text := loadclient.ClientFrame(wsframe.OpText, bytes.Repeat([]byte{0x8a}, 300)) // a 16-bit length
	var b []byte
	b = append(b, pong...)
	b = append(b, text...)
	b = append(b, pong...)
	b = append(b, pong[:3]...)
	if got := countPongs(b); got != 2 {
		t.Fatalf("counted %d pongs, want 2", got)
	}
	if got := countPongs(nil); got != 0 {
		t.Fatalf("counted %d pongs in nothing", got)
	}
}

// FuzzCountPongs: whatever a client sends, counting pongs neither panics
// nor counts more frames than the bytes could hold.
func FuzzCountPongs(f *testing.F) {
	f.Add(loadclient.ClientFrame(wsframe.OpPong, nil))
	f.Add([]byte{0x8a, 0xfe, 0x01})
	f.Add([]byte{0x8a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		if n := countPongs(b); n < 0 || n > len(b)/2 {
			t.Fatalf("%d pongs in %d bytes", n, len(b))
		}
	})
}
