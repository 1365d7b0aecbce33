package gateway_test

// Protocol conformance of the raw echo endpoint, case by case after the
// Autobahn|Testsuite categories 1-7, 9 and 10 (ids as in Autobahn; "X" ids
// are wsgate's own additions in the same spirit). Every case asserts the
// exact outcome: which messages come back, which close code, and that the
// server then closes TCP.

import (
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/wsgate/wsgate/gateway"
)

const (
	defaultLimit = 64 << 10 // MaxMessageBytes of the default test server
	bigLimit     = 4 << 20  // MaxMessageBytes of the server for category 9

	// chopPause separates chops of a chopped write, so the server sees
	// them in separate reads most of the time. Chopped cases are kept to a
	// few hundred chops: on a loaded machine a sleep lasts much longer.
	chopPause = 200 * time.Microsecond
	// quiet is how long a server must stay silent when it has nothing to say
	// yet, e.g. after the valid first part of a message.
	quiet = 100 * time.Millisecond
	// failFastTimeout is how long a server may take to fail a connection
	// on bytes it already has: generous for loopback, short enough that a
	// server waiting for more shows up as a failure, not a stall.
	failFastTimeout = 2 * time.Second
)

// Close codes, RFC 6455 §7.4.1.
const (
	closeNormal      = 1000
	closeProtocol    = 1002
	closeInvalidData = 1007
	closeTooBig      = 1009
)

// step is one action or expectation on a connection.
type step func(c *wsConn)

// rawCase is one connection's worth of exchange.
type rawCase struct {
	name  string
	steps []step
}

func tc(name string, steps ...step) rawCase { return rawCase{name, steps} }

func send(frames ...frame) step { return func(c *wsConn) { c.send(frames...) } }

// sendEach writes each frame with its own Write call.
func sendEach(frames ...frame) step {
	return func(c *wsConn) {
		for _, f := range frames {
			c.send(f)
		}
	}
}

func sendChops(chop int, frames ...frame) step {
	return func(c *wsConn) { c.sendChopped(chop, chopPause, frames...) }
}

func sendBytes(b []byte) step          { return func(c *wsConn) { c.writeRaw(b) } }
func wantText(s string) step           { return func(c *wsConn) { c.expectMessage(opText, []byte(s)) } }
func wantBinary(b []byte) step         { return func(c *wsConn) { c.expectMessage(opBinary, b) } }
func wantPong(p string) step           { return func(c *wsConn) { c.expectPong([]byte(p)) } }
func wantClose(codes ...uint16) step   { return func(c *wsConn) { c.expectClose(codes...) } }
func wantNothing(d time.Duration) step { return func(c *wsConn) { c.expectNothing(d) } }

// wantCloseNow is wantClose for cases where the server holds all it needs
// to decide and nothing more is coming: it must not wait for the rest of a
// frame or message, so the short deadline is part of the assertion.
func wantCloseNow(codes ...uint16) step {
	return func(c *wsConn) {
		saved := c.readTimeout
		c.readTimeout = failFastTimeout
		defer func() { c.readTimeout = saved }()
		c.expectClose(codes...)
	}
}

// runCases runs each case on its own connection to addr. A case that leaves
// the connection open is finished with a clean closing handshake, which must
// succeed too (as Autobahn does after every case).
func runCases(t *testing.T, addr string, cases []rawCase) {
	t.Helper()
	seen := map[string]bool{}
	for _, rc := range cases {
		if seen[rc.name] {
			t.Fatalf("duplicate case name %q", rc.name)
		}
		seen[rc.name] = true
		t.Run(rc.name, func(t *testing.T) {
			t.Parallel()
			c := dialWS(t, addr, "/echo")
			for _, s := range rc.steps {
				s(c)
			}
			if !c.closed {
				c.send(closeFrame(closeNormal, ""))
				c.expectClose(closeNormal)
			}
		})
	}
}

func TestConformance(t *testing.T) {
	skipSlow(t)
	addr := startEcho(t, nil)
	big := startEcho(t, func(cfg *gateway.Config) {
		cfg.MaxMessageBytes = bigLimit
		// The echo of a 4 MiB message is queued whole; the outbound queue
		// bound is another feature with its own tests, not this one's.
		cfg.MaxQueueBytes = 4 * bigLimit
	})

	t.Run("1 framing", func(t *testing.T) { runCases(t, addr, framingCases()) })
	t.Run("2 pings and pongs", func(t *testing.T) { runCases(t, addr, pingCases()) })
	t.Run("3 reserved bits", func(t *testing.T) { runCases(t, addr, reservedBitCases()) })
	t.Run("4 opcodes", func(t *testing.T) { runCases(t, addr, opcodeCases()) })
	t.Run("5 fragmentation", func(t *testing.T) { runCases(t, addr, fragmentationCases()) })
	t.Run("6 UTF-8", func(t *testing.T) { runCases(t, addr, utf8Cases(t)) })
	t.Run("7 close", func(t *testing.T) {
		runCases(t, addr, closeCases())
		runCases(t, big, closeBigCases())
	})
	t.Run("X9 limits", func(t *testing.T) {
		runCases(t, addr, limitCases())
		runCases(t, big, bigLimitCases())
	})
	t.Run("9 large messages", func(t *testing.T) { largeMessageCases(t, big) })
	t.Run("10 fragment sizes", func(t *testing.T) { runCases(t, addr, autoFragmentCases()) })
}

// textOf returns n bytes of valid UTF-8 with plenty of multi-byte code
// points, so that fragments and chops of it split code points.
func textOf(n int) string {
	const unit = "wsgate κόσμε µ@ßöäüàá €𤭢 0123456789 "
	s := strings.Repeat(unit, n/len(unit)+1)[:n]
	// Cut back to a code point boundary and pad with ASCII to exactly n bytes.
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + strings.Repeat("*", n-len(s))
}

// binOf returns n bytes covering every byte value, in an order that does
// not repeat every 256 bytes, so a misplaced chunk shows.
func binOf(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>9)
	}
	return b
}

// fragments splits payload into frames of at most size bytes: the first
// carries op, the rest are continuations, the last has FIN set.
func fragments(op byte, payload []byte, size int) []frame {
	var fs []frame
	for first := true; first || len(payload) > 0; first = false {
		n := min(size, len(payload))
		f := frame{op: opCont, payload: payload[:n], fin: n == len(payload)}
		if first {
			f.op = op
		}
		fs = append(fs, f)
		payload = payload[n:]
	}
	return fs
}

