package redistest

import (
	"context"
	"fmt"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	// NumSlots is the number of Redis Cluster hash slots.
	NumSlots = 16384
	// clusterTimeout bounds how long a new cluster may take to converge.
	clusterTimeout = 20 * time.Second
	// migrateBatch is how many keys one MIGRATE moves.
	migrateBatch = 100
)

// Cluster is a Redis Cluster of masters without replicas, each node a Server
// owned by the test. Node indexes are stable: Nodes()[i] is always the i-th
// address of Addrs and URL, across Kill and Restart of any node.
type Cluster struct {
	t     testing.TB
	nodes []*Server
	ids   []string // cluster node IDs, by index; kept across Restart
}

// StartCluster starts masters cluster-enabled redis-servers, joins them into
// one cluster with the slots split evenly, and waits until every node reports
// cluster_state:ok and agrees on the slot map. Nodes are stopped by
// t.Cleanup. Opts apply to every node.
func StartCluster(t testing.TB, masters int, opts ...Option) *Cluster {
	t.Helper()
	SkipShort(t)
	if masters < 1 {
		t.Fatalf("redistest: a cluster needs at least one master, got %d", masters)
	}
	c := &Cluster{t: t}
	for range masters {
		c.nodes = append(c.nodes, startServer(t, true, opts))
	}
	if masters >= 3 {
		c.createWithCLI()
	} else {
		// redis-cli --cluster create refuses fewer than 3 masters.
		c.createByHand()
	}
	if err := c.WaitOK(clusterTimeout); err != nil {
		t.Fatalf("redistest: %v", err)
	}
	for _, n := range c.nodes {
		id, err := n.Do("CLUSTER", "MYID")
		if err != nil {
			t.Fatalf("redistest: CLUSTER MYID on %s: %v", n.Addr(), err)
		}
		c.ids = append(c.ids, id)
	}
	return c
}

