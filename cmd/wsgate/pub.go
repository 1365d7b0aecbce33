package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/wsgate/wsgate/gateway/client"
)

// publishTimeout bounds one publication, retries and reconnects included.
const publishTimeout = 30 * time.Second

// pub publishes DATA, or each line of stdin, on a channel.
func pub(args []string, stdout, stderr io.Writer) int {
	return runPub(args, os.Stdin, stdout, stderr)
}

func runPub(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newArgsFlagSet("pub", "CHANNEL [DATA]",
		"Publish DATA on CHANNEL, or without DATA each line of stdin as one publication, in order.\n"+
			"Every publication carries an idempotency key, so a retry after a lost reply publishes it\n"+
			"at most once. With --encoding json, DATA must be JSON text.",
		"exit status: 0 published, 1 a publication failed, 2 usage error")
	var cf clientFlags
	cf.register(fs)
	key := fs.String("key", "", "idempotency key for DATA (default: a random one per publication)")
	quiet := fs.Bool("quiet", false, "print nothing on success")
	if code, ok := parseArgs(fs, args, 1, 2, stdout, stderr); !ok {
		return code
	}
	if *key != "" && fs.NArg() != 2 {
		fmt.Fprintln(stderr, "wsgate pub: --key needs DATA (stdin lines get a key each)")
		return 2
	}
	opts, err := cf.options(stderr)
	if err != nil {
		fmt.Fprintln(stderr, "wsgate pub:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dctx, cancel := context.WithTimeout(ctx, publishTimeout)
	c, err := client.Dial(dctx, cf.url, opts)
	cancel()
	if err != nil {
		fmt.Fprintln(stderr, "wsgate pub:", err)
		return 1
	}
	defer c.Close()

	channel := fs.Arg(0)
	p := publisher{c: c, channel: channel, stderr: stderr, quiet: *quiet}
	if fs.NArg() == 2 {
		err = p.publish(ctx, []byte(fs.Arg(1)), *key)
	} else {
		err = p.lines(ctx, stdin)
	}
	if err != nil {
		fmt.Fprintln(stderr, "wsgate pub:", err)
		return 1
	}
	return 0
}

type publisher struct {
	c       *client.Client
	channel string
	stderr  io.Writer
	quiet   bool
}

func (p publisher) publish(ctx context.Context, data []byte, key string) error {
	if key == "" {
		key = client.NewIdempotencyKey()
	}
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	res, err := p.c.Publish(ctx, p.channel, data, client.WithIdempotencyKey(key))
	if err != nil {
		return fmt.Errorf("publish to %s: %w", p.channel, err)
	}
	if !p.quiet {
		replayed := ""
		if res.Replayed {
			replayed = ", replayed"
		}
		fmt.Fprintf(p.stderr, "published to %s at offset %d (epoch %q%s)\n", p.channel, res.Offset, res.Epoch, replayed)
	}
	return nil
}

// lines publishes each line of r (without its line ending) in order.
func (p publisher) lines(ctx context.Context, r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), client.DefaultMaxMessageBytes)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		if err := p.publish(ctx, line, ""); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read stdin: %w", err)
	}
	return nil
}
