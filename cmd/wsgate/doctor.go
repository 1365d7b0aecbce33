package main

import (
	"fmt"
	"io"

	"github.com/wsgate/wsgate/sysctl"
)

// doctor checks the host's limits for the target number of connections and
// exits 0 when it is ready, 1 when not (2 on a usage or read error).
func doctor(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("doctor", "Check whether this host is ready for --target connections: open-file limits, somaxconn,\n"+
		"TCP memory, conntrack, epoll watches and memory. It names the binding constraint.",
		"exit status: 0 ready, 1 not ready, 2 usage or read error")
	root := fs.String("root", "/", "root of the host tree to inspect (tests use a fake /proc)")
	target := fs.Int64("target", sysctl.DefaultTarget, "connections the host should hold")
	processes := fs.Int64("processes", 1, "gateway processes sharing --target (serve --reuse-port instances): per-process limits are checked against each one's share")
	profile := fs.String("print-profile", "", "print an embedded host profile (e.g. gateway/99-wsgate.conf) and exit; \"list\" lists them")
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	if *profile != "" {
		return printProfile(*profile, stdout, stderr)
	}
	if *processes < 1 {
		fmt.Fprintln(stderr, "wsgate doctor: --processes must be at least 1")
		return 2
	}
	r, err := sysctl.InspectWith(*root, sysctl.Options{Target: *target, Processes: *processes})
	if err != nil {
		fmt.Fprintln(stderr, "wsgate doctor:", err)
		return 2
	}
	if err := r.Write(stdout); err != nil {
		fmt.Fprintln(stderr, "wsgate doctor:", err)
		return 2
	}
	if !r.Ready() {
		return 1
	}
	return 0
}

func printProfile(name string, stdout, stderr io.Writer) int {
	if name == "list" {
		for _, n := range sysctl.ProfileNames() {
			fmt.Fprintln(stdout, n)
		}
		return 0
	}
	b, err := sysctl.Profile(name)
	if err != nil {
		fmt.Fprintln(stderr, "wsgate doctor:", err)
		return 2
	}
	if _, err := stdout.Write(b); err != nil {
		fmt.Fprintln(stderr, "wsgate doctor:", err)
		return 2
	}
	return 0
}
