package main

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/bench/abuse"
	"github.com/wsgate/wsgate/bench/harness/scrape"
	"github.com/wsgate/wsgate/bench/harness/server"
)

func TestAbuseFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"abuse", "--variants", "flood,ddos"},
		{"abuse", "--clients", "0"},
		{"abuse", "--storm-ips", "300"},
		{"abuse", "--abuser-sched", "realtime"},
		{"abuse", "--target", "naive"},
		{"abuser", "--mode", "flood"},
		{"abuser", "--addr", "127.0.0.1:1", "--mode", "nap"},
	} {
		e, _, errb := testEnv()
		if code := run(e, args); code != 2 {
			t.Errorf("%v: exit %d, want 2; stderr: %s", args, code, errb)
		}
	}
}

// TestSmokeAbuse runs both abuse variants at a toy size in process, then
// the "abuser" command as the scenario drives it (stdin closes: it stops
// and prints what it saw).
func TestSmokeAbuse(t *testing.T) {
	if testing.Short() {
		t.Skip("builds wsgate and runs servers")
	}
	wsgate := buildWsgate(t)
	var res abuse.Result
	runOwnScenario(t, []string{"abuse", "--wsgate-bin", wsgate, "--abuser-in-process",
		"--clients", "10", "--phase", "1s", "--warmup", "200ms",
		"--storm-conns", "200", "--storm-ips", "2", "--max-conns-per-ip", "60", "--max-conns", "120", "--storm-hold", "300ms",
		"--stall-conns", "30", "--gateway-args", "--handshake-timeout 200ms"}, &res)
	if len(res.Variants) != 3 {
		t.Fatalf("%+v", res)
	}
	for _, v := range res.Variants {
		if v.Unloaded.Answered == 0 || v.Loaded.Answered == 0 {
			t.Errorf("%s: no pings: %+v", v.Variant, v)
		}
	}
	f, s := res.Variants[0].Flood, res.Variants[1].Storm
	if f == nil || f.Closes[abuse.CloseRateLimitedCode] == 0 || f.RateLimited == 0 {
		t.Errorf("flood: %+v", f)
	}
	if s == nil || s.Accepted == 0 || s.Refused["429"] == 0 || s.Refused["503"] == 0 || s.MaxPerIP > 60 {
		t.Errorf("storm: %+v", s)
	}
	if mx := res.Variants[1].MaxConnsOpen; mx > 120 || mx == 0 {
		t.Errorf("storm: max conns open %v", mx)
	}
	// Three windows of 30 stalled clients, 10 of each kind; the half
	// handshakes outlive a 200 ms handshake timeout within each window.
	if st := res.Variants[2].Stall; st == nil || st.Opened["half_frame"] != 30 || st.Opened["trickler"] != 30 ||
		st.Opened["half_handshake"] != 30 || st.ClosedByServer["half_handshake"] == 0 {
		t.Errorf("stall: %+v", st)
	}

	// "wsbench abuser", as a child of the scenario would run it.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	gw, err := server.Start(ctx, server.Spec{Name: "wsgate", Bin: wsgate, Debug: true,
		Args: []string{"serve", "--log-level", "warn", "--command-rate", "100", "--command-burst", "50"}})
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Stop()
	stdinR, stdinW := io.Pipe()
	e, out, errb := testEnv()
	e.stdin = stdinR
	done := make(chan int, 1)
	go func() { done <- run(e, []string{"abuser", "--mode", "flood", "--addr", gw.Addr}) }()
	// Stop once the flood has a connection, however slow the machine.
	sc := scrape.New(gw.DebugAddr)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if m, err := sc.Metrics(ctx); err == nil && m["wsgate_conns_upgraded_total"] >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the flood made no connection in 20s")
		}
	}
	stdinW.Close()
	if code := <-done; code != 0 {
		t.Fatalf("abuser: exit %d; stderr: %s", code, errb)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var fs abuse.FloodStats
	if len(lines) != 2 || !strings.Contains(lines[0], "started") || json.Unmarshal([]byte(lines[1]), &fs) != nil || fs.Connections == 0 {
		t.Fatalf("abuser output:\n%s", out)
	}
}
