package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"strings"

	"github.com/wsgate/wsgate/bench/floor"
)

// floorCmd runs the fan-out floor (bench/floor): a bare write(2) loop over
// --conns accepted WebSocket connections, driven by JSON lines on stdin.
// The fanout scenario starts it; it is not meant to be run by hand.
func floorCmd(e env, args []string) int {
	fs := flag.NewFlagSet("floor", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var cfg floor.Config
	fs.StringVar(&cfg.Listen, "listen", "127.0.0.1:0", "address to accept connections on")
	fs.IntVar(&cfg.Conns, "conns", 1000, "connections to accept before taking commands")
	fs.StringVar(&cfg.Channel, "channel", "fanout", "channel named in the pushes (sizes the frames like a server's)")
	fs.IntVar(&cfg.DataBytes, "data-bytes", 0, "publication payload bytes (0: what makes an 80-byte push)")
	if ok, code := parseFlags(fs, args); !ok {
		return code
	}
	if _, err := raiseNofile(); err != nil {
		e.log.Warn("open-file limit", "err", err)
	}
	in := e.stdin
	if in == nil {
		in = strings.NewReader("")
	}
	if err := floor.Run(cfg, in, e.stdout); err != nil {
		fmt.Fprintln(e.stderr, "wsbench floor:", err)
		return 1
	}
	return 0
}

// decodeLine decodes one JSON line.
func decodeLine(line string, v any) error {
	return json.Unmarshal([]byte(strings.TrimSpace(line)), v)
}