// --- 1 framing ---------------------------------------------------------

func framingCases() []rawCase {
	var cs []rawCase
	lens := []int{0, 125, 126, 127, 128, 65535, 65536}
	for i, n := range lens {
		p := textOf(n)
		cs = append(cs, tc(fmt.Sprintf("1.1.%d text %d bytes", i+1, n), send(textFrame(p)), wantText(p)))
	}
	p := textOf(65536)
	cs = append(cs, tc("1.1.8 text 65536 bytes in 997-byte chops", sendChops(997, textFrame(p)), wantText(p)))
	for i, n := range lens {
		b := binOf(n)
		cs = append(cs, tc(fmt.Sprintf("1.2.%d binary %d bytes", i+1, n), send(binFrame(b)), wantBinary(b)))
	}
	b := binOf(65536)
	cs = append(cs, tc("1.2.8 binary 65536 bytes in 997-byte chops", sendChops(997, binFrame(b)), wantBinary(b)))

	// Non-minimal length encodings break RFC 6455 §5.2's "minimal number of
	// bytes" rule for senders, but the server's spec lists them nowhere
	// among the errors: be liberal, decode the length and echo.
	cs = append(cs,
		tc("X1.1 text 5 bytes with 16-bit length", send(textFrame("Hello").withForm(len16)), wantText("Hello")),
		tc("X1.2 text 5 bytes with 64-bit length", send(textFrame("Hello").withForm(len64)), wantText("Hello")),
		tc("X1.3 binary 0 bytes with 64-bit length", send(binFrame(nil).withForm(len64)), wantBinary(nil)),
		tc("X1.4 binary 200 bytes with 64-bit length", send(binFrame(binOf(200)).withForm(len64)), wantBinary(binOf(200))),
	)

	// A 64-bit length with the most significant bit set is invalid
	// (§5.2). Only the header is sent: the server must not wait for 2^63 bytes,
	// and it must call this a protocol error, not an oversized message.
	cs = append(cs,
		tc("X1.5 text with 64-bit length MSB set", func(c *wsConn) {
			c.writeRaw(c.header(true, opText, 1<<63|5))
		}, wantCloseNow(closeProtocol)),
		tc("X1.6 binary with 64-bit length 2^64-1", func(c *wsConn) {
			c.writeRaw(c.header(true, opBinary, 1<<64-1))
		}, wantCloseNow(closeProtocol)),
	)

	// A client must mask every frame (§5.1); the server must fail the
	// connection on an unmasked one, whatever its type.
	cs = append(cs,
		tc("X1.7 unmasked text", send(textFrame("Hello").noMask()), wantClose(closeProtocol)),
		tc("X1.8 unmasked binary", send(binFrame(binOf(16)).noMask()), wantClose(closeProtocol)),
		tc("X1.9 unmasked empty text", send(textFrame("").noMask()), wantClose(closeProtocol)),
		tc("X1.10 unmasked ping", send(pingFrame("ping").noMask()), wantClose(closeProtocol)),
		tc("X1.11 unmasked close", send(closeFrame(closeNormal, "").noMask()), wantClose(closeProtocol)),
		tc("X1.12 unmasked continuation",
			send(frag(opText, "frag1", false), frag(opCont, "frag2", true).noMask()), wantClose(closeProtocol)),
		tc("X1.13 unmasked text after a good one",
			send(textFrame("good"), textFrame("bad").noMask()), wantText("good"), wantClose(closeProtocol)),
	)

	// Several frames in one write, and frame boundaries anywhere in a read.
	cs = append(cs,
		tc("X1.14 three messages in one write",
			send(textFrame("one"), binFrame([]byte("two")), textFrame("three")),
			wantText("one"), wantBinary([]byte("two")), wantText("three")),
		tc("X1.15 three messages in 1-byte chops",
			sendChops(1, textFrame("one"), binFrame([]byte("two")), textFrame(textOf(130))),
			wantText("one"), wantBinary([]byte("two")), wantText(textOf(130))),
		tc("X1.16 200-byte frame with 64-bit length in 3-byte chops",
			sendChops(3, textFrame(textOf(200)).withForm(len64)), wantText(textOf(200))),
	)
	return cs
}

// --- 2 pings and pongs ---------------------------------------------------

func pingCases() []rawCase {
	bin := "\x00\xff\xfe\xfd\xfc\xfb\x00\xff"
	p125 := strings.Repeat("\xfe", 125)
	p126 := strings.Repeat("\xfe", 126)
	var tenPings []frame
	for i := range 10 {
		tenPings = append(tenPings, pingFrame(fmt.Sprintf("payload-%d", i)))
	}
	tenPongs := func(c *wsConn) {
		for i := range 10 {
			c.expectPong([]byte(fmt.Sprintf("payload-%d", i)))
		}
	}
	// After an unsolicited pong the server must say nothing; an echo that
	// comes back first proves nothing was said in between.
	return []rawCase{
		tc("2.1 ping without payload", send(pingFrame("")), wantPong("")),
		tc("2.2 ping with small text payload", send(pingFrame("Hello, world!")), wantPong("Hello, world!")),
		tc("2.3 ping with small binary payload", send(pingFrame(bin)), wantPong(bin)),
		tc("2.4 ping with 125-byte payload", send(pingFrame(p125)), wantPong(p125)),
		tc("2.5 ping with 126-byte payload", send(pingFrame(p126)), wantClose(closeProtocol)),
		tc("2.6 ping with 125-byte payload in 1-byte chops", sendChops(1, pingFrame(p125)), wantPong(p125)),
		tc("2.7 unsolicited pong without payload", send(pongFrame("")), send(textFrame("sync")), wantText("sync")),
		tc("2.8 unsolicited pong with payload", send(pongFrame("unsolicited pong payload")), send(textFrame("sync")), wantText("sync")),
		tc("2.9 unsolicited pong then ping",
			send(pongFrame("unsolicited pong payload"), pingFrame("ping payload")), wantPong("ping payload")),
		tc("2.10 10 pings in one write", send(tenPings...), tenPongs),
		tc("2.11 10 pings in 1-byte chops", sendChops(1, tenPings...), tenPongs),
		tc("X2.1 ping with 126-byte payload, 64-bit length", send(pingFrame(p126).withForm(len64)), wantClose(closeProtocol)),
		tc("X2.2 ping declaring 65536 bytes, header only", func(c *wsConn) {
			c.writeRaw(c.header(true, opPing, 65536))
		}, wantCloseNow(closeProtocol)),
		tc("X2.3 pong with 126-byte payload", send(pongFrame(p126)), wantClose(closeProtocol)),
		tc("X2.4 ping between two messages", send(textFrame("a"), pingFrame("p"), textFrame("b")),
			wantText("a"), wantPong("p"), wantText("b")),
	}
}

