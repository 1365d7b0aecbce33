package sysctl

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
)

// Options tune InspectWith. The zero value means DefaultTarget connections
// and the running kernel's page size.
type Options struct {
	// Target is the number of connections the host must hold to be ready;
	// 0 means DefaultTarget.
	Target int64
	// Processes is how many gateway processes share Target (several
	// `serve --reuse-port` instances; 0 means 1). Per-process limits
	// (RLIMIT_NOFILE, fs.nr_open) are checked against each one's share,
	// host-wide ones against the whole target.
	Processes int64
	// PageSize is the unit of net.ipv4.tcp_mem in bytes; 0 means
	// os.Getpagesize(). Tests set it so that a fake tree gives the same
	// result on 4 KiB- and 64 KiB-page kernels.
	PageSize int
}

// withDefaults fills in the zero fields.
func (o Options) withDefaults() Options {
	if o.Target <= 0 {
		o.Target = DefaultTarget
	}
	if o.Processes <= 0 {
		o.Processes = 1
	}
	if o.PageSize <= 0 {
		o.PageSize = os.Getpagesize()
	}
	return o
}

// Inspect checks the host tree rooted at root ("/" for the real host)
// against DefaultTarget connections. See InspectWith.
func Inspect(root string) (Report, error) {
	return InspectWith(root, Options{})
}

// InspectWith checks the host tree rooted at root: the RLIMIT_NOFILE of the
// calling process (<root>/proc/self/limits — run it with the same limits as
// the gateway, e.g. from its systemd unit), the sysctls under
// <root>/proc/sys and memory from <root>/proc/meminfo.
//
// A value that is missing or malformed does not fail the call: its item is
// reported as unknown (and the host as not ready). The only error is a root
// without a proc directory, which wraps ErrNoProc.
func InspectWith(root string, opts Options) (Report, error) {
	opts = opts.withDefaults()
	t := procTree{root: root}
	if err := t.check(); err != nil {
		return Report{}, err
	}
	r := Report{Root: root, Target: opts.Target, Processes: opts.Processes, PageSize: opts.PageSize}
	in := inspector{t: t, target: opts.Target, processes: opts.Processes, pageSize: int64(opts.PageSize), r: &r}
	in.noFile()
	in.fdLimit("fs.nr_open", FDReserve, true,
		"per-process ceiling for RLIMIT_NOFILE: the hard limit cannot be raised above it")
	in.fdLimit("fs.file-max", HostFDReserve, false,
		"open files on the whole host; when reached, accept and open fail with ENFILE")
	in.fdLimit("fs.epoll.max_user_watches", FDReserve, false,
		"epoll registrations per user, one per connection; beyond it epoll_ctl fails (ENOSPC)")
	in.minimum("net.core.somaxconn", MinSomaxconn,
		"accept queue per listener (Go's listen backlog); short queues drop SYNs in reconnect storms")
	in.minimum("net.core.netdev_max_backlog", MinNetdevBacklog,
		"per-CPU queue of received packets (on loopback, of sent ones too); the kernel sends keepalive probes (--heartbeat tcp) in batches the default drops")
	in.portRange()
	in.tcpMem()
	in.tcpBuf("net.ipv4.tcp_rmem",
		"per-socket receive buffer; the default bounds what each client can push before wsgate reads")
	in.tcpBuf("net.ipv4.tcp_wmem",
		"per-socket send buffer; frames are small and a slow client's backlog waits in wsgate's queue")
	in.conntrack()
	in.memory()
	r.estimate()
	return r, nil
}

// inspector runs the checks of one InspectWith call and appends their
// findings to its report.
type inspector struct {
	t         procTree
	target    int64
	processes int64
	pageSize  int64
	r         *Report
}

// perProcess is each process's share of the target, rounded up.
func (in inspector) perProcess() int64 { return ceilDiv(in.target, in.processes) }

// perProcessLimit is the constraint a per-process limit sets: what one
// process may hold after its reserve, times the processes.
func (in inspector) perProcessLimit(name string, limit, reserve int64, basis string) Constraint {
	c := Constraint{Name: name, Connections: minus(limit, reserve), Basis: basis}
	if in.processes > 1 {
		c.Connections = mulSat(c.Connections, in.processes)
		c.Basis = fmt.Sprintf("(%s) x %d processes", basis, in.processes)
	}
	return c
}

// add records an item and, if the value was known, the constraints it sets.
func (in inspector) add(it Item, cs ...Constraint) {
	in.r.Items = append(in.r.Items, it)
	in.r.Constraints = append(in.r.Constraints, cs...)
}

// unknown records an item whose value could not be read or parsed.
func (in inspector) unknown(name, recommended, why string, err error) {
	in.add(Item{Name: name, Current: "unknown", Recommended: recommended, Why: why, Err: err})
}

// atLeast formats a minimum recommendation.
func atLeast(v int64) string {
	return fmt.Sprintf(">= %d", v)
}

