package pubsub

import (
	"context"
	"fmt"
	"sync"

	"github.com/wsgate/wsgate/bench/loadclient"
	"github.com/wsgate/wsgate/codec"
)

// subPool is one pool of subscribers: same address, same encoding.
// members[k] is the subscriber on the pool's connection k.
type subPool struct {
	pool    *loadclient.Pool
	members []*subscriber
	enc     codec.Encoding
}

// connect dials subscribers, subscribes them, dials the non-readers
// meanwhile, waits for every subscribe reply, then dials the publishers.
func (r *run) connect(ctx context.Context) error {
	if err := r.dialSubscribers(ctx); err != nil {
		return err
	}
	if err := r.subscribeAll(); err != nil {
		return err
	}
	if err := r.dialNonReaders(ctx); err != nil {
		return err
	}
	select {
	case <-r.sh.subscribes.ch:
	case <-ctx.Done():
		return fmt.Errorf("waiting for subscribe replies: %d missing: %w", r.sh.subscribes.left.Load(), ctx.Err())
	}
	if n := r.sh.subscribes.failed.Load(); n > 0 {
		return fmt.Errorf("%d subscribes failed", n)
	}
	return r.dialPublishers(ctx)
}

// dialSubscribers opens one pool per (address, encoding) in a fixed order;
// subscriber i goes to address i mod len(Addrs).
func (r *run) dialSubscribers(ctx context.Context) error {
	for a, addr := range r.cfg.Addrs {
		for _, enc := range []codec.Encoding{codec.Msgpack, codec.JSON} {
			var members []*subscriber
			for i := a; i < len(r.subs); i += len(r.cfg.Addrs) {
				if s := r.subs[i]; s.json == (enc == codec.JSON) {
					members = append(members, s)
				}
			}
			if len(members) == 0 {
				continue
			}
			cfg := r.poolConfig(addr, len(members), enc)
			cfg.OnMessage = func(c *loadclient.Conn, op byte, p []byte) { members[c.Index()].onMessage(op, p) }
			cfg.OnClose = func(c *loadclient.Conn, code int) { members[c.Index()].onClose(code) }
			pool, err := dialPool(ctx, cfg, "subscribers")
			if pool != nil {
				r.subPools = append(r.subPools, subPool{pool: pool, members: members, enc: enc})
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *run) poolConfig(addr string, n int, enc codec.Encoding) loadclient.Config {
	return loadclient.Config{Addr: addr, Path: r.cfg.Path, Conns: n, DialsInFlight: r.cfg.DialsInFlight,
		SourceIPs: r.cfg.SourceIPs, Subprotocol: enc.Subprotocol()}
}

// dialPool dials a pool and insists that every connection upgraded.
func dialPool(ctx context.Context, cfg loadclient.Config, what string) (*loadclient.Pool, error) {
	pool, err := loadclient.Dial(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("%s on %s: %w", what, cfg.Addr, err)
	}
	if st := pool.Stats(); st.Failed > 0 {
		return pool, fmt.Errorf("%d of %d %s failed to connect to %s: %s", st.Failed, st.Conns, what, cfg.Addr, st.FirstError)
	}
	return pool, nil
}

// subscribeAll sends every subscriber's subscribe command; the replies are
// counted by the subscribers' callbacks.
func (r *run) subscribeAll() error {
	for _, sp := range r.subPools {
		op := loadclient.OpBinary
		if sp.enc == codec.JSON {
			op = loadclient.OpText
		}
		for _, c := range sp.pool.Conns() {
			s := sp.members[c.Index()]
			cmd := codec.Command{ID: subscribeID, Cmd: codec.CmdSubscribe, Channel: r.sh.names[s.channel]}
			b, err := codec.AppendCommand(nil, sp.enc, &cmd)
			if err != nil {
				return err
			}
			if err := c.Send(op, b); err != nil {
				return fmt.Errorf("subscriber %d: send subscribe: %w", s.index, err)
			}
		}
	}
	return nil
}

// dialNonReaders connects and subscribes the non-readers to channel 0,
// spread over the addresses, a bounded number at a time.
func (r *run) dialNonReaders(ctx context.Context) error {
	const parallel = 32
	n := r.cfg.NonReaders
	r.nonReaders = make([]*nonReader, n)
	errs := make([]error, n)
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			addr := r.cfg.Addrs[i%len(r.cfg.Addrs)]
			r.nonReaders[i], errs[i] = dialNonReader(ctx, addr, r.cfg.Path, ChannelName(0))
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("non-reader %d: %w", i, err)
		}
	}
	return nil
}

// dialPublishers opens one pool per address; publisher j goes to address
// j mod len(Addrs) and gets an even share of the messages.
func (r *run) dialPublishers(ctx context.Context) error {
	cfg := &r.cfg
	r.pubs = make([]*publisher, cfg.Publishers)
	for j := range r.pubs {
		quota := cfg.Messages / cfg.Publishers
		if j < cfg.Messages%cfg.Publishers {
			quota++
		}
		r.pubs[j] = newPublisher(j, quota, cfg, r.sh.names, r.pace)
	}
	for a, addr := range cfg.Addrs {
		var members []*publisher
		for j := a; j < len(r.pubs); j += len(cfg.Addrs) {
			members = append(members, r.pubs[j])
		}
		if len(members) == 0 {
			continue
		}
		pc := r.poolConfig(addr, len(members), codec.Msgpack)
		pc.SourceIPs = nil // a handful of connections: the default sources do
		pc.OnMessage = func(c *loadclient.Conn, op byte, p []byte) { members[c.Index()].onMessage(op, p) }
		pc.OnClose = func(c *loadclient.Conn, code int) { members[c.Index()].onClose(code) }
		pool, err := dialPool(ctx, pc, "publishers")
		if pool != nil {
			r.pubPools = append(r.pubPools, pool)
		}
		if err != nil {
			return err
		}
		for _, c := range pool.Conns() {
			members[c.Index()].conn = c
		}
	}
	return nil
}