// --- 3 reserved bits -----------------------------------------------------

func reservedBitCases() []rawCase {
	hello := "Hello, world!"
	bin := binOf(8)
	return []rawCase{
		tc("3.1 text with RSV=1", send(textFrame(hello).withRSV(1)), wantClose(closeProtocol)),
		tc("3.2 text, text with RSV=2, ping; separate writes",
			sendEach(textFrame(hello), textFrame(hello).withRSV(2), pingFrame("")),
			wantText(hello), wantClose(closeProtocol)),
		tc("3.3 text, text with RSV=3, ping; one write",
			send(textFrame(hello), textFrame(hello).withRSV(3), pingFrame("")),
			wantText(hello), wantClose(closeProtocol)),
		tc("3.4 text, text with RSV=4, ping; 1-byte chops",
			sendChops(1, textFrame(hello), textFrame(hello).withRSV(4), pingFrame("")),
			wantText(hello), wantClose(closeProtocol)),
		tc("3.5 binary with RSV=5", send(binFrame(bin).withRSV(5)), wantClose(closeProtocol)),
		tc("3.6 ping with RSV=6", send(pingFrame(hello).withRSV(6)), wantClose(closeProtocol)),
		tc("3.7 close with RSV=7", send(closeFrame(closeNormal, "").withRSV(7)), wantClose(closeProtocol)),
		tc("X3.1 continuation with RSV=1",
			send(frag(opText, "frag1", false), frag(opCont, "frag2", true).withRSV(1)), wantClose(closeProtocol)),
		tc("X3.2 empty text with RSV=4 (RSV1, the compression bit)", send(textFrame("").withRSV(4)), wantClose(closeProtocol)),
	}
}

// --- 4 opcodes -----------------------------------------------------------

func opcodeCases() []rawCase {
	var cs []rawCase
	hello := "Hello, world!"
	for i, ops := range [][]byte{{3, 4, 5, 6, 7}, {11, 12, 13, 14, 15}} {
		sub := i + 1
		for j, op := range ops {
			id := fmt.Sprintf("4.%d.%d", sub, j+1)
			var c rawCase
			switch j {
			case 0:
				c = tc(id+fmt.Sprintf(" opcode %d", op), send(opFrame(op, "")), wantClose(closeProtocol))
			case 1:
				c = tc(id+fmt.Sprintf(" opcode %d with payload", op), send(opFrame(op, "reserved opcode payload")), wantClose(closeProtocol))
			case 2:
				c = tc(id+fmt.Sprintf(" text, opcode %d, ping", op),
					send(textFrame(hello), opFrame(op, ""), pingFrame("")), wantText(hello), wantClose(closeProtocol))
			case 3:
				c = tc(id+fmt.Sprintf(" text, opcode %d with payload, ping", op),
					send(textFrame(hello), opFrame(op, "reserved opcode payload"), pingFrame("")), wantText(hello), wantClose(closeProtocol))
			case 4:
				c = tc(id+fmt.Sprintf(" text, opcode %d with payload, ping; 1-byte chops", op),
					sendChops(1, textFrame(hello), opFrame(op, "reserved opcode payload"), pingFrame("")), wantText(hello), wantClose(closeProtocol))
			}
			cs = append(cs, c)
		}
	}
	// A reserved opcode is an error even inside a fragmented message, where
	// a parser might treat anything non-control as a continuation.
	cs = append(cs,
		tc("X4.1 opcode 3 inside a fragmented message",
			send(frag(opText, "frag1", false), frag(3, "frag2", true)), wantClose(closeProtocol)),
		tc("X4.2 opcode 11 inside a fragmented message",
			send(frag(opText, "frag1", false), frag(11, "", true)), wantClose(closeProtocol)),
	)
	return cs
}

// --- 5 fragmentation -----------------------------------------------------