func (c *Cluster) createWithCLI() {
	c.t.Helper()
	args := []string{"--cluster", "create"}
	args = append(args, c.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, lookBin(c.t, "redis-cli"), args...).CombinedOutput()
	if err != nil {
		c.t.Fatalf("redistest: redis-cli %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// createByHand does what redis-cli --cluster create does: distinct config
// epochs (so no collision needs resolving), contiguous slot ranges, MEET.
func (c *Cluster) createByHand() {
	c.t.Helper()
	n := len(c.nodes)
	for i, s := range c.nodes {
		lo, hi := i*NumSlots/n, (i+1)*NumSlots/n-1
		for _, cmd := range [][]string{
			{"CLUSTER", "SET-CONFIG-EPOCH", strconv.Itoa(i + 1)},
			{"CLUSTER", "ADDSLOTSRANGE", strconv.Itoa(lo), strconv.Itoa(hi)},
		} {
			if _, err := s.Do(cmd...); err != nil {
				c.t.Fatalf("redistest: %s on %s: %v", strings.Join(cmd, " "), s.Addr(), err)
			}
		}
	}
	for _, s := range c.nodes[1:] {
		// The bus port is not port+10000 here, so MEET must be told it.
		if _, err := c.nodes[0].Do("CLUSTER", "MEET", "127.0.0.1", strconv.Itoa(s.port), strconv.Itoa(s.busPort)); err != nil {
			c.t.Fatalf("redistest: CLUSTER MEET %s: %v", s.Addr(), err)
		}
	}
}

// WaitOK waits until every node reports cluster_state:ok with all slots
// served and all nodes known, and all nodes agree on which node owns which
// slot. Use it after Kill/Restart of a node; StartCluster already calls it.
func (c *Cluster) WaitOK(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := c.checkOK()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cluster not ok after %v: %v", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *Cluster) checkOK() error {
	var first string
	for i, s := range c.nodes {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		rs, err := roundTrip(ctx, s.Addr(), []string{"CLUSTER", "INFO"}, []string{"CLUSTER", "NODES"})
		cancel()
		if err != nil {
			return fmt.Errorf("node %d (%s): %v", i, s.Addr(), err)
		}
		info, _ := rs[0].(string)
		want := []string{
			"cluster_state:ok",
			"cluster_slots_ok:" + strconv.Itoa(NumSlots),
			"cluster_known_nodes:" + strconv.Itoa(len(c.nodes)),
		}
		for _, w := range want {
			if !strings.Contains(info, w+"\r\n") {
				return fmt.Errorf("node %d (%s): want %s in CLUSTER INFO:\n%s", i, s.Addr(), w, info)
			}
		}
		nodes, _ := rs[1].(string)
		sig := slotMap(nodes)
		if i == 0 {
			first = sig
		} else if sig != first {
			return fmt.Errorf("node %d (%s) disagrees with node 0 on slots:\n%s\nvs\n%s", i, s.Addr(), sig, first)
		}
	}
	return nil
}

// masterSlots is one CLUSTER NODES line of a master: its ID and slot ranges.
type masterSlots struct {
	id     string
	ranges [][2]int
}

// parseNodes extracts each master's stable slot ranges from CLUSTER NODES,
// skipping the "[slot->-id]" markers of an in-flight migration.
func parseNodes(nodes string) []masterSlots {
	var ms []masterSlots
	for line := range strings.SplitSeq(nodes, "\n") {
		f := strings.Fields(line)
		if len(f) < 8 || !strings.Contains(f[2], "master") {
			continue
		}
		m := masterSlots{id: f[0]}
		for _, r := range f[8:] {
			if strings.HasPrefix(r, "[") {
				continue
			}
			lo, hi, ok := strings.Cut(r, "-")
			if !ok {
				hi = lo
			}
			a, err1 := strconv.Atoi(lo)
			b, err2 := strconv.Atoi(hi)
			if err1 == nil && err2 == nil {
				m.ranges = append(m.ranges, [2]int{a, b})
			}
		}
		ms = append(ms, m)
	}
	return ms
}

// slotMap is a canonical text form of who owns what, to compare node views.
func slotMap(nodes string) string {
	var lines []string
	for _, m := range parseNodes(nodes) {
		lines = append(lines, fmt.Sprint(m.id, m.ranges))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func ownerID(nodes string, slot int) string {
	for _, m := range parseNodes(nodes) {
		for _, r := range m.ranges {
			if r[0] <= slot && slot <= r[1] {
				return m.id
			}
		}
	}
	return ""
}

// Addrs are the nodes' "127.0.0.1:port" addresses, by node index.
func (c *Cluster) Addrs() []string {
	a := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		a[i] = n.Addr()
	}
	return a
}

// URL is "redis+cluster://127.0.0.1:P1,127.0.0.1:P2,...".
func (c *Cluster) URL() string {
	return "redis+cluster://" + strings.Join(c.Addrs(), ",")
}

// Nodes are the cluster's servers, by node index.
func (c *Cluster) Nodes() []*Server {
	return append([]*Server(nil), c.nodes...)
}

func (c *Cluster) index(id string) int {
	for i, x := range c.ids {
		if x == id {
			return i
		}
	}
	return -1
}

// SlotOwner is the index of the master owning slot, as seen by the first
// node that answers within a second, or -1 if none answers or the slot is
// unassigned.
func (c *Cluster) SlotOwner(slot int) int {
	for _, s := range c.nodes {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		v, err := do(ctx, s.Addr(), "CLUSTER", "NODES")
		cancel()
		if nodes, ok := v.(string); err == nil && ok {
			return c.index(ownerID(nodes, slot))
		}
	}
	return -1
}

// MigrateSlot moves slot, with its keys, to the master at toIndex the way
// redis-cli --cluster reshard does: mark it IMPORTING on the target and
// MIGRATING on the source, MIGRATE its keys in batches (clients meanwhile
// get ASK redirects for moved keys), then assign it with SETSLOT NODE on the
// target, the source, and every other node, so all views agree at once
// rather than after gossip. Moving a slot to its owner does nothing. Safe to
// call from any goroutine.
func (c *Cluster) MigrateSlot(slot int, toIndex int) error {
	if slot < 0 || slot >= NumSlots {
		return fmt.Errorf("redistest: slot %d out of range", slot)
	}
	if toIndex < 0 || toIndex >= len(c.nodes) {
		return fmt.Errorf("redistest: node index %d out of range [0,%d)", toIndex, len(c.nodes))
	}
	from := c.SlotOwner(slot)
	if from < 0 {
		return fmt.Errorf("redistest: no owner known for slot %d", slot)
	}
	if from == toIndex {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), doTimeout)
	defer cancel()
	src, dst := c.nodes[from], c.nodes[toIndex]
	sl := strconv.Itoa(slot)
	run := func(s *Server, args ...string) (any, error) {
		v, err := do(ctx, s.Addr(), args...)
		if err != nil {
			return nil, fmt.Errorf("redistest: migrate slot %d: %s on %s: %w", slot, strings.Join(args, " "), s.Addr(), err)
		}
		return v, nil
	}

	if _, err := run(dst, "CLUSTER", "SETSLOT", sl, "IMPORTING", c.ids[from]); err != nil {
		return err
	}
	if _, err := run(src, "CLUSTER", "SETSLOT", sl, "MIGRATING", c.ids[toIndex]); err != nil {
		return err
	}
	for {
		v, err := run(src, "CLUSTER", "GETKEYSINSLOT", sl, strconv.Itoa(migrateBatch))
		if err != nil {
			return err
		}
		keys, _ := v.([]any)
		if len(keys) == 0 {
			break
		}
		args := []string{"MIGRATE", "127.0.0.1", strconv.Itoa(dst.port), "", "0", "5000", "REPLACE", "KEYS"}
		for _, k := range keys {
			ks, _ := k.(string)
			args = append(args, ks)
		}
		// NOKEY: every key of the batch expired or was deleted meanwhile.
		if _, err := run(src, args...); err != nil && !strings.Contains(err.Error(), "NOKEY") {
			return err
		}
	}
	// Target first: once it owns the slot it bumps its config epoch, so its
	// claim wins over any stale view still gossiping.
	order := []int{toIndex, from}
	for i := range c.nodes {
		if i != toIndex && i != from {
			order = append(order, i)
		}
	}
	for _, i := range order {
		if _, err := run(c.nodes[i], "CLUSTER", "SETSLOT", sl, "NODE", c.ids[toIndex]); err != nil {
			return err
		}
	}
	return nil
}