// noFile checks RLIMIT_NOFILE. Only the hard limit constrains capacity:
// wsgate raises its soft limit to the hard one at start, so when soft < hard
// the hard limit is what binds.
func (in inspector) noFile() {
	const (
		rel     = "proc/self/limits"
		whySoft = "open files before wsgate raises it to the hard limit; other tools keep it"
		whyHard = "open files per process, one per connection; set by LimitNOFILE= or limits.d"
	)
	need := in.perProcess() + FDReserve
	soft, hard, err := in.readNoFile(rel)
	if err != nil {
		in.unknown("RLIMIT_NOFILE soft", "= hard, "+atLeast(need), whySoft, err)
		in.unknown("RLIMIT_NOFILE hard", atLeast(need), whyHard, err)
		return
	}
	in.add(Item{
		Name:        "RLIMIT_NOFILE soft",
		Current:     fmtLimit(soft),
		Recommended: "= hard, " + atLeast(need),
		// A low soft limit is fine for wsgate as long as the hard one is high.
		OK:  soft >= need || hard >= need,
		Why: whySoft,
	})
	basis := fmt.Sprintf("hard %s - %d reserved fds", fmtLimit(hard), FDReserve)
	if soft < hard {
		basis += fmt.Sprintf(" (soft %s is raised to hard at start)", fmtLimit(soft))
	}
	in.add(Item{
		Name:        "RLIMIT_NOFILE hard",
		Current:     fmtLimit(hard),
		Recommended: atLeast(need),
		OK:          hard >= need,
		Why:         whyHard,
	}, in.perProcessLimit(ConstraintNoFile, hard, FDReserve, basis))
}

// readNoFile reads and parses the soft and hard RLIMIT_NOFILE from rel.
func (in inspector) readNoFile(rel string) (soft, hard int64, err error) {
	s, err := in.t.read(rel)
	if err != nil {
		return 0, 0, err
	}
	soft, hard, err = parseNoFile(s)
	if err != nil {
		return 0, 0, fmt.Errorf("parse %s: %w", in.t.path(rel), err)
	}
	return soft, hard, nil
}

// fmtLimit formats an rlimit, showing RLIM_INFINITY as the kernel does.
func fmtLimit(v int64) string {
	if v == math.MaxInt64 {
		return "unlimited"
	}
	return fmt.Sprint(v)
}

// fdLimit checks a sysctl that caps fds or epoll watches: after reserve is
// set aside for everything that is not a client connection, each remaining
// unit is one connection. A perProcess limit applies to each process on
// its own.
func (in inspector) fdLimit(name string, reserve int64, perProcess bool, why string) {
	need := in.target + reserve
	if perProcess {
		need = in.perProcess() + reserve
	}
	v, err := in.t.readSysctl(name, 1)
	if err != nil {
		in.unknown(name, atLeast(need), why, err)
		return
	}
	basis := fmt.Sprintf("%d - %d reserved", v[0], reserve)
	c := Constraint{Name: name, Connections: minus(v[0], reserve), Basis: basis}
	if perProcess {
		c = in.perProcessLimit(name, v[0], reserve, basis)
	}
	in.add(Item{
		Name:        name,
		Current:     fmt.Sprint(v[0]),
		Recommended: atLeast(need),
		OK:          v[0] >= need,
		Why:         why,
	}, c)
}

// minimum checks a queue length that does not cap how many connections
// the host holds, only whether bursts (of arrivals, of packets) fit.
func (in inspector) minimum(name string, least int64, why string) {
	v, err := in.t.readSysctl(name, 1)
	if err != nil {
		in.unknown(name, atLeast(least), why, err)
		return
	}
	in.add(Item{
		Name:        name,
		Current:     fmt.Sprint(v[0]),
		Recommended: atLeast(least),
		OK:          v[0] >= least,
		Why:         why,
	})
}

// portRange checks the ephemeral port range. Inbound connections all share
// the listen port, so it does not cap capacity; it matters for outbound
// connections, ~64k per destination.
func (in inspector) portRange() {
	const (
		name = "net.ipv4.ip_local_port_range"
		why  = "ephemeral ports for outbound connections (Redis, a co-located proxy's upstreams)"
	)
	recommended := fmt.Sprintf("1024 65535 (>= %d ports)", MinLocalPorts)
	v, err := in.t.readSysctl(name, 2)
	if err != nil {
		in.unknown(name, recommended, why, err)
		return
	}
	ports := max(v[1]-v[0]+1, 0)
	in.add(Item{
		Name:        name,
		Current:     fmt.Sprintf("%d %d (%d ports)", v[0], v[1], ports),
		Recommended: recommended,
		OK:          ports >= MinLocalPorts,
		Why:         why,
	})
}