func fragmentationCases() []rawCase {
	f1, f2 := frag(opText, "fragment1", false), frag(opCont, "fragment2", true)
	pingMid := pingFrame("ping payload")
	strayFinCont := frag(opCont, "non-continuation payload", true)
	strayCont := frag(opCont, "non-continuation payload", false)
	hello := textFrame("Hello, world!")
	cs := []rawCase{
		tc("5.1 ping in 2 fragments", send(frag(opPing, "fragment1", false), frag(opCont, "fragment2", true)), wantClose(closeProtocol)),
		tc("5.2 pong in 2 fragments", send(frag(opPong, "fragment1", false), frag(opCont, "fragment2", true)), wantClose(closeProtocol)),
		tc("5.3 text in 2 fragments", send(f1, f2), wantText("fragment1fragment2")),
		tc("5.4 text in 2 fragments, separate writes", sendEach(f1, f2), wantText("fragment1fragment2")),
		tc("5.5 text in 2 fragments, 1-byte chops", sendChops(1, f1, f2), wantText("fragment1fragment2")),
		tc("5.6 text in 2 fragments, ping in between", send(f1, pingMid, f2), wantPong("ping payload"), wantText("fragment1fragment2")),
		tc("5.7 text in 2 fragments, ping in between, 1-byte chops", sendChops(1, f1, pingMid, f2), wantPong("ping payload"), wantText("fragment1fragment2")),
		tc("5.8 text in 2 fragments, ping in between, separate writes", sendEach(f1, pingMid, f2), wantPong("ping payload"), wantText("fragment1fragment2")),
		tc("5.9 continuation FIN=1 with nothing to continue, then text", send(strayFinCont, hello), wantClose(closeProtocol)),
		tc("5.10 continuation FIN=1 with nothing to continue, then text; 1-byte chops", sendChops(1, strayFinCont, hello), wantClose(closeProtocol)),
		tc("5.11 continuation FIN=1 with nothing to continue, then text; separate writes", sendEach(strayFinCont, hello), wantClose(closeProtocol)),
		tc("5.12 continuation FIN=0 with nothing to continue, then text", send(strayCont, hello), wantClose(closeProtocol)),
		tc("5.13 continuation FIN=0 with nothing to continue, then text; 1-byte chops", sendChops(1, strayCont, hello), wantClose(closeProtocol)),
		tc("5.14 continuation FIN=0 with nothing to continue, then text; separate writes", sendEach(strayCont, hello), wantClose(closeProtocol)),
		tc("5.15 text in 2 fragments, then continuation FIN=0 with nothing to continue",
			send(f1, f2, frag(opCont, "fragment3", false), frag(opCont, "fragment4", true)),
			wantText("fragment1fragment2"), wantClose(closeProtocol)),
		tc("5.16 continuation FIN=0 with nothing to continue before a fragmented text, twice",
			send(strayCont, f1, f2, strayCont, f1, f2), wantClose(closeProtocol)),
		tc("5.17 continuation FIN=1 with nothing to continue before a fragmented text, twice",
			send(strayFinCont, f1, f2, strayFinCont, f1, f2), wantClose(closeProtocol)),
		tc("5.18 text fragment followed by a text frame instead of a continuation",
			send(f1, frag(opText, "fragment2", true)), wantClose(closeProtocol)),
		{"5.19 text in 5 fragments, pings in between, pauses", case519(false)},
		{"5.20 text in 5 fragments, pings in between, pauses, separate writes", case519(true)},
		tc("X5.1 binary fragment followed by a text frame", send(frag(opBinary, "frag1", false), textFrame("frag2")), wantClose(closeProtocol)),
		tc("X5.2 text fragment followed by a non-final binary frame",
			send(f1, frag(opBinary, "frag2", false), frag(opCont, "frag3", true)), wantClose(closeProtocol)),
		tc("X5.3 close with FIN=0", send(closeFrame(closeNormal, "").notFin()), wantClose(closeProtocol)),
		tc("X5.4 ping with FIN=0 inside a fragmented message", send(f1, pingFrame("p").notFin(), f2), wantClose(closeProtocol)),
		tc("X5.5 unsolicited pong inside a fragmented message", send(f1, pongFrame("unsolicited"), f2), wantText("fragment1fragment2")),
		tc("X5.6 empty continuations", send(frag(opBinary, "", false), frag(opCont, "", false), frag(opCont, "x", false), frag(opCont, "", true)), wantBinary([]byte("x"))),
		tc("X5.7 continuation after a complete fragmented message",
			send(f1, f2, frag(opCont, "late", true)), wantText("fragment1fragment2"), wantClose(closeProtocol)),
	}

	// A binary message in 10 fragments with a ping between each two: the
	// 9 pongs come back in order, before the message, which is only
	// complete after the last ping.
	b := binOf(1000)
	var fs []frame
	var pongs []step
	for i, f := range fragments(opBinary, b, 100) {
		fs = append(fs, f)
		if !f.fin {
			p := fmt.Sprintf("ping %d", i)
			fs = append(fs, pingFrame(p))
			pongs = append(pongs, wantPong(p))
		}
	}
	steps := append([]step{send(fs...)}, pongs...)
	steps = append(steps, wantBinary(b))
	cs = append(cs, rawCase{"X5.8 binary in 10 fragments with pings between them", steps})
	return cs
}

// case519 is Autobahn 5.19/5.20: the pongs must come back while the
// message is still incomplete, so each is awaited before sending on.
func case519(separate bool) []step {
	s := send
	if separate {
		s = sendEach
	}
	return []step{
		s(frag(opText, "fragment1", false), frag(opCont, "fragment2", false), pingFrame("pongme 1!")),
		wantPong("pongme 1!"),
		wantNothing(quiet),
		s(frag(opCont, "fragment3", false), frag(opCont, "fragment4", false), pingFrame("pongme 2!")),
		wantPong("pongme 2!"),
		wantNothing(quiet),
		s(frag(opCont, "fragment5", true)),
		wantText("fragment1fragment2fragment3fragment4fragment5"),
	}
}

// --- 6 UTF-8 -------------------------------------------------------------

// utf8Group is one Autobahn 6.x subcategory of single-message payloads.
type utf8Group struct {
	title string
	seqs  []utf8Seq
}

type utf8Seq struct {
	valid bool
	p     string
}

// kosme is "κόσμε", the Greek word Markus Kuhn's UTF-8 test file starts with.
const kosme = "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"

