package sysctl

import "math"

// DefaultTarget is the number of connections a wsgate host is sized for.
const DefaultTarget = 1_000_000

// The per-connection cost model behind the capacity estimate. The numbers
// are the design goals (bench/README.md measures them) and deliberately round: the
// estimate answers "can this host hold a million?", not "exactly how many?".
const (
	// UserBytesPerConn is wsgate's own memory per idle connection: the design
	// goal of <= 1 KB RSS with all features on (a slab entry, no goroutine,
	// no per-connection buffers while idle).
	UserBytesPerConn = 1024

	// KernelBytesPerConn is the kernel memory behind one idle TCP socket
	// (sock/tcp_sock, socket inode, file, dentry, epoll item), measured at
	// ~4.1 KB on the dev machine. It is not part of the process RSS, which is
	// why it has to be added here.
	KernelBytesPerConn = 4198

	// ConnBytes is the total memory cost of one idle connection.
	ConnBytes = UserBytesPerConn + KernelBytesPerConn

	// TCPMemBytesPerConn is the share of net.ipv4.tcp_mem one connection
	// needs. The kernel charges socket buffers to tcp_mem in whole pages, so
	// a socket with anything queued (every socket, during a broadcast) holds
	// at least one page; on 4 KiB-page kernels that is 4 KiB, on larger-page
	// kernels it is one page (see tcpMemPerConn).
	TCPMemBytesPerConn = 4096

	// FDReserve is the number of fds wsgate needs besides client sockets:
	// listeners, one epoll and eventfd per core, broker and HTTP API
	// connections, log files. It is subtracted from per-process fd limits
	// and from the per-user epoll watch limit.
	FDReserve = 512

	// HostFDReserve is the number of open files left to everything else on
	// the host (systemd, journald, sshd, agents) out of fs.file-max.
	HostFDReserve = 65536
)

// Thresholds for the settings that do not cap the connection count directly
// but still decide whether a million connections behave well.
const (
	// MinSomaxconn is the smallest accept queue that absorbs a reconnect
	// storm (the design goal is >= 30k conn/s with no listen overflow).
	MinSomaxconn = 65535

	// MinNetdevBacklog holds a batch of packets the kernel sends at once:
	// keepalive probes of connections whose timers share a slot of the
	// kernel's timer wheel (about 2 s wide at 25 s). With the default 1000,
	// wsgate --heartbeat tcp on loopback saw 3,100 of 19,000 live
	// connections aborted because their probes were dropped.
	MinNetdevBacklog = 16384

	// MinLocalPorts is the smallest usable ephemeral port range: outbound
	// connections (Redis, a co-located proxy) need one port per destination.
	MinLocalPorts = 50000

	// MaxBufMin is the largest sane tcp_rmem/tcp_wmem minimum: the kernel
	// guarantees the minimum to every socket even under memory pressure, so
	// it is multiplied by a million.
	MaxBufMin = 4096

	// MaxBufDefault is the largest sane tcp_rmem/tcp_wmem default: it bounds
	// what each mostly idle socket may buffer before autotuning grows it.
	MaxBufDefault = 16384
)

// Names of the constraints that are not a single sysctl; the others are
// named after their sysctl (e.g. "fs.nr_open", "net.ipv4.tcp_mem").
const (
	// ConstraintNoFile is the per-process open-files hard limit
	// (RLIMIT_NOFILE). The soft limit is not a constraint of its own:
	// wsgate raises soft to hard at start.
	ConstraintNoFile = "open-files hard limit"

	// ConstraintMemory is physical memory (MemTotal) divided by ConnBytes.
	ConstraintMemory = "memory"
)

// tcpMemPerConn is the tcp_mem share of one connection in bytes: at least
// TCPMemBytesPerConn, and never less than one page, the kernel's accounting
// unit.
func tcpMemPerConn(pageSize int64) int64 {
	return max(TCPMemBytesPerConn, pageSize)
}

// minus returns v - reserve, floored at 0: a limit below the reserve allows
// no client connections at all, not a negative number of them.
func minus(v, reserve int64) int64 {
	return max(v-reserve, 0)
}

// mulSat multiplies two non-negative numbers, saturating at math.MaxInt64
// instead of overflowing: fs.file-max and friends can be LONG_MAX.
func mulSat(a, b int64) int64 {
	if a != 0 && b > math.MaxInt64/a {
		return math.MaxInt64
	}
	return a * b
}

// ceilDiv divides rounding up (n >= 0, d > 0), for "how many pages hold n
// bytes", without the n+d-1 that overflows near MaxInt64.
func ceilDiv(n, d int64) int64 { return n/d + min(n%d, 1) }
