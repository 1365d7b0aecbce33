package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"unicode/utf8"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway/client"
)

// clientFlags are the connection flags sub and pub share.
type clientFlags struct {
	url      string
	token    string
	encoding string
}

func (f *clientFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.url, "url", "ws://127.0.0.1:8080/ws", "the gateway's client endpoint")
	fs.StringVar(&f.token, "token", os.Getenv("WSGATE_TOKEN"), "bearer token for the handshake (default $WSGATE_TOKEN)")
	fs.StringVar(&f.encoding, "encoding", "msgpack", "wire encoding: msgpack or json")
}

// newArgsFlagSet is newFlagSet for a command that takes arguments after
// its flags (named by operands in the usage line).
func newArgsFlagSet(name, operands, summary, notes string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "usage: wsgate %s [flags] %s\n\n%s\n", name, operands, summary)
		if notes != "" {
			fmt.Fprintf(w, "\n%s\n", notes)
		}
		fmt.Fprint(w, "\nflags:\n")
		fs.PrintDefaults()
		fmt.Fprintln(w)
		listCommands(w)
	}
	return fs
}

// parseArgs is parseFlags for commands with between minArgs and maxArgs
// arguments (maxArgs < 0: no limit).
func parseArgs(fs *flag.FlagSet, args []string, minArgs, maxArgs int, stdout, stderr io.Writer) (code int, ok bool) {
	usage := fs.Usage
	fs.Usage = func() {}
	fs.SetOutput(stderr)
	err := fs.Parse(args)
	fs.Usage = usage
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(stdout)
		fs.Usage()
		return 0, false
	case err != nil: // the flag package has printed the error
	case fs.NArg() < minArgs || (maxArgs >= 0 && fs.NArg() > maxArgs):
		fmt.Fprintf(stderr, "wsgate %s: wrong number of arguments (%d)\n", fs.Name(), fs.NArg())
	default:
		return 0, true
	}
	fmt.Fprintf(stderr, "run \"wsgate %s -h\" for its usage\n", fs.Name())
	return 2, false
}

