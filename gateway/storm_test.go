package gateway_test

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// TestConnectionStorm: 19,000 clients dial at once from another process
// (all in flight) and all get upgraded, with the kernel's ListenOverflows
// counter unchanged: accepting is never held up by handshake work.
func TestConnectionStorm(t *testing.T) {
	skipSlow(t)
	const n = 19000
	p := startGateway(t)
	before := listenOverflows(t)
	out, err := exec.Command(buildBinary(t, "wsbench"), "hold", "--addr", p.addr, "--path", "/echo",
		"--conns", strconv.Itoa(n), "--dials-in-flight", "0", "--duration", "1s").Output()
	if err != nil {
		t.Fatalf("wsbench hold: %v\n%s", err, out)
	}
	var res struct {
		Connected   int     `json:"connected"`
		Failed      int     `json:"failed"`
		FirstError  string  `json:"first_error"`
		ConnectRate float64 `json:"connect_rate"`
		P99         float64 `json:"handshake_p99_ms"`
	}
	line, _, _ := strings.Cut(string(out), "\n")
	if err := json.Unmarshal([]byte(line), &res); err != nil {
		t.Fatalf("wsbench output %q: %v", out, err)
	}
	after := listenOverflows(t)
	t.Logf("%d/%d upgraded at %.0f conn/s, handshake p99 %.1f ms, ListenOverflows %d → %d",
		res.Connected, n, res.ConnectRate, res.P99, before, after)
	if res.Connected != n || res.Failed != 0 {
		t.Fatalf("connected %d, failed %d (%s)", res.Connected, res.Failed, res.FirstError)
	}
	if after != before {
		t.Fatalf("ListenOverflows grew by %d during the storm", after-before)
	}
}

// listenOverflows reads TcpExt ListenOverflows from /proc/net/netstat.
func listenOverflows(t *testing.T) int64 {
	t.Helper()
	f, err := os.Open("/proc/net/netstat")
	if err != nil {
		t.Fatalf("netstat: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	var names []string
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || fields[0] != "TcpExt:" {
			continue
		}
		if names == nil {
			names = fields
			continue
		}
		for i, name := range names {
			if name == "ListenOverflows" && i < len(fields) {
				v, _ := strconv.ParseInt(fields[i], 10, 64)
				return v
			}
		}
	}
	t.Fatal("ListenOverflows not found in /proc/net/netstat")
	return 0
}
