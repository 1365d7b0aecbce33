//go:build race

package main

// raceEnabled: the smoke test builds its binaries with -race too, so the
// harness's own goroutines are checked in a real run.
const raceEnabled = true