// tcpMem checks the kernel-wide TCP buffer limit (in pages). Its maximum
// caps how many sockets can each hold one page of queued data at once, which
// is what a broadcast to every connection needs.
func (in inspector) tcpMem() {
	const (
		name = "net.ipv4.tcp_mem"
		why  = "kernel-wide TCP buffer pages; a burst to every socket needs ~1 page each, past max sends stall"
	)
	perConn := tcpMemPerConn(in.pageSize)
	needPages := ceilDiv(mulSat(in.target, perConn), in.pageSize)
	recommended := fmt.Sprintf("max >= %d pages (%s)", needPages, fmtBytes(mulSat(needPages, in.pageSize)))
	v, err := in.t.readSysctl(name, 3)
	if err != nil {
		in.unknown(name, recommended, why, err)
		return
	}
	maxBytes := mulSat(v[2], in.pageSize)
	conns := maxBytes / perConn
	in.add(Item{
		Name:        name,
		Current:     fmt.Sprintf("%d %d %d (max %s)", v[0], v[1], v[2], fmtBytes(maxBytes)),
		Recommended: recommended,
		OK:          conns >= in.target,
		Why:         why,
	}, Constraint{
		Name:        name,
		Connections: conns,
		Basis:       fmt.Sprintf("max %d pages x %d B / %d B per socket", v[2], in.pageSize, perConn),
	})
}

// tcpBuf checks tcp_rmem or tcp_wmem (min, default, max in bytes). The
// minimum is guaranteed to every socket even under memory pressure and the
// default is what an idle socket may fill, so both are multiplied by a
// million; the maximum only applies to the few busy sockets autotuning grows.
func (in inspector) tcpBuf(name, why string) {
	recommended := fmt.Sprintf("min <= %d, default <= %d", MaxBufMin, MaxBufDefault)
	v, err := in.t.readSysctl(name, 3)
	if err != nil {
		in.unknown(name, recommended, why, err)
		return
	}
	in.add(Item{
		Name:        name,
		Current:     fmt.Sprintf("%d %d %d", v[0], v[1], v[2]),
		Recommended: recommended,
		OK:          v[0] <= MaxBufMin && v[1] <= MaxBufDefault,
		Why:         why,
	})
}

// conntrack checks the connection-tracking table. The sysctl exists only
// while nf_conntrack is loaded; without it nothing tracks connections, which
// is fine.
func (in inspector) conntrack() {
	const (
		name = "net.netfilter.nf_conntrack_max"
		why  = "a stateful firewall tracks every connection; when the table is full new SYNs are dropped"
	)
	recommended := atLeast(in.target)
	v, err := in.t.readSysctl(name, 1)
	if errors.Is(err, fs.ErrNotExist) {
		in.add(Item{
			Name:        name,
			Current:     "conntrack not loaded",
			Recommended: recommended + " if loaded",
			OK:          true,
			Why:         "no connection-tracking table to overflow",
		})
		return
	}
	if err != nil {
		in.unknown(name, recommended, why, err)
		return
	}
	in.add(Item{
		Name:        name,
		Current:     fmt.Sprint(v[0]),
		Recommended: recommended,
		OK:          v[0] >= in.target,
		Why:         why,
	}, Constraint{Name: name, Connections: v[0], Basis: "one table entry per connection"})
}

// memory checks physical memory against the per-connection cost model.
// MemTotal, not MemAvailable, sets the capacity: on a host already serving,
// wsgate's own connections are part of what is not available.
func (in inspector) memory() {
	const (
		name = ConstraintMemory
		rel  = "proc/meminfo"
		why  = "~1 KiB in wsgate + ~4.1 KiB of kernel socket memory per idle connection"
	)
	recommended := "total >= " + fmtBytes(mulSat(in.target, ConnBytes))
	m, err := in.readMemInfo(rel)
	if err != nil {
		in.unknown(name, recommended, why, err)
		return
	}
	conns := m.total / ConnBytes
	in.add(Item{
		Name:        name,
		Current:     fmtMem(m),
		Recommended: recommended,
		OK:          conns >= in.target,
		Why:         why,
	}, Constraint{
		Name:        ConstraintMemory,
		Connections: conns,
		Basis:       fmt.Sprintf("MemTotal %s / %d B per connection", fmtBytes(m.total), ConnBytes),
	})
}

// readMemInfo reads and parses rel (proc/meminfo).
func (in inspector) readMemInfo(rel string) (memInfo, error) {
	s, err := in.t.read(rel)
	if err != nil {
		return memInfo{}, err
	}
	m, err := parseMemInfo(s)
	if err != nil {
		return memInfo{}, fmt.Errorf("parse %s: %w", in.t.path(rel), err)
	}
	return m, nil
}

// fmtMem formats MemTotal and, when known, MemAvailable.
func fmtMem(m memInfo) string {
	s := "total " + fmtBytes(m.total)
	if m.available >= 0 {
		s += ", available " + fmtBytes(m.available)
	}
	return s
}

// fmtBytes formats a byte count in binary units with one decimal, which is
// precise enough to compare against a recommendation.
func fmtBytes(b int64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	default:
		return fmt.Sprintf("%d B", b)
	}
}

// estimate sets Estimate and Binding from the constraints. On a tie the
// earlier constraint wins, so the open-files limit, checked first, is named
// when it is as tight as anything else.
func (r *Report) estimate() {
	r.Estimate, r.Binding = 0, ""
	for i, c := range r.Constraints {
		if i == 0 || c.Connections < r.Estimate {
			r.Estimate, r.Binding = c.Connections, c.Name
		}
	}
}
