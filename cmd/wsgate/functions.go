package main

import (
	"fmt"
	"io"

	redisbroker "github.com/wsgate/wsgate/gateway/broker/redis"
)

// redisFunctions prints the functions library the gateways load into
// Redis, so a backend or an operator can load it without a gateway:
//
//	wsgate redis-functions | redis-cli -x FUNCTION LOAD REPLACE
func redisFunctions(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("redis-functions", "Print the Lua functions library the gateways load into Redis, so a backend or an\n"+
		"operator can load it without a gateway:\n\n  wsgate redis-functions | redis-cli -x FUNCTION LOAD REPLACE", "")
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	if _, err := fmt.Fprint(stdout, redisbroker.Library()); err != nil {
		fmt.Fprintln(stderr, "wsgate redis-functions:", err)
		return 1
	}
	return 0
}