// autobahnUTF8 returns Autobahn's 6.5 to 6.23 payloads, in Autobahn's order,
// taken from Markus Kuhn's UTF-8 decoder stress test.
func autobahnUTF8() []utf8Group {
	v := func(ps ...string) []utf8Seq { return seqs(true, ps...) }
	x := func(ps ...string) []utf8Seq { return seqs(false, ps...) }

	var prefixes []utf8Seq
	for i := 1; i <= len(kosme); i++ {
		prefixes = append(prefixes, utf8Seq{utf8.ValidString(kosme[:i]), kosme[:i]})
	}
	var cont strings.Builder
	for b := 0x80; b < 0xbf; b++ { // Autobahn stops short of 0xbf
		cont.WriteByte(byte(b))
	}
	var lonely []string
	for _, r := range [][2]int{{0xc0, 0xdf}, {0xe0, 0xef}, {0xf0, 0xf7}, {0xf8, 0xfb}, {0xfc, 0xfd}} {
		var s strings.Builder
		for b := r[0]; b < r[1]; b++ {
			s.WriteByte(byte(b))
			s.WriteByte(' ')
		}
		lonely = append(lonely, s.String())
	}
	missing := []string{"\xc0", "\xe0\x80", "\xf0\x80\x80", "\xf8\x80\x80\x80", "\xfc\x80\x80\x80\x80",
		"\xdf", "\xef\xbf", "\xf7\xbf\xbf", "\xfb\xbf\xbf\xbf", "\xfd\xbf\xbf\xbf\xbf"}
	nonchars := []string{"\xef\xbf\xbe", "\xef\xbf\xbf"}
	for _, z1 := range []byte{0xf0, 0xf1, 0xf2, 0xf3, 0xf4} {
		for _, z2 := range []byte{0x8f, 0x9f, 0xaf, 0xbf} {
			if z1 == 0xf4 && z2 != 0x8f { // beyond U+10FFFF
				continue
			}
			for _, z3 := range []byte{0xbe, 0xbf} {
				if z1 == 0xf0 && z2 == 0x8f { // overlong
					continue
				}
				nonchars = append(nonchars, string([]byte{z1, z2, 0xbf, z3}))
			}
		}
	}

	return []utf8Group{
		{"valid sequences", v("hello\x24world", "hello\xc2\xa2world", "hello\xe2\x82\xacworld", "hello\xf0\xa4\xad\xa2world", kosme)},
		{"prefixes of a valid string", prefixes},
		{"first possible sequence of a length", v("\x00", "\xc2\x80", "\xe0\xa0\x80", "\xf0\x90\x80\x80")},
		{"first possible 5/6-byte sequence", x("\xf8\x88\x80\x80\x80", "\xfc\x84\x80\x80\x80\x80")},
		{"last possible sequence of a length", v("\x7f", "\xdf\xbf", "\xef\xbf\xbf", "\xf4\x8f\xbf\xbf")},
		{"last possible 4/5/6-byte sequence", x("\xf7\xbf\xbf\xbf", "\xfb\xbf\xbf\xbf\xbf", "\xfd\xbf\xbf\xbf\xbf\xbf")},
		{"other boundaries", append(v("\xed\x9f\xbf", "\xee\x80\x80", "\xef\xbf\xbd", "\xf4\x8f\xbf\xbf"), x("\xf4\x90\x80\x80")...)},
		{"unexpected continuation bytes", x("\x80", "\xbf", "\x80\xbf", "\x80\xbf\x80", "\x80\xbf\x80\xbf",
			"\x80\xbf\x80\xbf\x80", "\x80\xbf\x80\xbf\x80\xbf", cont.String())},
		{"lonely start bytes", x(lonely...)},
		{"last continuation byte missing", x(missing...)},
		{"concatenated incomplete sequences", x(strings.Join(missing, ""))},
		{"impossible bytes", x("\xfe", "\xff", "\xfe\xfe\xff\xff")},
		{"overlong ASCII", x("\xc0\xaf", "\xe0\x80\xaf", "\xf0\x80\x80\xaf", "\xf8\x80\x80\x80\xaf", "\xfc\x80\x80\x80\x80\xaf")},
		{"maximum overlong", x("\xc1\xbf", "\xe0\x9f\xbf", "\xf0\x8f\xbf\xbf", "\xf8\x87\xbf\xbf\xbf", "\xfc\x83\xbf\xbf\xbf\xbf")},
		{"overlong NUL", x("\xc0\x80", "\xe0\x80\x80", "\xf0\x80\x80\x80", "\xf8\x80\x80\x80\x80", "\xfc\x80\x80\x80\x80\x80")},
		{"single UTF-16 surrogates", x("\xed\xa0\x80", "\xed\xad\xbf", "\xed\xae\x80", "\xed\xaf\xbf", "\xed\xb0\x80", "\xed\xbe\x80", "\xed\xbf\xbf")},
		{"paired UTF-16 surrogates", x("\xed\xa0\x80\xed\xb0\x80", "\xed\xa0\x80\xed\xbf\xbf", "\xed\xad\xbf\xed\xb0\x80",
			"\xed\xad\xbf\xed\xbf\xbf", "\xed\xae\x80\xed\xb0\x80", "\xed\xae\x80\xed\xbf\xbf", "\xed\xaf\xbf\xed\xb0\x80", "\xed\xaf\xbf\xed\xbf\xbf")},
		{"noncharacters (valid)", v(nonchars...)},
		{"specials (valid)", v("\xef\xbf\xb9", "\xef\xbf\xba", "\xef\xbf\xbb", "\xef\xbf\xbc", "\xef\xbf\xbd", "\xef\xbf\xbe", "\xef\xbf\xbf")},
	}
}

func seqs(valid bool, ps ...string) []utf8Seq {
	out := make([]utf8Seq, len(ps))
	for i, p := range ps {
		out[i] = utf8Seq{valid, p}
	}
	return out
}

// utf8Doomed returns the length of the shortest prefix of p that no
// continuation can turn into valid UTF-8, or -1 if p is valid or merely
// stops inside a code point. That prefix is where a fail-fast validator
// must give up.
func utf8Doomed(p []byte) int {
	for i := 0; i < len(p); {
		r, size := utf8.DecodeRune(p[i:])
		if r != utf8.RuneError || size > 1 {
			i += size
			continue
		}
		n := viablePrefix(p[i:])
		if i+n == len(p) {
			return -1
		}
		return i + n + 1
	}
	return -1
}

// viablePrefix returns how many leading bytes of b (which does not start
// with a complete code point) are the beginning of some valid encoding,
// per the well-formed byte table of Unicode §3.9 (Table 3-7).
func viablePrefix(b []byte) int {
	var need int
	lo, hi := byte(0x80), byte(0xbf)
	switch b0 := b[0]; {
	case b0 >= 0xc2 && b0 <= 0xdf:
		need = 1
	case b0 == 0xe0:
		need, lo = 2, 0xa0
	case b0 == 0xed:
		need, hi = 2, 0x9f
	case b0 >= 0xe1 && b0 <= 0xef:
		need = 2
	case b0 == 0xf0:
		need, lo = 3, 0x90
	case b0 == 0xf4:
		need, hi = 3, 0x8f
	case b0 >= 0xf1 && b0 <= 0xf3:
		need = 3
	default:
		return 0
	}
	n := 1
	for ; n <= need && n < len(b); n++ {
		if b[n] < lo || b[n] > hi {
			break
		}
		lo, hi = 0x80, 0xbf
	}
	return n
}

