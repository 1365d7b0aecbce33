// Command wsbench is wsgate's benchmark harness: load generators that hold
// and drive many WebSocket connections from one process.
//
//	wsbench <command> [flags]
//
// Each command lives in its own file; main only dispatches.
package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
)

// env is what a command may touch of the process, so tests can run
// commands in-process.
type env struct {
	stdin  io.Reader // nil when stdin is /dev/null (see processStdin)
	stdout io.Writer
	stderr io.Writer
	log    *slog.Logger
}

func main() {
	e := env{stdin: processStdin(), stdout: os.Stdout, stderr: os.Stderr,
		log: slog.New(slog.NewTextHandler(os.Stderr, nil))}
	os.Exit(run(e, os.Args[1:]))
}

// processStdin returns os.Stdin, or nil when it is /dev/null: a background
// job or a CI step has its stdin there, and its instant EOF would end every
// hold at once although nobody asked for that.
func processStdin() io.Reader {
	in, errIn := os.Stdin.Stat()
	null, errNull := os.Stat(os.DevNull)
	if errIn == nil && errNull == nil && os.SameFile(in, null) {
		return nil
	}
	return os.Stdin
}

func run(e env, args []string) int {
	if len(args) == 0 {
		usage(e.stderr)
		return 2
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "hold":
		return hold(e, rest)
	case "pubsub":
		return pubsubCmd(e, rest)
	case "naive":
		return naiveCmd(e, rest)
	case "idle":
		return idleCmd(e, rest)
	case "fanout":
		return fanoutCmd(e, rest)
	case "churn":
		return churnCmd(e, rest)
	case "slow":
		return slowCmd(e, rest)
	case "resume":
		return resumeCmd(e, rest)
	case "abuse":
		return abuseCmd(e, rest)
	case "abuser":
		return abuserCmd(e, rest)
	case "project":
		return projectCmd(e, rest)
	case "all":
		return allCmd(e, rest)
	case "report":
		return reportCmd(e, rest)
	case "floor":
		return floorCmd(e, rest)
	case "million":
		return millionCmd(e, rest)
	case "million-client":
		return millionClientCmd(e, rest)
	case "help", "-h", "--help":
		usage(e.stdout)
		return 0
	default:
		fmt.Fprintf(e.stderr, "wsbench: unknown command %q\n", cmd)
		usage(e.stderr)
		return 2
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: wsbench <command> [flags]

commands:
  hold   open many connections, print dial stats as JSON, hold them until
         stdin closes, a signal or --duration; "wsbench hold -h" lists flags
  pubsub check fan-out end to end against running gateways: every
         subscriber gets every publication of its channel exactly once, in
         order; prints one JSON line, exit 1 when not; "wsbench pubsub -h"
  naive  run the naive reference server (gorilla, two goroutines per
         connection) until SIGINT/SIGTERM; "wsbench naive -h" lists flags
  idle   idle connections: RSS, heap, goroutines, threads, fds, kernel
         memory per connection (slopes), connect rate, idle CPU
  fanout fan-out to many subscribers at a fixed rate and in bursts: CPU
         and write syscalls per delivery, latency, against the floor
  churn  connect/disconnect storms: accepted conn/s, failures, overflows
  slow   readers' latency with and without non-reading subscribers, RSS
  resume clients of a gateway on Redis reconnect at once after it is
         restarted and resume from their last offset: time until all
         recovered, how many, Redis calls per client (wsgate only)
  abuse  well-behaved clients' ping latency alone and while one client
         floods publishes or a connection storm hits the limits (wsgate)
  project memory and fd budget for a million connections from the
         measured slopes (--json of an earlier run)
  all    the standard comparison (idle, fanout, churn, slow): about 5
         minutes for --target both, 10 for all (with Centrifugo); --report
         DIR rewrites DIR/README.md's results section
  report render a saved run (--json) again: tables, and with --report DIR
         the README section and charts
  million hold --conns (a million) connections at once over many server
         and load-client processes (each under the open-file cap): ramp,
         idle with pings, broadcast; then the naive server's ramp until
         memory or time runs out. Prepares the host's sysctls and restores
         them; not part of "all"; "wsbench million -h" lists flags
  floor  the fan-out floor (a bare write loop), driven by "fanout"
  million-client one load-client process of "million", driven by it
  abuser the abuse scenario's flooder or connection storm in a process of
         its own, driven by "abuse"; it stops when stdin closes
`)
}
