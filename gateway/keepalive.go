package gateway

import (
	"time"

	"golang.org/x/sys/unix"
)

// Heartbeat is how a silent connection is checked for life
// (Config.Heartbeat, --heartbeat).
type Heartbeat string

const (
	// HeartbeatPing: the gateway sends a WebSocket ping after PingInterval
	// of silence and closes the connection if nothing arrives within
	// PongTimeout (conn.heartbeatLocked).
	HeartbeatPing Heartbeat = "ping"
	// HeartbeatTCP: the kernel does the same with TCP keepalive probes
	// (setKeepalive).
	HeartbeatTCP Heartbeat = "tcp"
)

// setKeepalive hands a connection's heartbeat to the kernel. After
// PingInterval with nothing received (not even a bare ACK) the kernel
// sends a keepalive probe, an empty segment the peer's TCP stack must
// acknowledge, and repeats it every third of PongTimeout. TCP_USER_TIMEOUT
// (interval + timeout) makes the verdict: at the first probe at or after
// that long without a reply the connection is aborted (TCP_KEEPCNT is then
// ignored), and so it is when sent data stays unacknowledged, or the
// peer's receive window stays shut, that long. The gateway learns of the
// abort as ETIMEDOUT on the socket (conn.peerTimedOutLocked).
//
// Compared with pings: a dead peer is found a probe interval later at
// most (37 s instead of 35 s at the defaults), and a client that stops
// reading is cut off as a ping's pong timeout would cut it off — except
// that one already closed as a slow consumer (4008) may get a reset before
// its close frame's linger ends. A live idle connection costs the
// gateway's processes nothing: no timer, no write, no wake-up; the
// kernel's probe and its ACK are softirq work on the host (a million at
// 25 s: the gateways 9.3 % of a core instead of ~140 % with pings, the
// host ~80 % for both ends on loopback; bench/README.md, "Heartbeats from
// the kernel"). The kernel sends probes in bursts, so the host needs
// net.core.netdev_max_backlog well above its default (wsgate doctor).
//
// Why it is not the default: probes are TCP segments, not WebSocket
// frames, so they end at the first proxy. Behind nginx, HAProxy or an L7
// balancer they check the proxy, not the client, and do not reset the
// proxy's idle timeout (nginx's proxy_read_timeout is 60 s): pings do.
// Use it where clients connect to the gateway directly or through an L4
// balancer that forwards packets (IPVS, a cloud NLB).
//
// Config.Validate bounds the values (TCP_KEEPIDLE and TCP_KEEPINTVL take at
// most 32767 s, TCP_USER_TIMEOUT an int of ms), so setsockopt cannot fail
// on an accepted TCP socket; its error is not checked, like TCP_NODELAY's.
func setKeepalive(fd int, cfg Config) {
	idle := wholeSeconds(cfg.PingInterval)
	probe := max(1, wholeSeconds(cfg.PongTimeout)/3)
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1)
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, idle)
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, probe)
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int((cfg.PingInterval + cfg.PongTimeout).Milliseconds()))
}

// maxKeepaliveIdle is the largest TCP_KEEPIDLE Linux accepts.
const maxKeepaliveIdle = 32767 * time.Second

// wholeSeconds rounds d up to whole seconds.
func wholeSeconds(d time.Duration) int { return int((d + time.Second - 1) / time.Second) }
