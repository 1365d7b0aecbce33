package main

import (
	"fmt"
	"os"
)

func doctor(args []string) int {
	fmt.Fprintln(os.Stderr, "doctor: not yet wired", args)
	return 1
}
