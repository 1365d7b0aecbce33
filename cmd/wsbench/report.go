package main

import (
	"flag"
	"fmt"

	"github.com/wsgate/wsgate/bench/harness/report"
	"github.com/wsgate/wsgate/bench/harness/results"
)

// reportCmd renders a saved run again: the tables on stdout and, with
// --report, the README section and charts. Re-rendering never re-measures,
// so a report can be regenerated after the renderer changes.
func reportCmd(e env, args []string) int {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	in := fs.String("json", "bench/results.json", "results written by --json")
	dir := fs.String("report", "", "also rewrite DIR/README.md's results section and DIR/charts")
	if ok, code := parseFlags(fs, args); !ok {
		return code
	}
	run, err := results.Read(*in)
	if err != nil {
		fmt.Fprintln(e.stderr, "wsbench report:", err)
		return 2
	}
	fmt.Fprint(e.stdout, report.Text(run))
	if *dir != "" {
		if err := report.Write(*dir, run); err != nil {
			fmt.Fprintln(e.stderr, "wsbench report:", err)
			return 1
		}
	}
	return 0
}
