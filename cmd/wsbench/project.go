package main

import (
	"flag"
	"fmt"

	"github.com/wsgate/wsgate/bench/harness/report"
	"github.com/wsgate/wsgate/bench/harness/results"
)

// projectCmd prints the memory and fd budget for --conns idle connections
// from the idle slopes of an earlier run's JSON.
func projectCmd(e env, args []string) int {
	fs := flag.NewFlagSet("project", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	conns := fs.Int("conns", 1000000, "connections to project to")
	in := fs.String("json", "bench/results.json", "results of an idle (or all) run")
	if ok, code := parseFlags(fs, args); !ok {
		return code
	}
	if *conns < 1 {
		fmt.Fprintln(e.stderr, "wsbench project: --conns must be positive")
		return 2
	}
	run, err := results.Read(*in)
	if err != nil {
		fmt.Fprintln(e.stderr, "wsbench project:", err)
		return 2
	}
	proj := &results.Run{Designs: run.Designs}
	for _, d := range run.Designs {
		if p, ok := results.Project(d, *conns); ok {
			proj.Projection = append(proj.Projection, p)
		}
	}
	if len(proj.Projection) == 0 {
		fmt.Fprintf(e.stderr, "wsbench project: %s has no idle slopes (run wsbench idle or all with --json)\n", *in)
		return 1
	}
	fmt.Fprintf(e.stdout, "From %s (%s, %s):\n", *in, run.Command, run.Date)
	fmt.Fprint(e.stdout, report.ProjectionText(proj))
	return 0
}