func utf8Cases(t *testing.T) []rawCase {
	const hello = "Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3\xa1-UTF-8!!" // Hello-µ@ßöäüàá-UTF-8!!
	bad := kosme + "\xed\xa0\x80edited"
	octets := func(s string) []frame { return fragments(opText, []byte(s), 1) }

	cs := []rawCase{
		tc("6.1.1 empty text", send(textFrame("")), wantText("")),
		tc("6.1.2 empty text in 3 empty fragments", send(frag(opText, "", false), frag(opCont, "", false), frag(opCont, "", true)), wantText("")),
		tc("6.1.3 text in 3 fragments, first and last empty",
			send(frag(opText, "", false), frag(opCont, "middle frame payload", false), frag(opCont, "", true)), wantText("middle frame payload")),
		tc("6.2.1 valid UTF-8 in one frame", send(textFrame(hello)), wantText(hello)),
		tc("6.2.2 valid UTF-8 in 2 fragments split at a code point boundary",
			send(frag(opText, hello[:15], false), frag(opCont, hello[15:], true)), wantText(hello)), // "Hello-µ@ßöä" + "üàá-UTF-8!!"
		tc("6.2.3 valid UTF-8 in 1-byte fragments", send(octets(hello)...), wantText(hello)),
		tc("6.2.4 valid UTF-8 κόσμε in 1-byte fragments", send(octets(kosme)...), wantText(kosme)),
		tc("6.3.1 invalid UTF-8 in one frame", send(textFrame(bad)), wantClose(closeInvalidData)),
		tc("6.3.2 invalid UTF-8 in 1-byte fragments", send(octets(bad)...), wantClose(closeInvalidData)),
	}

	// 6.4: fail fast. The server must reject the message as soon as it holds
	// the offending bytes, without the rest of the frame or message, which
	// therefore is never sent.
	p1, p2 := kosme, "\xf4\x90\x80\x80" // 6.4.1/6.4.3: U+110000, out of range
	q1, q2 := kosme+"\xf4", "\x90"      // 6.4.2/6.4.4: 0xf4 0x90 cannot start anything valid
	const rest = "\x80\x80edited"
	cs = append(cs,
		tc("6.4.1 fail fast: invalid 2nd of 3 fragments",
			send(frag(opText, p1, false)), wantNothing(quiet),
			send(frag(opCont, p2, false)), wantCloseNow(closeInvalidData)),
		tc("6.4.2 fail fast: invalid sequence across fragments",
			send(frag(opText, q1, false)), wantNothing(quiet),
			send(frag(opCont, q2, false)), wantCloseNow(closeInvalidData)),
		tc("6.4.3 fail fast: invalid 2nd of 3 chops of one frame", choppedFrame(p1, p2, "edited")...),
		tc("6.4.4 fail fast: invalid sequence across chops of one frame", choppedFrame(q1, q2, rest)...),
	)

	// 6.5 to 6.23: each payload as one frame (Autobahn), then, as a wsgate
	// addition ("/octets"), one byte per fragment. For invalid payloads the
	// fragments stop right after the byte that makes the message
	// unsalvageable, and the server must fail fast there; payloads that are
	// merely cut short get an empty final fragment and fail at the end.
	for i, g := range autobahnUTF8() {
		for j, s := range g.seqs {
			if utf8.ValidString(s.p) != s.valid {
				t.Fatalf("6.%d.%d: table says valid=%v for %x", i+5, j+1, s.valid, s.p)
			}
			id := fmt.Sprintf("6.%d.%d %s %x", i+5, j+1, g.title, s.p)
			if len(id) > 90 {
				id = id[:90] + "…"
			}
			if s.valid {
				cs = append(cs,
					tc(id, send(textFrame(s.p)), wantText(s.p)),
					tc(id+"/octets", send(octets(s.p)...), wantText(s.p)))
				continue
			}
			cs = append(cs, tc(id, send(textFrame(s.p)), wantClose(closeInvalidData)))
			if k := utf8Doomed([]byte(s.p)); k > 0 {
				fs := octets(s.p[:k])
				fs[len(fs)-1].fin = false
				cs = append(cs, tc(id+"/octets, fail fast", send(fs...), wantCloseNow(closeInvalidData)))
			} else {
				fs := octets(s.p)
				fs[len(fs)-1].fin = false
				fs = append(fs, frag(opCont, "", true))
				cs = append(cs, tc(id+"/octets", send(fs...), wantClose(closeInvalidData)))
			}
		}
	}

	// Fail fast inside large frames and long messages, which the server
	// must not buffer to the end before it looks.
	bigInvalidAt := func(n, at int, seq string) []byte {
		b := []byte(textOf(n))
		copy(b[at:], seq)
		return b
	}
	cs = append(cs,
		tc("X6.1 fail fast: 0xff at byte 10 of a 60000-byte frame, first 1 KiB sent", func(c *wsConn) {
			wire := c.encode(frame{op: opText, payload: bigInvalidAt(60000, 10, "\xff"), fin: true})
			c.writeRaw(wire[:1024])
		}, wantCloseNow(closeInvalidData)),
		tc("X6.2 fail fast: surrogate at byte 30000 of a 60000-byte frame, first 32 KiB sent", func(c *wsConn) {
			wire := c.encode(frame{op: opText, payload: bigInvalidAt(60000, 30000, "\xed\xa0\x80"), fin: true})
			c.writeRaw(wire[:32<<10])
		}, wantCloseNow(closeInvalidData)),
		tc("X6.3 fail fast: overlong NUL in a non-final 2nd fragment, no final",
			send(frag(opText, textOf(1000), false), frag(opCont, "abc\xc0\x80def", false)), wantCloseNow(closeInvalidData)),
		tc("X6.4 fail fast: invalid byte in 1-byte chops of a non-final fragment",
			func(c *wsConn) {
				wire := c.encode(frag(opText, "ab\xc1\xbfcdefgh", false))
				c.writeChopped(wire[:len(wire)-6], 1, chopPause) // header, key, "ab\xc1\xbf"
			}, wantCloseNow(closeInvalidData)),
		tc("X6.5 code points split across fragments with pings between",
			send(frag(opText, "a\xf0", false), pingFrame("1"), frag(opCont, "\x9f", false), pingFrame("2"),
				frag(opCont, "\x98", false), pingFrame("3"), frag(opCont, "\x80\xe2\x82", false), frag(opCont, "\xac", true)),
			wantPong("1"), wantPong("2"), wantPong("3"), wantText("a\xf0\x9f\x98\x80\xe2\x82\xac")),
		tc("X6.6 text ending inside a code point, one frame", send(textFrame("abc\xe2\x82")), wantClose(closeInvalidData)),
		tc("X6.7 text ending inside a code point, empty final fragment",
			send(frag(opText, "abc\xe2\x82", false), frag(opCont, "", true)), wantClose(closeInvalidData)),
		tc("X6.8 invalid UTF-8 is fine in a binary message", send(binFrame([]byte(bad))), wantBinary([]byte(bad))),
		tc("X6.9 invalid UTF-8 is fine in a ping", send(pingFrame(bad)), wantPong(bad)),
		tc("X6.10 valid text after a valid split message", send(frag(opText, "\xe2", false), frag(opCont, "\x82\xac", true), textFrame("\xe2\x82\xac")),
			wantText("\xe2\x82\xac"), wantText("\xe2\x82\xac")),
		tc("X6.11 truncated code point does not leak into the next message",
			send(frag(opText, "ok\xe2\x82", false), frag(opCont, "\xac", true), textFrame("\xac")), wantText("ok\xe2\x82\xac"), wantClose(closeInvalidData)),
	)
	return cs
}

