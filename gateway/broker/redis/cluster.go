package redis

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// Redis Cluster: one pub/sub connection per master. A channel's Pub/Sub
// name carries its partition as a hash tag, so it lives in one slot, and the
// slot's owner is the master whose connection subscribes it (SSUBSCRIBE
// only works on the owner). When Redis moves a slot it unsubscribes the
// channels on the old owner ("sunsubscribe" push); we re-read the slot map
// and move those channels to their new owner's connection.

// topology maps slots to masters.
type topology struct {
	owner   [16384]string // slot → master address
	masters []string
}

func (b *Broker) readTopology() (*topology, error) {
	ctx, cancel := context.WithTimeout(b.ctx, b.cfg.Timeout)
	defer cancel()
	rows, err := b.client.Do(ctx, b.client.B().ClusterSlots().Build()).ToArray()
	if err != nil {
		return nil, fmt.Errorf("cluster slots: %w", err)
	}
	t := &topology{}
	seen := map[string]bool{}
	for _, row := range rows {
		f, err := row.ToArray()
		if err != nil || len(f) < 3 {
			return nil, fmt.Errorf("cluster slots: bad row")
		}
		start, _ := f[0].AsInt64()
		end, _ := f[1].AsInt64()
		node, err := f[2].ToArray()
		if err != nil || len(node) < 2 {
			return nil, fmt.Errorf("cluster slots: bad node")
		}
		host, _ := node[0].ToString()
		port, _ := node[1].AsInt64()
		addr := host + ":" + strconv.FormatInt(port, 10)
		for s := start; s <= end && s < 16384; s++ {
			t.owner[s] = addr
		}
		if !seen[addr] {
			seen[addr] = true
			t.masters = append(t.masters, addr)
		}
	}
	return t, nil
}

// clusterState is the subscriptions' view of the cluster.
type clusterState struct {
	mu      sync.Mutex
	topo    *topology
	index   map[string]int // master address → connection index
	refresh chan struct{}
}

// initCluster reads the slot map and returns how many connections to run
// (one per master); route then follows the slot map.
func (s *subscriptions) initCluster() int {
	b := s.b
	cs := &clusterState{index: map[string]int{}, refresh: make(chan struct{}, 1)}
	s.cluster = cs
	var topo *topology
	for {
		t, err := b.readTopology()
		if err == nil {
			topo = t
			break
		}
		b.setState("cluster topology unavailable", err)
		select {
		case <-b.ctx.Done():
			return 0
		case <-time.After(time.Second):
		}
	}
	cs.topo = topo
	for i, m := range topo.masters {
		cs.index[m] = i
	}
	s.route = func(pubsub string) int {
		cs.mu.Lock()
		defer cs.mu.Unlock()
		return cs.index[cs.topo.owner[Slot(pubsub)]]
	}
	b.wg.Add(1)
	go s.followTopology()
	return len(topo.masters)
}

// nodeOf returns the master address connection i serves ("" standalone).
func (s *subscriptions) nodeOf(i int) string {
	if s.cluster == nil {
		return ""
	}
	s.cluster.mu.Lock()
	defer s.cluster.mu.Unlock()
	return s.cluster.topo.masters[i]
}

// probeChannel picks a probe channel whose slot belongs to connection i's
// master, so SSUBSCRIBE and SPUBLISH of the probe go to that master.
func (s *subscriptions) probeChannel(i int, base string) string {
	if s.cluster == nil {
		return base
	}
	node := s.nodeOf(i)
	s.cluster.mu.Lock()
	defer s.cluster.mu.Unlock()
	for n := 0; ; n++ {
		ch := s.b.cfg.Prefix + ":{probe" + strconv.Itoa(n) + "}:c:" + base
		if s.cluster.topo.owner[Slot(ch)] == node {
			return ch
		}
	}
}

// moved is called when Redis unsubscribed a wanted channel on its own.
func (s *subscriptions) moved(string) {
	if s.cluster == nil {
		return
	}
	select {
	case s.cluster.refresh <- struct{}{}:
	default:
	}
}

// followTopology re-reads the slot map when a channel moved and hands every
// wanted channel whose owner changed to its new owner's connection.
func (s *subscriptions) followTopology() {
	b := s.b
	defer b.wg.Done()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-s.cluster.refresh:
		}
		time.Sleep(100 * time.Millisecond) // let a burst of sunsubscribes arrive
		t, err := b.readTopology()
		if err != nil {
			b.setState("cluster topology unavailable", err)
			s.moved("") // try again
			continue
		}
		s.cluster.mu.Lock()
		for _, m := range t.masters {
			if _, ok := s.cluster.index[m]; !ok {
				b.cfg.Log.Warn("new cluster master is not served until restart", "addr", m)
			}
		}
		s.cluster.topo = t
		s.cluster.mu.Unlock()
		s.rebalance()
	}
}

// rebalance moves wanted channels to the connection that now owns them.
// One that was subscribed on its old connection misses what is published
// until the new one subscribes it, so it arrives there lapsed; the
// subscribes waiting for it go with it.
func (s *subscriptions) rebalance() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for from, c := range s.conns {
		for _, ch := range c.wanted() {
			if ch == c.probe {
				continue
			}
			if to := s.route(ch); to != from {
				s.conns[to].adopt(ch, c.release(ch))
			}
		}
	}
}
