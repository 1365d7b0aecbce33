package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func mustDo(t *testing.T, s *Server, args ...string) string {
	t.Helper()
	v, err := s.Do(args...)
	if err != nil {
		t.Fatalf("%s on %s: %v", strings.Join(args, " "), s.Addr(), err)
	}
	return v
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

func TestFreePort(t *testing.T) {
	SkipShort(t)
	p := FreePort(t)
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
	if err != nil {
		t.Fatalf("FreePort %d not bindable: %v", p, err)
	}
	l.Close()
}

func TestStandaloneStartStop(t *testing.T) {
	SkipShort(t)
	var pid int
	var addr, dir string
	t.Run("owner", func(t *testing.T) {
		// Before the cleanups run, on purpose: the package starts no
		// goroutines, so this passes while the server is still up.
		defer goleak.VerifyNone(t)
		s := StartStandalone(t)
		pid, addr, dir = s.Pid(), s.Addr(), s.dir
		if pid <= 0 || !alive(pid) {
			t.Fatalf("Pid() = %d, not a live process", pid)
		}
		if want := "redis://" + s.Addr() + "/0"; s.URL() != want {
			t.Errorf("URL() = %q, want %q", s.URL(), want)
		}
		if !strings.HasPrefix(s.Addr(), "127.0.0.1:") || s.Port() <= 0 {
			t.Errorf("Addr() = %q, Port() = %d", s.Addr(), s.Port())
		}
		if got := mustDo(t, s, "PING"); got != "PONG" {
			t.Errorf("PING = %q", got)
		}
		mustDo(t, s, "SET", "k", "v\r\nwith newline")
		if got := mustDo(t, s, "GET", "k"); got != "v\r\nwith newline" {
			t.Errorf("GET = %q", got)
		}
		if _, err := s.Do("GET", "missing"); !errors.Is(err, ErrNil) {
			t.Errorf("GET missing: err = %v, want ErrNil", err)
		}
		var re ReplyError
		if _, err := s.Do("NOSUCHCOMMAND"); !errors.As(err, &re) || !strings.HasPrefix(string(re), "ERR") {
			t.Errorf("unknown command: err = %v, want ReplyError ERR...", err)
		}
		if got := mustDo(t, s, "DEBUG", "SLEEP", "0"); got != "OK" {
			t.Errorf("DEBUG SLEEP 0 = %q", got)
		}
		if got := mustDo(t, s, "PUBSUB", "NUMSUB", "ch"); got != "ch\n0" {
			t.Errorf("PUBSUB NUMSUB = %q", got)
		}
		if got := mustDo(t, s, "CLIENT", "LIST"); !strings.Contains(got, "cmd=client|list") {
			t.Errorf("CLIENT LIST = %q", got)
		}
		if got := mustDo(t, s, "INFO", "server"); !strings.Contains(got, "process_id:"+strconv.Itoa(pid)) {
			t.Errorf("INFO server lacks our pid:\n%s", got)
		}
		// Redis must not have been told to persist anything.
		if got := mustDo(t, s, "CONFIG", "GET", "save"); got != "save\n" {
			t.Errorf("CONFIG GET save = %q", got)
		}
		if got := mustDo(t, s, "CONFIG", "GET", "dir"); !strings.HasSuffix(got, "\n"+dir) {
			t.Errorf("CONFIG GET dir = %q, want %q", got, dir)
		}
	})
	if alive(pid) {
		t.Errorf("pid %d still alive after cleanup", pid)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepting after cleanup", addr)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("temp dir %s not removed: %v", dir, err)
	}
}

func TestKillRestart(t *testing.T) {
	SkipShort(t)
	s := StartStandalone(t)
	addr, pid := s.Addr(), s.Pid()
	mustDo(t, s, "SET", "k", "v")

	s.Kill()
	if s.Pid() != 0 || alive(pid) {
		t.Fatalf("after Kill: Pid() = %d, old pid alive = %v", s.Pid(), alive(pid))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := s.DoContext(ctx, "PING"); err == nil {
		t.Fatal("PING answered after Kill")
	}
	s.Kill() // idempotent

	s.Restart()
	if s.Addr() != addr {
		t.Errorf("Addr changed across Restart: %s -> %s", addr, s.Addr())
	}
	if np := s.Pid(); np == 0 || np == pid {
		t.Errorf("Pid after Restart = %d (was %d)", np, pid)
	}
	if got := mustDo(t, s, "PING"); got != "PONG" {
		t.Errorf("PING after Restart = %q", got)
	}
	if _, err := s.Do("GET", "k"); !errors.Is(err, ErrNil) {
		t.Errorf("GET k after Restart: err = %v, want ErrNil (empty dataset)", err)
	}

	// Restart of a running server kills it first.
	pid = s.Pid()
	s.Restart()
	if alive(pid) || s.Pid() == pid {
		t.Errorf("Restart of running server left pid %d", pid)
	}
}

func TestStopCont(t *testing.T) {
	SkipShort(t)
	s := StartStandalone(t)
	s.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := s.DoContext(ctx, "PING"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("PING on a stopped server: err = %v, want deadline exceeded", err)
	}
	s.Cont()
	if got := mustDo(t, s, "PING"); got != "PONG" {
		t.Errorf("PING after Cont = %q", got)
	}

	// A server left paused must still be shut down promptly by cleanup.
	var pid int
	start := time.Now()
	t.Run("left-stopped", func(t *testing.T) {
		s := StartStandalone(t)
		pid = s.Pid()
		s.Stop()
		start = time.Now()
	})
	if alive(pid) {
		t.Errorf("stopped server pid %d survived cleanup", pid)
	}
	if d := time.Since(start); d > termGrace+time.Second {
		t.Errorf("cleanup of a stopped server took %v", d)
	}
}

func TestDoFromOtherGoroutineDuringDebugSleep(t *testing.T) {
	SkipShort(t)
	s := StartStandalone(t)
	errc := make(chan error, 1)
	go func() {
		_, err := s.Do("DEBUG", "SLEEP", "2")
		errc <- err
	}()
	// Long enough for the sleep to begin on a loaded machine, with most
	// of it left for the PING to wait out.
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	mustDo(t, s, "PING")
	if d := time.Since(start); d < 500*time.Millisecond {
		t.Errorf("PING during DEBUG SLEEP answered in %v; server was not busy", d)
	}
	if err := <-errc; err != nil {
		t.Fatalf("DEBUG SLEEP: %v", err)
	}
}

func TestWithArgs(t *testing.T) {
	SkipShort(t)
	s := StartStandalone(t, WithArgs("--maxclients", "77"))
	if got := mustDo(t, s, "CONFIG", "GET", "maxclients"); got != "maxclients\n77" {
		t.Errorf("CONFIG GET maxclients = %q", got)
	}
}

// TestStartRetriesTakenPort: losing the free port to another listener makes
// launch report errAddrInUse, which is what the retry loop keys on.
func TestStartRetriesTakenPort(t *testing.T) {
	SkipShort(t)
	s := StartStandalone(t)
	s.Kill()
	l, err := net.Listen("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s.mu.Lock()
	err = s.launch()
	s.mu.Unlock()
	if !errors.Is(err, errAddrInUse) {
		t.Fatalf("launch on a taken port: %v, want errAddrInUse", err)
	}
}

// clusterSlots checks CLUSTER SLOTS on node: masters distinct masters, each
// at one of addrs, together covering every slot exactly once.
func clusterSlots(t *testing.T, node *Server, addrs []string, masters int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	v, err := do(ctx, node.Addr(), "CLUSTER", "SLOTS")
	if err != nil {
		t.Fatal(err)
	}
	var covered [NumSlots]int
	seen := map[string]bool{}
	for _, e := range v.([]any) {
		r := e.([]any)
		lo, hi := r[0].(int64), r[1].(int64)
		m := r[2].([]any)
		addr := net.JoinHostPort(m[0].(string), strconv.FormatInt(m[1].(int64), 10))
		seen[addr] = true
		for s := lo; s <= hi; s++ {
			covered[s]++
		}
		if len(r) != 3 {
			t.Errorf("slots %d-%d have replicas: %v", lo, hi, r)
		}
	}
	for s, n := range covered {
		if n != 1 {
			t.Fatalf("slot %d covered %d times", s, n)
		}
	}
	if len(seen) != masters {
		t.Errorf("CLUSTER SLOTS masters = %v, want %d", seen, masters)
	}
	for a := range seen {
		if !strings.Contains(strings.Join(addrs, ","), a) {
			t.Errorf("CLUSTER SLOTS master %s not in Addrs %v", a, addrs)
		}
	}
}

func TestCluster(t *testing.T) {
	SkipShort(t)
	c := StartCluster(t, 3)
	addrs := c.Addrs()
	if len(addrs) != 3 || len(c.Nodes()) != 3 {
		t.Fatalf("Addrs = %v, %d nodes", addrs, len(c.Nodes()))
	}
	if want := "redis+cluster://" + strings.Join(addrs, ","); c.URL() != want {
		t.Errorf("URL = %q, want %q", c.URL(), want)
	}
	for i, n := range c.Nodes() {
		if n.Addr() != addrs[i] {
			t.Errorf("node %d Addr %s != Addrs[%d] %s", i, n.Addr(), i, addrs[i])
		}
		if info := mustDo(t, n, "CLUSTER", "INFO"); !strings.Contains(info, "cluster_state:ok") {
			t.Errorf("node %d: %s", i, info)
		}
		clusterSlots(t, n, addrs, 3)
	}

	// CLUSTER SHARDS: 3 shards, one master each, 16384 slots in all.
	v, err := do(context.Background(), addrs[0], "CLUSTER", "SHARDS")
	if err != nil {
		t.Fatal(err)
	}
	shards := v.([]any)
	if len(shards) != 3 {
		t.Fatalf("CLUSTER SHARDS has %d shards", len(shards))
	}
	total := 0
	for _, sh := range shards {
		kv := sh.([]any) // "slots", [lo, hi, ...], "nodes", [...]
		slots, nodes := kv[1].([]any), kv[3].([]any)
		for i := 0; i+1 < len(slots); i += 2 {
			total += int(slots[i+1].(int64)-slots[i].(int64)) + 1
		}
		if len(nodes) != 1 || !strings.Contains(fmt.Sprint(nodes[0]), "master") {
			t.Errorf("shard nodes = %v", nodes)
		}
	}
	if total != NumSlots {
		t.Errorf("CLUSTER SHARDS covers %d slots", total)
	}

	// SlotOwner agrees with where a key lives.
	for slot, want := range map[int]int{0: 0, NumSlots - 1: 2} {
		if got := c.SlotOwner(slot); got != want {
			t.Errorf("SlotOwner(%d) = %d, want %d", slot, got, want)
		}
	}
}

func TestClusterMigrateSlot(t *testing.T) {
	SkipShort(t)
	c := StartCluster(t, 3)
	nodes := c.Nodes()
	const tag = "{mig}"
	slotStr := mustDo(t, nodes[0], "CLUSTER", "KEYSLOT", tag)
	slot, _ := strconv.Atoi(slotStr)
	from := c.SlotOwner(slot)
	if from < 0 {
		t.Fatalf("no owner for slot %d", slot)
	}
	// More keys than one MIGRATE batch, to exercise the loop.
	const nkeys = 2*migrateBatch + 17
	for i := range nkeys {
		mustDo(t, nodes[from], "SET", tag+strconv.Itoa(i), "v"+strconv.Itoa(i))
	}
	if _, err := nodes[(from+1)%3].Do("GET", tag+"0"); err == nil || !strings.HasPrefix(err.Error(), "MOVED") {
		t.Fatalf("GET via non-owner: err = %v, want MOVED", err)
	}

	if err := c.MigrateSlot(slot, from); err != nil {
		t.Fatalf("MigrateSlot to its owner: %v", err)
	}
	to := (from + 1) % 3
	if err := c.MigrateSlot(slot, to); err != nil {
		t.Fatal(err)
	}
	if got := c.SlotOwner(slot); got != to {
		t.Fatalf("SlotOwner(%d) = %d after migrating to %d (was %d)", slot, got, to, from)
	}
	for i := range nkeys {
		if got := mustDo(t, nodes[to], "GET", tag+strconv.Itoa(i)); got != "v"+strconv.Itoa(i) {
			t.Fatalf("GET %s via new owner = %q", tag+strconv.Itoa(i), got)
		}
	}
	want := fmt.Sprintf("MOVED %d %s", slot, nodes[to].Addr())
	if _, err := nodes[from].Do("GET", tag+"0"); err == nil || err.Error() != want {
		t.Errorf("GET via old owner: err = %v, want %q", err, want)
	}
	for i, n := range nodes {
		if got := mustDo(t, n, "CLUSTER", "COUNTKEYSINSLOT", slotStr); (i == to) != (got == strconv.Itoa(nkeys)) {
			t.Errorf("node %d holds %s keys of slot %d", i, got, slot)
		}
	}
	if err := c.WaitOK(5 * time.Second); err != nil {
		t.Fatal(err)
	}

	if err := c.MigrateSlot(NumSlots, 0); err == nil {
		t.Error("MigrateSlot of slot 16384 succeeded")
	}
	if err := c.MigrateSlot(0, 3); err == nil {
		t.Error("MigrateSlot to node 3 of 3 succeeded")
	}
}

func TestClusterNodeKillRestart(t *testing.T) {
	SkipShort(t)
	c := StartCluster(t, 3)
	n := c.Nodes()[1]
	addr := n.Addr()
	n.Kill()
	n.Restart()
	if n.Addr() != addr {
		t.Fatalf("node address changed: %s -> %s", addr, n.Addr())
	}
	if err := c.WaitOK(clusterTimeout); err != nil {
		t.Fatal(err)
	}
	if got := c.SlotOwner(NumSlots / 2); got != 1 {
		t.Errorf("SlotOwner(%d) = %d after restart, want 1 (slots kept)", NumSlots/2, got)
	}
}

func TestClusterSmall(t *testing.T) {
	SkipShort(t)
	for _, masters := range []int{1, 2} {
		t.Run(strconv.Itoa(masters), func(t *testing.T) {
			c := StartCluster(t, masters)
			for i, n := range c.Nodes() {
				clusterSlots(t, n, c.Addrs(), masters)
				if got := c.SlotOwner(i * NumSlots / masters); got != i {
					t.Errorf("SlotOwner(%d) = %d, want %d", i*NumSlots/masters, got, i)
				}
			}
			if masters == 2 {
				if err := c.MigrateSlot(0, 1); err != nil {
					t.Fatal(err)
				}
				if got := c.SlotOwner(0); got != 1 {
					t.Errorf("SlotOwner(0) = %d after migrating to 1", got)
				}
			}
		})
	}
}