// choppedFrame is Autobahn 6.4.3/6.4.4: one text frame declared with its
// full length, of which only the first two parts are ever sent.
func choppedFrame(part1, part2, part3 string) []step {
	var wire []byte
	var cut1, cut2 int
	return []step{
		func(c *wsConn) {
			wire = c.encode(textFrame(part1 + part2 + part3))
			cut2 = len(wire) - len(part3)
			cut1 = cut2 - len(part2)
			c.writeRaw(wire[:cut1])
		},
		wantNothing(quiet),
		func(c *wsConn) { c.writeRaw(wire[cut1:cut2]) },
		wantCloseNow(closeInvalidData),
	}
}

// --- 7 close -------------------------------------------------------------

func closeCases() []rawCase {
	reason123 := strings.Repeat("*", 123)
	cs := []rawCase{
		tc("7.1.1 text then close", send(textFrame("Hello World!")), wantText("Hello World!"),
			send(closeFrame(closeNormal, "")), wantClose(closeNormal)),
		tc("7.1.2 two closes", send(closeFrame(closeNormal, ""), closeFrame(closeNormal, "")), wantClose(closeNormal)),
		tc("7.1.3 close then ping", send(closeFrame(closeNormal, ""), pingFrame("Hello World!")), wantClose(closeNormal)),
		tc("7.1.4 close then text", send(closeFrame(closeNormal, ""), textFrame("Hello World!")), wantClose(closeNormal)),
		tc("7.1.5 text fragment, close, last fragment",
			send(frag(opText, "fragment1", false), closeFrame(closeNormal, ""), frag(opCont, "fragment2", true)), wantClose(closeNormal)),
		tc("7.3.1 close with empty payload", send(rawClose("")), wantClose(closeNoStatus, closeNormal)),
		tc("7.3.2 close with 1-byte payload", send(rawClose("a")), wantClose(closeProtocol)),
		tc("7.3.3 close 1000 without reason", send(closeFrame(closeNormal, "")), wantClose(closeNormal)),
		tc("7.3.4 close 1000 with reason", send(closeFrame(closeNormal, "Hello World!")), wantClose(closeNormal)),
		tc("7.3.5 close 1000 with 123-byte reason", send(closeFrame(closeNormal, reason123)), wantClose(closeNormal)),
		tc("7.3.6 close 1000 with 124-byte reason", send(closeFrame(closeNormal, reason123+"*")), wantClose(closeProtocol)),
		tc("7.5.1 close reason with invalid UTF-8", send(closeFrame(closeNormal, kosme+"\xed\xa0\x80edited")), wantClose(closeInvalidData)),
		tc("X7.1 close reason with multi-byte UTF-8", send(closeFrame(closeNormal, kosme)), wantClose(closeNormal)),
		tc("X7.2 close reason truncated inside a code point", send(closeFrame(closeNormal, "ab\xe2\x82")), wantClose(closeInvalidData)),
		tc("X7.3 close in 1-byte chops", sendChops(1, closeFrame(closeNormal, "bye")), wantClose(closeNormal)),
		tc("X7.4 close after a ping in the same write", send(pingFrame("p"), closeFrame(closeNormal, "")), wantPong("p"), wantClose(closeNormal)),
		tc("X7.5 close, then garbage", send(closeFrame(closeNormal, "")), sendBytes([]byte("\xff\xff\xff garbage that is not a frame")), wantClose(closeNormal)),
	}
	valid := []uint16{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999}
	for i, code := range valid {
		cs = append(cs, tc(fmt.Sprintf("7.7.%d close with valid code %d", i+1, code),
			send(closeFrame(code, "")), wantClose(code)))
	}
	for i, code := range valid {
		cs = append(cs, tc(fmt.Sprintf("X7.7.%d close with valid code %d and a reason", i+1, code),
			send(closeFrame(code, "some reason κόσμε")), wantClose(code)))
	}
	// Codes that are reserved, not to be sent, or unassigned (RFC 6455
	// §7.4.1-7.4.2). 0 and 999 complete Autobahn's 7.9 list.
	invalid := []uint16{0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999}
	for i, code := range invalid {
		cs = append(cs, tc(fmt.Sprintf("7.9.%d close with invalid code %d", i+1, code),
			send(closeFrame(code, "")), wantClose(closeProtocol)))
	}
	cs = append(cs,
		tc("7.13.1 close with invalid code 5000", send(closeFrame(5000, "")), wantClose(closeProtocol)),
		tc("7.13.2 close with invalid code 65535", send(closeFrame(65535, "")), wantClose(closeProtocol)),
	)
	return cs
}

// closeBigCases need a limit above 256 KiB.
func closeBigCases() []rawCase {
	p := textOf(256 << 10)
	return []rawCase{
		tc("7.1.6 256 KiB text, close, ping",
			func(c *wsConn) {
				c.readTimeout = 20 * time.Second
				wait := c.writeAsync(c.encode(textFrame(p), closeFrame(closeNormal, ""), pingFrame("Hello World!")))
				defer wait()
				c.expectMessage(opText, []byte(p))
				c.expectClose(closeNormal)
			}),
	}
}

// --- X9 limits -----------------------------------------------------------

func limitCases() []rawCase {
	at := textOf(defaultLimit)
	headerOnly := func(fin bool, op byte, n uint64) step {
		return func(c *wsConn) { c.writeRaw(c.header(fin, op, n)) }
	}
	// Pings between fragments are not part of the message and must not
	// count towards its size.
	var withPings []frame
	var pongs []step
	for _, f := range fragments(opBinary, binOf(defaultLimit), 8<<10) {
		withPings = append(withPings, f)
		if !f.fin {
			withPings = append(withPings, pingFrame(strings.Repeat("p", 125)))
			pongs = append(pongs, wantPong(strings.Repeat("p", 125)))
		}
	}
	steps := append([]step{send(withPings...)}, pongs...)
	steps = append(steps, wantBinary(binOf(defaultLimit)))

	over := fragments(opText, []byte(textOf(defaultLimit+1)), 1024)
	return []rawCase{
		tc("X9.1 text of exactly the limit in one frame", send(textFrame(at)), wantText(at)),
		tc("X9.2 text of exactly the limit in 16 fragments", send(fragments(opText, []byte(at), defaultLimit/16)...), wantText(at)),
		{"X9.3 binary of exactly the limit in 8 fragments, 125-byte pings between", steps},
		tc("X9.4 text frame declaring limit+1 bytes, header only", headerOnly(true, opText, defaultLimit+1), wantCloseNow(closeTooBig)),
		tc("X9.5 binary frame declaring 1 MiB, header only", headerOnly(true, opBinary, 1<<20), wantCloseNow(closeTooBig)),
		tc("X9.6 binary frame declaring 2^62 bytes, header only", headerOnly(true, opBinary, 1<<62), wantCloseNow(closeTooBig)),
		tc("X9.7 non-final fragment declaring limit+1 bytes, header only", headerOnly(false, opText, defaultLimit+1), wantCloseNow(closeTooBig)),
		tc("X9.8 binary frame of limit+1 bytes, all sent", send(binFrame(binOf(defaultLimit+1))), wantClose(closeTooBig)),
		tc("X9.9 two 40 KiB fragments, no final", send(frag(opText, textOf(40<<10), false), frag(opCont, textOf(40<<10), false)), wantCloseNow(closeTooBig)),
		tc("X9.10 40 KiB fragment, then continuation header declaring 30 KiB only",
			send(frag(opBinary, textOf(40<<10), false)), headerOnly(false, opCont, 30<<10), wantCloseNow(closeTooBig)),
		tc("X9.11 text of limit+1 bytes in 1 KiB fragments", send(over...), wantClose(closeTooBig)),
		tc("X9.12 the connection is usable up to the limit, message after message",
			send(textFrame(at), binFrame(binOf(defaultLimit))), wantText(at), wantBinary(binOf(defaultLimit))),
	}
}

