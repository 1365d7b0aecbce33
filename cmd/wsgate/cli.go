package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

// newFlagSet returns the flag set of a command. Its usage message (-h,
// --help, "wsgate help <name>") gives the summary, notes, the flags and the
// other commands; parseFlags prints it.
func newFlagSet(name, summary, notes string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "usage: wsgate %s [flags]\n\n%s\n", name, summary)
		if notes != "" {
			fmt.Fprintf(w, "\n%s\n", notes)
		}
		if hasFlags(fs) {
			fmt.Fprint(w, "\nflags:\n")
			fs.PrintDefaults()
		}
		fmt.Fprintln(w)
		listCommands(w)
	}
	return fs
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// parseFlags parses a command's arguments. ok is false when the command
// must not run; code is then its exit status: 0 after -h (usage on stdout),
// 2 after a bad flag or a stray argument (the error and a hint on stderr).
func parseFlags(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (code int, ok bool) {
	usage := fs.Usage
	fs.Usage = func() {} // printed below, to the stream the outcome calls for
	fs.SetOutput(stderr)
	err := fs.Parse(args)
	fs.Usage = usage
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(stdout)
		fs.Usage()
		return 0, false
	case err != nil: // the flag package has printed the error
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "unexpected argument %q: wsgate %s takes flags only\n", fs.Arg(0), fs.Name())
	default:
		return 0, true
	}
	fmt.Fprintf(stderr, "run \"wsgate %s -h\" for its flags\n", fs.Name())
	return 2, false
}
