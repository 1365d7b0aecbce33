// Command wsgate runs the WebSocket gateway (serve), checks whether a host
// is ready for a million connections (doctor), prints the Redis functions
// library (redis-functions) and prints its version.
//
// Exit status: 0 done, 1 failed (or doctor: not ready), 2 usage error.
package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// commands are the subcommands, as every usage message lists them.
var commands = []struct{ name, summary string }{
	{"serve", "run the gateway"},
	{"doctor", "check this host's limits for a million connections (exit 1: not ready)"},
	{"redis-functions", "print the Redis functions library (for FUNCTION LOAD REPLACE)"},
	{"sub", "print the publications of channels, one per line, resuming across reconnects"},
	{"pub", "publish on a channel, an argument or each line of stdin"},
	{"version", "print the version"},
	{"help", "show this help, or a command's: wsgate help <command>"},
}

// run runs one command line and returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "serve":
		return serve(args, stdout, stderr)
	case "doctor":
		return doctor(args, stdout, stderr)
	case "redis-functions":
		return redisFunctions(args, stdout, stderr)
	case "sub":
		return sub(args, stdout, stderr)
	case "pub":
		return pub(args, stdout, stderr)
	case "version", "--version", "-version":
		return printVersion(args, stdout, stderr)
	case "help", "-h", "-help", "--help":
		return help(args, stdout, stderr)
	}
	if strings.HasPrefix(cmd, "-") {
		fmt.Fprintf(stderr, "wsgate: %s before a command; flags follow the command: wsgate serve %s\n\n", cmd, cmd)
	} else {
		fmt.Fprintf(stderr, "wsgate: unknown command %q\n\n", cmd)
	}
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprint(w, "wsgate is a WebSocket gateway for a million connections.\n\nusage: wsgate <command> [flags]\n\n")
	listCommands(w)
	fmt.Fprint(w, "\n\"wsgate <command> -h\" lists a command's flags.\n")
}

func listCommands(w io.Writer) {
	fmt.Fprintln(w, "commands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-16s %s\n", c.name, c.summary)
	}
}

// help prints the top-level usage, or a command's (wsgate help serve).
func help(args []string, stdout, stderr io.Writer) int {
	switch {
	case len(args) == 0:
		usage(stdout)
		return 0
	case len(args) == 1 && args[0] != "help" && !strings.HasPrefix(args[0], "-"):
		return run([]string{args[0], "-h"}, stdout, stderr)
	}
	fmt.Fprintf(stderr, "wsgate help: want one command name, got %q\n\n", args)
	usage(stderr)
	return 2
}

func printVersion(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("version", "Print the version, the Go release and the platform.", "")
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	fmt.Fprintf(stdout, "wsgate %s %s %s/%s\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return 0
}