func bigLimitCases() []rawCase {
	return []rawCase{
		tc("X9.13 raised limit: frame declaring limit+1 bytes, header only", func(c *wsConn) {
			c.writeRaw(c.header(true, opBinary, bigLimit+1))
		}, wantCloseNow(closeTooBig)),
		tc("X9.14 raised limit: 300 KiB echoed", send(binFrame(binOf(300<<10))), wantBinary(binOf(300<<10))),
	}
}

// --- 9 large messages ----------------------------------------------------

// largeMessageCases runs one at a time: they are about throughput and
// buffering, and running them side by side only makes timing noisy.
func largeMessageCases(t *testing.T, addr string) {
	sizes := []int{64 << 10, 256 << 10, 1 << 20, 4 << 20}
	type lcase struct {
		name    string
		op      byte
		payload []byte
		frag    int // fragment size; 0: one frame
		chop    int // write chop size; 0: one write
	}
	var cs []lcase
	for k, op := range []byte{opText, opBinary} {
		kind := "text"
		payload := func(n int) []byte { return []byte(textOf(n)) }
		if op == opBinary {
			kind, payload = "binary", binOf
		}
		for i, n := range sizes {
			cs = append(cs, lcase{fmt.Sprintf("9.%d.%d %s %d KiB", 1+k, i+1, kind, n>>10), op, payload(n), 0, 0})
		}
		// Every size in many small fragments: per-frame costs (header
		// parsing, unmasking across frame edges, reassembly) dominate here.
		i := 0
		for _, n := range sizes {
			for _, fr := range []int{64, 256, 1 << 10, 4 << 10} {
				i++
				cs = append(cs, lcase{fmt.Sprintf("9.%d.%d %s %d KiB in %d-byte fragments", 3+k, i, kind, n>>10, fr),
					op, payload(n), fr, 0})
			}
		}
		for i, chop := range []int{64, 256, 1 << 10, 4 << 10} {
			cs = append(cs, lcase{fmt.Sprintf("9.%d.%d %s 1 MiB frame written in %d-byte chops", 5+k, i+1, kind, chop),
				op, payload(1 << 20), 0, chop})
		}
	}
	for _, lc := range cs {
		t.Run(lc.name, func(t *testing.T) {
			c := dialWS(t, addr, "/echo")
			c.readTimeout = 30 * time.Second
			var wire []byte
			if lc.frag > 0 {
				wire = c.encode(fragments(lc.op, lc.payload, lc.frag)...)
			} else {
				wire = c.encode(frame{op: lc.op, payload: lc.payload, fin: true})
			}
			// Write while reading: the server may start echoing (or stop
			// reading until we read) before the whole message is in.
			var wait func()
			if lc.chop > 0 {
				done := make(chan struct{})
				nc, timeout := c.conn, c.readTimeout
				go func() {
					defer close(done)
					for b := wire; len(b) > 0; {
						n := min(lc.chop, len(b))
						nc.SetWriteDeadline(time.Now().Add(timeout))
						if _, err := nc.Write(b[:n]); err != nil {
							return // the read below reports what went wrong
						}
						b = b[n:]
					}
				}()
				wait = func() { <-done }
			} else {
				wait = c.writeAsync(wire)
			}
			c.expectMessage(lc.op, lc.payload)
			wait()
			c.send(closeFrame(closeNormal, ""))
			c.expectClose(closeNormal)
		})
	}

	// 9.7/9.8: round trips of many small messages, one at a time.
	for k, op := range []byte{opText, opBinary} {
		for i, n := range []int{0, 16, 64, 256, 1 << 10, 4 << 10} {
			kind, p := "text", []byte(textOf(n))
			if op == opBinary {
				kind, p = "binary", binOf(n)
			}
			t.Run(fmt.Sprintf("9.%d.%d 1000 %s messages of %d bytes", 7+k, i+1, kind, n), func(t *testing.T) {
				c := dialWS(t, addr, "/echo")
				for range 1000 {
					c.send(frame{op: op, payload: p, fin: true})
					c.expectMessage(op, p)
				}
				c.send(closeFrame(closeNormal, ""))
				c.expectClose(closeNormal)
			})
		}
	}
}

// --- 10 fragment sizes ---------------------------------------------------

// autoFragmentCases are Autobahn 10.1.1 widened: a 64 KiB message arrives in
// fragments of many sizes, none of which align with code points or with
// the server's reads, and must come back whole.
func autoFragmentCases() []rawCase {
	var cs []rawCase
	p := []byte(textOf(64 << 10))
	b := binOf(64 << 10)
	for i, size := range []int{1300, 1, 7, 125, 126, 1000, 4096, 65535} {
		cs = append(cs,
			tc(fmt.Sprintf("10.1.%d text 64 KiB in %d-byte fragments", i+1, size), send(fragments(opText, p, size)...), wantText(string(p))),
			tc(fmt.Sprintf("10.2.%d binary 64 KiB in %d-byte fragments", i+1, size), send(fragments(opBinary, b, size)...), wantBinary(b)),
		)
	}
	cs = append(cs, tc("10.3.1 text 64 KiB in 1300-byte fragments, 1000-byte chops",
		sendChops(1000, fragments(opText, p, 1300)...), wantText(string(p))))
	return cs
}
