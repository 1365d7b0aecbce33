package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/wsgate/wsgate/sysctl"
)

// doctor checks the host's limits for the target number of connections and
// exits 0 when it is ready, 1 when not (2 on a usage or read error).
func doctor(args []string) int {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	root := fs.String("root", "/", "root of the host tree to inspect (tests use a fake /proc)")
	target := fs.Int64("target", sysctl.DefaultTarget, "connections the host should hold")
	profile := fs.String("print-profile", "", "print an embedded host profile (e.g. gateway/99-wsgate.conf) and exit; \"list\" lists them")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *profile != "" {
		return printProfile(*profile)
	}
	r, err := sysctl.InspectWith(*root, sysctl.Options{Target: *target})
	if err != nil {
		fmt.Fprintln(os.Stderr, "wsgate doctor:", err)
		return 2
	}
	if err := r.Write(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "wsgate doctor:", err)
		return 2
	}
	if !r.Ready() {
		return 1
	}
	return 0
}

func printProfile(name string) int {
	if name == "list" {
		for _, n := range sysctl.ProfileNames() {
			fmt.Println(n)
		}
		return 0
	}
	b, err := sysctl.Profile(name)
	if err != nil {
		fmt.Fprintln(os.Stderr, "wsgate doctor:", err)
		return 2
	}
	os.Stdout.Write(b)
	return 0
}