// options turns the flags into client options; notices go to stderr.
func (f *clientFlags) options(stderr io.Writer) (client.Options, error) {
	o := client.Options{Token: f.token,
		Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	switch f.encoding {
	case "msgpack":
	case "json":
		o.Encoding = codec.JSON
	default:
		return o, fmt.Errorf("--encoding %q: want msgpack or json", f.encoding)
	}
	return o, nil
}

// sub prints every publication of the channels as one line, resuming
// across reconnects, until interrupted or the server closes it for good.
func sub(args []string, stdout, stderr io.Writer) int {
	fs := newArgsFlagSet("sub", "CHANNEL...",
		"Print each publication of the channels as one line: CHANNEL OFFSET DATA (DATA as text when\n"+
			"it is printable UTF-8 on one line, else base64:...), or a JSON object with --json. Reconnects\n"+
			"and resumes by itself; notices (reconnects, missed publications) go to stderr.",
		"exit status: 0 after SIGINT/SIGTERM, 1 when the server ends it for good, 2 usage error")
	var cf clientFlags
	cf.register(fs)
	asJSON := fs.Bool("json", false, `print each publication as a JSON object {"channel","offset","epoch","data"|"b64"}`)
	if code, ok := parseArgs(fs, args, 1, -1, stdout, stderr); !ok {
		return code
	}
	opts, err := cf.options(stderr)
	if err != nil {
		fmt.Fprintln(stderr, "wsgate sub:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	p := &subPrinter{out: bufio.NewWriter(stdout), stderr: stderr, json: *asJSON,
		active: fs.NArg(), ended: make(chan struct{})}
	opts.OnState = p.state
	c, err := client.Dial(ctx, cf.url, opts)
	if err != nil {
		fmt.Fprintln(stderr, "wsgate sub:", err)
		return 1
	}
	defer c.Close()
	for _, ch := range fs.Args() {
		if _, err := c.Subscribe(ctx, ch, p.event); err != nil {
			fmt.Fprintf(stderr, "wsgate sub: subscribe %s: %v\n", ch, err)
			return 1
		}
	}
	select {
	case <-ctx.Done():
		return 0
	case <-c.Done():
		fmt.Fprintln(stderr, "wsgate sub: stopped:", c.Err())
		return 1
	case <-p.ended:
		fmt.Fprintln(stderr, "wsgate sub: no subscription left")
		return 1
	}
}

// subPrinter writes publications to stdout and notices to stderr. Its
// methods run on the client's one event goroutine.
type subPrinter struct {
	out          *bufio.Writer
	stderr       io.Writer
	json         bool
	disconnected bool
	active       int           // subscriptions not ended
	ended        chan struct{} // closed when active reaches 0
}

func (p *subPrinter) event(ev client.Event) {
	switch e := ev.(type) {
	case client.Publication:
		if p.json {
			p.out.Write(publicationJSON(e))
		} else {
			fmt.Fprintf(p.out, "%s %d %s", e.Channel, e.Offset, printable(e.Data))
		}
		p.out.WriteByte('\n')
		p.out.Flush()
	case client.Subscribed:
		switch {
		case !e.Resumed:
			fmt.Fprintf(p.stderr, "wsgate sub: subscribed to %s at offset %d (epoch %q)\n", e.Channel, e.Offset, e.Epoch)
		case e.Recovered:
			fmt.Fprintf(p.stderr, "wsgate sub: %s resumed after offset %d, nothing missed\n", e.Channel, e.Offset)
		default:
			fmt.Fprintf(p.stderr, "wsgate sub: %s NOT RECOVERED (%s): publications may be missing; continuing at offset %d (epoch %q)\n",
				e.Channel, e.Reason, e.Offset, e.Epoch)
		}
	case client.Gap:
		fmt.Fprintf(p.stderr, "wsgate sub: %s: publications %d..%d are lost\n", e.Channel, e.From, e.To)
	case client.EpochChanged:
		fmt.Fprintf(p.stderr, "wsgate sub: %s: history reset (epoch %q -> %q): publications after %d may be missing\n",
			e.Channel, e.Previous, e.Epoch, e.LastOffset)
	case client.Unsubscribed:
		fmt.Fprintf(p.stderr, "wsgate sub: %s: subscription ended: %v\n", e.Channel, e.Err)
		if p.active--; p.active == 0 {
			close(p.ended)
		}
	}
}

func (p *subPrinter) state(s client.State) {
	switch s.Kind {
	case client.StateDisconnected:
		p.disconnected = true
		fmt.Fprintf(p.stderr, "wsgate sub: disconnected (%v); reconnecting in %v\n", s.Err, s.Delay.Round(1e6))
	case client.StateConnected:
		if p.disconnected {
			fmt.Fprintln(p.stderr, "wsgate sub: reconnected")
		}
	}
}

// printable returns data as text when it is UTF-8 on one line, else as
// base64:<standard base64>.
func printable(data []byte) string {
	if utf8.Valid(data) {
		ok := true
		for _, c := range data {
			if c < 0x20 && c != '\t' || c == 0x7f {
				ok = false
				break
			}
		}
		if ok {
			return string(data)
		}
	}
	return "base64:" + base64.StdEncoding.EncodeToString(data)
}

// publicationJSON is the --json line: "data" holds the payload itself when
// it is JSON text, else "b64" its base64 (as in the protocol's JSON).
func publicationJSON(e client.Publication) []byte {
	b := []byte(`{"channel":`)
	b = strconv.AppendQuote(b, e.Channel) // channel names are plain ASCII
	b = append(b, `,"offset":`...)
	b = strconv.AppendUint(b, e.Offset, 10)
	epoch, _ := json.Marshal(e.Epoch)
	b = append(b, `,"epoch":`...)
	b = append(b, epoch...)
	var compact bytes.Buffer // a payload with newlines must still print as one line
	if json.Compact(&compact, e.Data) == nil {
		b = append(b, `,"data":`...)
		b = append(b, compact.Bytes()...)
	} else {
		b = append(b, `,"b64":"`...)
		b = base64.StdEncoding.AppendEncode(b, e.Data)
		b = append(b, '"')
	}
	return append(b, '}')
}
