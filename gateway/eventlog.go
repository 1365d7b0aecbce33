package gateway

import (
	"context"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// eventLog reports refused handshakes and forced closes without flooding:
// each one is a debug line, and at info level their counts are summed up
// once per interval (only when something happened). A storm of a hundred
// thousand refusals is then two info lines, not a hundred thousand.
type eventLog struct {
	log      *slog.Logger
	interval time.Duration
	clients  *limits // the client addresses X-Forwarded-For named (nil: none)

	mu        sync.Mutex
	refused   map[string]int64 // by reason label
	closed    map[string]int64 // by close code or pseudo-code ("pong_timeout")
	forwarded map[string]int64 // X-Forwarded-For ignored, by forwardedStatus label
}

// Refusal reasons: the label of a refused handshake, by outcome.
const (
	refusedBadRequest   = "bad_request"    // 400: the request is not a valid upgrade
	refusedNotFound     = "not_found"      // 404: no endpoint at that path
	refusedOrigin       = "origin"         // 403: Origin not allowed
	refusedAuth         = "auth"           // 401/403 (or another status) from the handshake hook
	refusedTooLarge     = "too_large"      // 431: request head over --max-handshake-bytes
	refusedPerIP        = "per_ip"         // 429: --max-conns-per-ip
	refusedPerUser      = "per_user"       // 429: --max-conns-per-user
	refusedHandshakes   = "max_handshakes" // 503: --max-handshakes in progress
	refusedMaxConns     = "max_conns"      // 503: --max-conns
	refusedAcceptRate   = "accept_rate"    // 503: --accept-rate
	refusedHookBusy     = "hook_busy"      // 503: every connect-hook slot busy
	refusedPartialBytes = "partial_bytes"  // 503: --max-partial-bytes reached
	refusedTimeout      = "timeout"        // no complete request within --handshake-timeout (closed, no response)
	refusedEarlyData    = "early_data"     // 400: too much data sent while the connect hook ran
	refusedDraining     = "draining"       // 503: the server is shutting down (a balancer retries elsewhere)
)

// Pseudo close codes for closes that send no close frame.
const (
	closedPongTimeout  = "pong_timeout"  // nothing received within --pong-timeout of a ping
	closedPeerTimeout  = "peer_timeout"  // the kernel gave up on the peer (ETIMEDOUT, unreachable; --heartbeat tcp)
	closedDiscardLimit = "discard_limit" // kept sending after our close frame; closed (RST) past the bound
)

// defaultSummaryInterval is how often the info-level summary is written.
const defaultSummaryInterval = 10 * time.Second

func newEventLog(log *slog.Logger, interval time.Duration) *eventLog {
	if interval <= 0 {
		interval = defaultSummaryInterval
	}
	return &eventLog{log: log, interval: interval,
		refused: map[string]int64{}, closed: map[string]int64{}, forwarded: map[string]int64{}}
}

// debug reports whether per-event lines are wanted (callers skip the
// work of gathering attributes otherwise).
func (e *eventLog) debug() bool { return e.log.Enabled(context.Background(), slog.LevelDebug) }

// refusedHandshake counts a refused handshake of fd (c: its connection,
// nil before it has one) and writes its debug line.
func (e *eventLog) refusedHandshake(fd int, c *conn, status int, label, reason string) {
	e.mu.Lock()
	e.refused[label]++
	e.mu.Unlock()
	if e.debug() {
		attrs := e.peerAttrs([]any{"status", status, "reason", label}, fd, c)
		if reason != "" {
			attrs = append(attrs, "detail", reason)
		}
		e.log.Debug("handshake refused", attrs...)
	}
}

// forcedClose counts a connection closed by the server for a reason of its
// own (a protocol error, a limit, a timeout) and writes its debug line.
func (e *eventLog) forcedClose(fd int, c *conn, label, reason, client string) {
	e.mu.Lock()
	e.closed[label]++
	e.mu.Unlock()
	if e.debug() {
		attrs := e.peerAttrs([]any{"code", label}, fd, c)
		if reason != "" {
			attrs = append(attrs, "reason", reason)
		}
		if client != "" {
			attrs = append(attrs, "client", client)
		}
		e.log.Debug("connection closed by the server", attrs...)
	}
}

// ignoredForwarded counts an X-Forwarded-For from a trusted proxy (fd's
// peer) that was ignored, why (a forwardedStatus label), and writes its
// debug line.
func (e *eventLog) ignoredForwarded(fd int, why string) {
	e.mu.Lock()
	e.forwarded[why]++
	e.mu.Unlock()
	if e.debug() {
		e.log.Debug("X-Forwarded-For ignored", "reason", why, "proxy", peerString(fd))
	}
}

// peerAttrs appends who a line is about: "peer", the client's address —
// the socket's peer, or behind a trusted proxy the address
// X-Forwarded-For named (no port) with the socket's peer as "proxy".
func (e *eventLog) peerAttrs(attrs []any, fd int, c *conn) []any {
	if c != nil && e.clients != nil {
		if ip, ok := e.clients.forwardedClient(c); ok {
			return append(attrs, "peer", ip.String(), "proxy", peerString(fd))
		}
	}
	return append(attrs, "peer", peerString(fd))
}

// run writes the summaries every interval until ctx is done, then once
// more for what happened since the last one.
func (e *eventLog) run(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(e.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			e.summarize()
			return
		case <-t.C:
			e.summarize()
		}
	}
}

// summarize writes the counts since the last summary, if any.
func (e *eventLog) summarize() {
	var refused, closed, forwarded map[string]int64 // taken over only when non-empty
	e.mu.Lock()
	if len(e.refused) > 0 {
		refused, e.refused = e.refused, map[string]int64{}
	}
	if len(e.closed) > 0 {
		closed, e.closed = e.closed, map[string]int64{}
	}
	if len(e.forwarded) > 0 {
		forwarded, e.forwarded = e.forwarded, map[string]int64{}
	}
	e.mu.Unlock()
	if len(refused) > 0 {
		e.log.Info("refused handshakes", countAttrs(e.interval, refused)...)
	}
	if len(closed) > 0 {
		e.log.Info("forced closes", countAttrs(e.interval, closed)...)
	}
	if len(forwarded) > 0 {
		e.log.Info("X-Forwarded-For ignored", countAttrs(e.interval, forwarded)...)
	}
}

// countAttrs renders counts as sorted key=value attributes after the
// period they cover and their total.
func countAttrs(period time.Duration, counts map[string]int64) []any {
	var total int64
	attrs := []any{"period", period.String(), "total", int64(0)}
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		attrs = append(attrs, k, counts[k])
		total += counts[k]
	}
	attrs[3] = total
	return attrs
}

// closeLabel names a close code in logs and summaries.
func closeLabel(code uint16) string { return strconv.Itoa(int(code)) }

// peerString is the socket's peer address, read only for debug lines
// (accept4 asks for none, to keep accepting allocation-free).
func peerString(fd int) string {
	sa, err := unix.Getpeername(fd)
	if err != nil {
		return ""
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)).String()
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr).Unmap(), uint16(a.Port)).String()
	}
	return ""
}
