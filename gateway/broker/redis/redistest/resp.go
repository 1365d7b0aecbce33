package redistest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// ReplyError is an error reply from Redis, e.g. "ERR unknown command" or
// "MOVED 3999 127.0.0.1:40001". Tests match on it with errors.As or on its
// text.
type ReplyError string

func (e ReplyError) Error() string { return string(e) }

// ErrNil is returned by Do when Redis answers with a nil reply (GET of a
// missing key), so tests can tell "missing" from "empty string".
var ErrNil = errors.New("redistest: nil reply")

// roundTrip sends cmds pipelined on one fresh connection and returns one
// reply per command. It speaks just enough RESP2 for test plumbing instead
// of using a client library: it starts no goroutines (tests of other
// packages run goleak, sometimes before their cleanups), it never caches
// cluster topology or redirects, and it honours ctx on a server that has
// been SIGSTOPped. Reply values are string, int64, nil, []any or ReplyError.
func roundTrip(ctx context.Context, addr string, cmds ...[]string) ([]any, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		if err := conn.SetDeadline(dl); err != nil {
			return nil, err
		}
	}
	// A deadline covers timeouts; cancellation needs the connection unblocked
	// explicitly. stop() keeps the callback from firing after we return.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	var b strings.Builder
	for _, args := range cmds {
		fmt.Fprintf(&b, "*%d\r\n", len(args))
		for _, a := range args {
			fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
		}
	}
	if _, err := io.WriteString(conn, b.String()); err != nil {
		return nil, ctxErr(ctx, err)
	}
	r := bufio.NewReader(conn)
	replies := make([]any, 0, len(cmds))
	for range cmds {
		v, err := readReply(r)
		if err != nil {
			return nil, ctxErr(ctx, err)
		}
		replies = append(replies, v)
	}
	return replies, nil
}

// ctxErr prefers the context's error, which explains an I/O timeout better
// than "i/o timeout" does. The connection deadline can fire a moment before
// the context's own timer, so a passed deadline counts too.
func ctxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%w (%v)", cerr, err)
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return fmt.Errorf("%w (%v)", context.DeadlineExceeded, err)
	}
	return err
}

// do runs one command and turns an error reply into an error.
func do(ctx context.Context, addr string, args ...string) (any, error) {
	if len(args) == 0 {
		return nil, errors.New("redistest: empty command")
	}
	rs, err := roundTrip(ctx, addr, args)
	if err != nil {
		return nil, err
	}
	if e, ok := rs[0].(ReplyError); ok {
		return nil, e
	}
	return rs[0], nil
}

// maxBulk bounds what a corrupt or foreign peer can make us allocate.
const maxBulk = 512 << 20

func readReply(r *bufio.Reader) (any, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if line == "" {
		return nil, errors.New("redistest: empty RESP line")
	}
	body := line[1:]
	switch line[0] {
	case '+':
		return body, nil
	case '-':
		return ReplyError(body), nil
	case ':':
		n, err := strconv.ParseInt(body, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("redistest: bad integer reply %q", line)
		}
		return n, nil
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil || n < -1 || n > maxBulk {
			return nil, fmt.Errorf("redistest: bad bulk length %q", line)
		}
		if n == -1 {
			return nil, nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(body)
		if err != nil || n < -1 || n > maxBulk {
			return nil, fmt.Errorf("redistest: bad array length %q", line)
		}
		if n == -1 {
			return nil, nil
		}
		arr := make([]any, n)
		for i := range arr {
			if arr[i], err = readReply(r); err != nil {
				return nil, err
			}
		}
		return arr, nil
	default:
		return nil, fmt.Errorf("redistest: unexpected RESP2 reply %q", line)
	}
}

// flatten renders a reply the way `redis-cli --raw` does: scalars as text,
// arrays (nested too) one element per line, nil as an empty line.
func flatten(b *strings.Builder, v any) {
	switch v := v.(type) {
	case string:
		b.WriteString(v)
	case int64:
		b.WriteString(strconv.FormatInt(v, 10))
	case ReplyError:
		b.WriteString(string(v))
	case []any:
		for i, e := range v {
			if i > 0 {
				b.WriteByte('\n')
			}
			flatten(b, e)
		}
	}
}
