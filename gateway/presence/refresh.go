package presence

// refresher walks this instance's live members once per pass (every TTL/3),
// re-joining them a chunk at a time between queued calls, so a pass over a
// million members never holds up a Stats behind it for long.
type refresher struct {
	channels []string // still to visit in this pass
	channel  string   // being visited
	kind     opKind   // opRefresh, or opJoin where a Join was dropped
	clients  []string // its clients still to refresh
}

func (p *refresher) idle() bool { return len(p.channels) == 0 && len(p.clients) == 0 }

// start begins a pass over the channels live now; channels joined later are
// in the next pass (their joins were just sent anyway).
func (p *refresher) start(r *Redis) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for ch := range r.live {
		p.channels = append(p.channels, ch)
	}
}

// next appends up to refreshChunk members' worth of joins to calls. Each
// member's value is read from r.live now, not at start: a client that left
// since then is skipped, so a refresh never resurrects a member whose Leave
// was already sent.
func (p *refresher) next(r *Redis, calls []call) []call {
	budget := refreshChunk
	r.mu.Lock()
	defer r.mu.Unlock()
	for budget > 0 {
		if len(p.clients) == 0 {
			if len(p.channels) == 0 {
				p.channels, p.clients = nil, nil // a pass's big snapshots go
				break
			}
			p.channel = p.channels[len(p.channels)-1]
			p.channels = p.channels[:len(p.channels)-1]
			p.kind = opRefresh
			if r.dirty[p.channel] {
				p.kind = opJoin
				delete(r.dirty, p.channel)
			}
			for c := range r.live[p.channel] {
				p.clients = append(p.clients, c)
			}
			continue
		}
		live := r.live[p.channel]
		c := call{kind: p.kind, channel: p.channel, keys: r.names.Presence(p.channel), args: r.joinArgs()}
		for len(p.clients) > 0 && budget > 0 && !full(&c) {
			client := p.clients[len(p.clients)-1]
			p.clients = p.clients[:len(p.clients)-1]
			budget--
			if v, ok := live[client]; ok {
				c.args = append(c.args, client, v)
			}
		}
		if len(c.args) > 2 {
			calls = append(calls, c)
		}
	}
	return calls
}
