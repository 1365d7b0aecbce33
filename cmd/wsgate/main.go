// Command wsgate runs the WebSocket gateway (serve), checks whether a host
// is ready for a million connections (doctor) and prints its version.
package main

import (
	"fmt"
	"os"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	cmd := "serve"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(args)
	case "doctor":
		return doctor(args)
	case "redis-functions":
		return redisFunctions(args)
	case "version":
		fmt.Println("wsgate", version)
		return 0
	case "help", "-h", "--help":
		usage()
		return 0
	default:
		fmt.Fprintf(os.Stderr, "wsgate: unknown command %q\n", cmd)
		usage()
		return 2
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage: wsgate <command> [flags]

commands:
  serve    run the gateway (default); "wsgate serve -h" lists its flags
  doctor   check this host's limits for a million connections (exit 1: not ready)
  redis-functions  print the Redis functions library (FUNCTION LOAD REPLACE)
  version  print the version
`)
}
