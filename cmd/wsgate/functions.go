package main

import (
	"fmt"
	"os"

	redisbroker "github.com/wsgate/wsgate/gateway/broker/redis"
)

// redisFunctions prints the functions library the gateways load into
// Redis, so a backend or an operator can load it without a gateway:
//
//	wsgate redis-functions | redis-cli -x FUNCTION LOAD REPLACE
func redisFunctions(args []string) int {
	if len(args) > 0 {
		fmt.Fprintln(os.Stderr, "usage: wsgate redis-functions | redis-cli -x FUNCTION LOAD REPLACE")
		return 2
	}
	fmt.Print(redisbroker.Library())
	return 0
}
