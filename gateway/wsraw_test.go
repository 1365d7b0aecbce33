package gateway_test

// A deliberately dumb WebSocket client for conformance tests. It does the
// HTTP upgrade by hand, encodes every frame byte by byte (so tests can send
// what no real library would: unmasked frames, RSV bits, reserved opcodes,
// non-minimal lengths, lies about the length) and answers nothing on its
// own: no pong for a ping, no close reply. Whatever the server sends is read
// frame by frame, checked for the few things a server must never do, and
// reassembled into messages, so a test can assert exactly what came back.

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/wsgate/wsgate/gateway/deflate"
)

// Opcodes, RFC 6455 §5.2.
const (
	opCont   byte = 0x0
	opText   byte = 0x1
	opBinary byte = 0x2
	opClose  byte = 0x8
	opPing   byte = 0x9
	opPong   byte = 0xA
)

// closeNoStatus is what a close frame with an empty payload reports
// (RFC 6455 §7.1.5); it never appears on the wire.
const closeNoStatus = 1005

const (
	// ioTimeout bounds every single expectation (one message, one close),
	// so a test never hangs on a server that says nothing.
	ioTimeout = 5 * time.Second
	// closeTimeout bounds the time from the server's close frame to its
	// TCP close. A conforming server closes right away.
	closeTimeout = 3 * time.Second
	// maxServerFrame guards against allocating whatever garbage length a
	// broken server might send.
	maxServerFrame = 64 << 20
)

// lenForm selects how a frame's payload length is encoded.
type lenForm int

const (
	lenMinimal lenForm = iota // 7 bits, 7+16 or 7+64 as RFC 6455 requires
	len16                     // 126 + 16-bit length, even when 7 bits would do
	len64                     // 127 + 64-bit length, even when less would do
)

// frame is one client frame, to be encoded by hand.
type frame struct {
	op       byte
	payload  []byte
	fin      bool
	rsv      byte // RSV1..RSV3 as a 3-bit number, Autobahn style: 4 = RSV1, 2 = RSV2, 1 = RSV3
	unmasked bool // send without a mask, which a client must never do
	form     lenForm
}

// frag builds a data or continuation frame with an explicit FIN bit.
func frag(op byte, payload string, fin bool) frame {
	return frame{op: op, payload: []byte(payload), fin: fin}
}

func textFrame(s string) frame        { return frag(opText, s, true) }
func binFrame(b []byte) frame         { return frame{op: opBinary, payload: b, fin: true} }
func pingFrame(p string) frame        { return frag(opPing, p, true) }
func pongFrame(p string) frame        { return frag(opPong, p, true) }
func rawClose(p string) frame         { return frag(opClose, p, true) }
func opFrame(op byte, p string) frame { return frag(op, p, true) }

// closeFrame builds a close frame carrying code and reason.
func closeFrame(code uint16, reason string) frame {
	return rawClose(string(binary.BigEndian.AppendUint16(nil, code)) + reason)
}

func (f frame) withRSV(rsv byte) frame   { f.rsv = rsv; return f }
func (f frame) withForm(l lenForm) frame { f.form = l; return f }
func (f frame) noMask() frame            { f.unmasked = true; return f }
func (f frame) notFin() frame            { f.fin = false; return f }

// appendHeader encodes a frame header declaring n payload bytes. The length
// is declared independently of any payload so a test can send a header that
// announces more than it will ever deliver.
func appendHeader(b []byte, fin bool, rsv, op byte, n uint64, form lenForm, key *[4]byte) []byte {
	b0 := op&0x0F | (rsv&7)<<4
	if fin {
		b0 |= 0x80
	}
	var m byte
	if key != nil {
		m = 0x80
	}
	if form == lenMinimal {
		switch {
		case n > 0xFFFF:
			form = len64
		case n > 125:
			form = len16
		}
	}
	switch form {
	case len16:
		b = append(b, b0, m|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	case len64:
		b = append(b, b0, m|127)
		b = binary.BigEndian.AppendUint64(b, n)
	default:
		b = append(b, b0, m|byte(n))
	}
	if key != nil {
		b = append(b, key[:]...)
	}
	return b
}

// maskBytes XORs p with key, starting at key offset 0. It works a word at a
// time because the suite masks tens of MiB under -race.
func maskBytes(dst, p []byte, key [4]byte) {
	k := binary.LittleEndian.Uint32(key[:])
	k8 := uint64(k) | uint64(k)<<32
	i := 0
	for ; i+8 <= len(p); i += 8 {
		binary.LittleEndian.PutUint64(dst[i:], binary.LittleEndian.Uint64(p[i:])^k8)
	}
	for ; i < len(p); i++ {
		dst[i] = p[i] ^ key[i&3]
	}
}

// connSeq seeds each connection's masking keys and handshake key, so that
// no two connections use the same ones.
var connSeq atomic.Uint64

// wsConn is the raw client end of one WebSocket connection.
type wsConn struct {
	t    testing.TB
	conn net.Conn
	br   *bufio.Reader
	rng  *rand.Rand // masking keys

	readTimeout time.Duration // per expectation; raised by tests moving MiBs
	peerGone    bool          // a write failed because the server had already closed
	closed      bool          // the closing handshake has been asserted

	// Reassembly of the server's current fragmented message, if any.
	inMsg  bool
	msgOp  byte
	msgBuf []byte
	msgZ   bool // its first frame had RSV1

	// deflate: permessage-deflate was offered (an extra header line) and
	// accepted, so RSV1 marks a compressed message, inflated by next; ext
	// is the server's Sec-WebSocket-Extensions answer.
	deflate bool
	ext     string
}

// dialWS connects to addr, performs the opening handshake for path by hand
// and checks the server's answer byte for byte where RFC 6455 §4.2.2 fixes it.
func dialWS(t testing.TB, addr, path string) *wsConn {
	t.Helper()
	return dialWSWith(t, addr, path)
}

// dialWSWith is dialWS with extra request header lines (a subprotocol).
func dialWSWith(t testing.TB, addr, path string, extra ...string) *wsConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	c := &wsConn{
		t:           t,
		conn:        nc,
		br:          bufio.NewReaderSize(nc, 64<<10),
		rng:         rand.New(rand.NewPCG(connSeq.Add(1), 0x77736761746521)),
		readTimeout: ioTimeout,
	}
	t.Cleanup(func() { nc.Close() })

	var raw [16]byte
	for i := range raw {
		raw[i] = byte(c.rng.Uint32())
	}
	key := base64.StdEncoding.EncodeToString(raw[:])
	req := "GET " + path + " HTTP/1.1\r\n" +
		"Host: " + addr + "\r\n" +
		"Upgrade: websocket\r\n" +
		"Connection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\n" +
		"Sec-WebSocket-Version: 13\r\n"
	for _, h := range extra {
		req += h + "\r\n"
	}
	req += "\r\n"
	nc.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := io.WriteString(nc, req); err != nil {
		t.Fatalf("write upgrade request: %v", err)
	}
	resp, err := http.ReadResponse(c.br, &http.Request{Method: http.MethodGet})
	if err != nil {
		t.Fatalf("read upgrade response: %v", err)
	}
	resp.Body.Close()
	nc.SetDeadline(time.Time{})
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: status %q, want 101", resp.Status)
	}
	if !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") {
		t.Fatalf("upgrade: Upgrade header %q, want websocket", resp.Header.Get("Upgrade"))
	}
	if !headerHasToken(resp.Header, "Connection", "upgrade") {
		t.Fatalf("upgrade: Connection header %q lacks upgrade", resp.Header.Values("Connection"))
	}
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	if got, want := resp.Header.Get("Sec-WebSocket-Accept"), base64.StdEncoding.EncodeToString(sum[:]); got != want {
		t.Fatalf("upgrade: Sec-WebSocket-Accept %q, want %q", got, want)
	}
	// Without an offer no extension may be in effect (RFC 6455 §9.1);
	// the RSV tests rely on that.
	offered := false
	for _, h := range extra {
		offered = offered || strings.HasPrefix(strings.ToLower(h), "sec-websocket-extensions:")
	}
	ext := resp.Header.Get("Sec-WebSocket-Extensions")
	if ext != "" && !offered {
		t.Fatalf("upgrade: server accepted an extension nobody offered: %q", ext)
	}
	c.deflate, c.ext = strings.HasPrefix(ext, "permessage-deflate"), ext
	return c
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, tok := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), token) {
				return true
			}
		}
	}
	return false
}

// encode returns the wire bytes of the frames, each masked with a fresh key
// unless told otherwise.
func (c *wsConn) encode(frames ...frame) []byte {
	n := 0
	for _, f := range frames {
		n += 14 + len(f.payload)
	}
	b := make([]byte, 0, n)
	for _, f := range frames {
		var key *[4]byte
		if !f.unmasked {
			key = new([4]byte)
			binary.LittleEndian.PutUint32(key[:], c.rng.Uint32())
		}
		b = appendHeader(b, f.fin, f.rsv, f.op, uint64(len(f.payload)), f.form, key)
		if key == nil {
			b = append(b, f.payload...)
			continue
		}
		start := len(b)
		b = b[:start+len(f.payload)]
		maskBytes(b[start:], f.payload, *key)
	}
	return b
}

// header returns a masked frame header declaring n bytes, followed by
// nothing: for tests that must see the server react before any payload.
func (c *wsConn) header(fin bool, op byte, n uint64) []byte {
	var key [4]byte
	binary.LittleEndian.PutUint32(key[:], c.rng.Uint32())
	return appendHeader(nil, fin, 0, op, n, lenMinimal, &key)
}

// send writes all frames with a single Write: the server gets them in one chop.
func (c *wsConn) send(frames ...frame) { c.writeRaw(c.encode(frames...)) }

// sendChopped writes the frames' bytes in pieces of chop bytes with a pause
// in between, so frame headers, lengths and payloads straddle reads.
func (c *wsConn) sendChopped(chop int, pause time.Duration, frames ...frame) {
	c.writeChopped(c.encode(frames...), chop, pause)
}

func (c *wsConn) writeChopped(b []byte, chop int, pause time.Duration) {
	for len(b) > 0 && !c.peerGone {
		n := min(chop, len(b))
		c.writeRaw(b[:n])
		b = b[n:]
		if len(b) > 0 && pause > 0 {
			time.Sleep(pause)
		}
	}
}

// writeRaw writes b. A server that has already failed the connection may
// reset it under our feet; that is not the test's verdict (the following
// expectation is), so it only stops further writes.
func (c *wsConn) writeRaw(b []byte) {
	c.t.Helper()
	if c.peerGone {
		return
	}
	c.conn.SetWriteDeadline(time.Now().Add(c.readTimeout))
	if _, err := c.conn.Write(b); err != nil {
		if isPeerGone(err) {
			c.peerGone = true
			c.t.Logf("write: server already gone: %v", err)
			return
		}
		c.t.Fatalf("write %d bytes: %v", len(b), err)
	}
}

// writeAsync writes b from another goroutine, for messages large enough
// that the server may start answering (or push back) before we finish
// writing. The returned wait must be called; it reports the write's outcome.
func (c *wsConn) writeAsync(b []byte) (wait func()) {
	done := make(chan error, 1)
	c.conn.SetWriteDeadline(time.Now().Add(c.readTimeout))
	go func() {
		_, err := c.conn.Write(b)
		done <- err
	}()
	return func() {
		c.t.Helper()
		if err := <-done; err != nil {
			c.t.Errorf("async write of %d bytes: %v", len(b), err)
		}
	}
}

func isPeerGone(err error) bool {
	return errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
}

// serverFrame is one frame as received from the server.
type serverFrame struct {
	fin     bool
	rsv1    bool
	op      byte
	payload []byte
}

// readFrame reads one frame. Things a server must never send (a mask, RSV
// bits, an unknown opcode, a fragmented or oversized control frame) fail the
// test on the spot; I/O errors are returned for the caller to judge.
func (c *wsConn) readFrame() (serverFrame, error) {
	c.t.Helper()
	var h [2]byte
	if _, err := io.ReadFull(c.br, h[:]); err != nil {
		return serverFrame{}, err
	}
	f := serverFrame{fin: h[0]&0x80 != 0, rsv1: h[0]&0x40 != 0, op: h[0] & 0x0F}
	rsv := h[0] & 0x70
	if rsv == 0x40 && c.deflate && (f.op == opText || f.op == opBinary) {
		rsv = 0 // permessage-deflate: a compressed message's first frame
	}
	if rsv != 0 {
		c.t.Fatalf("server frame has RSV bits %#x set where no extension allows them", rsv)
	}
	if h[1]&0x80 != 0 {
		c.t.Fatalf("server frame is masked (RFC 6455 §5.1: a server must not mask)")
	}
	n := uint64(h[1] & 0x7F)
	switch n {
	case 126:
		var ext [2]byte
		if _, err := io.ReadFull(c.br, ext[:]); err != nil {
			return f, err
		}
		n = uint64(binary.BigEndian.Uint16(ext[:]))
	case 127:
		var ext [8]byte
		if _, err := io.ReadFull(c.br, ext[:]); err != nil {
			return f, err
		}
		n = binary.BigEndian.Uint64(ext[:])
	}
	switch f.op {
	case opCont, opText, opBinary:
	case opClose, opPing, opPong:
		if !f.fin || n > 125 {
			c.t.Fatalf("server sent a bad control frame: opcode %#x fin=%v length %d", f.op, f.fin, n)
		}
	default:
		c.t.Fatalf("server sent reserved opcode %#x", f.op)
	}
	if n > maxServerFrame {
		c.t.Fatalf("server frame declares %d bytes", n)
	}
	f.payload = make([]byte, n)
	if _, err := io.ReadFull(c.br, f.payload); err != nil {
		return f, err
	}
	return f, nil
}

// event is a complete message (op text or binary) or a control frame.
type event struct {
	op      byte
	payload []byte
}

func (e event) String() string {
	switch e.op {
	case opText:
		return "text message " + brief(e.payload)
	case opBinary:
		return "binary message " + brief(e.payload)
	case opPing:
		return "ping " + brief(e.payload)
	case opPong:
		return "pong " + brief(e.payload)
	case opClose:
		code, reason := parseClose(e.payload)
		return fmt.Sprintf("close %d %s", code, brief(reason))
	}
	return fmt.Sprintf("opcode %#x %s", e.op, brief(e.payload))
}

// next reads until it has a complete message or a control frame. The server
// may fragment its messages any way it likes, interleave control frames
// between the fragments; only the order of frames is its to keep.
func (c *wsConn) next() (event, error) {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(c.readTimeout))
	for {
		f, err := c.readFrame()
		if err != nil {
			return event{}, err
		}
		switch f.op {
		case opText, opBinary:
			if c.inMsg {
				c.t.Fatalf("server started a new %#x message inside an unfinished fragmented one", f.op)
			}
			if f.fin {
				return event{f.op, c.inflate(f.rsv1, f.payload)}, nil
			}
			c.inMsg, c.msgOp, c.msgBuf, c.msgZ = true, f.op, f.payload, f.rsv1
		case opCont:
			if !c.inMsg {
				c.t.Fatalf("server sent a continuation frame with no message in progress")
			}
			c.msgBuf = append(c.msgBuf, f.payload...)
			if f.fin {
				c.inMsg = false
				return event{c.msgOp, c.inflate(c.msgZ, c.msgBuf)}, nil
			}
		default:
			return event{f.op, f.payload}, nil
		}
	}
}

// inflate decompresses a compressed message (RSV1 on its first frame).
func (c *wsConn) inflate(compressed bool, payload []byte) []byte {
	if !compressed {
		return payload
	}
	out, err := deflate.Inflate(nil, payload, maxServerFrame)
	if err != nil {
		c.t.Fatalf("server sent a compressed message that does not inflate: %v", err)
	}
	return out
}

// expectMessage asserts that the next thing from the server is a complete
// message of type op carrying exactly payload.
func (c *wsConn) expectMessage(op byte, payload []byte) {
	c.t.Helper()
	want := event{op, payload}
	got, err := c.next()
	if err != nil {
		c.t.Fatalf("want %v; got read error: %v", want, err)
	}
	if got.op != op {
		c.t.Fatalf("want %v; got %v", want, got)
	}
	if !bytes.Equal(got.payload, payload) {
		c.t.Fatalf("want %v; got %v (%s)", want, got, firstDiff(got.payload, payload))
	}
}

// expectPing asserts that the next thing from the server is a ping and
// returns its payload.
func (c *wsConn) expectPing() []byte {
	c.t.Helper()
	ev, err := c.next()
	if err != nil || ev.op != opPing {
		c.t.Fatalf("want a ping, got %v %v", ev, err)
	}
	return ev.payload
}

// expectPong asserts that the next thing from the server is a pong with payload.
func (c *wsConn) expectPong(payload []byte) {
	c.t.Helper()
	want := event{opPong, payload}
	got, err := c.next()
	if err != nil {
		c.t.Fatalf("want %v; got read error: %v", want, err)
	}
	if got.op != opPong || !bytes.Equal(got.payload, payload) {
		c.t.Fatalf("want %v; got %v", want, got)
	}
}

// expectClose asserts that the next thing from the server is a close frame
// with one of codes (closeNoStatus: an empty payload), and that the server
// then closes the TCP connection. Fragments of a message the server never
// finished are tolerated before the close; anything complete is not.
func (c *wsConn) expectClose(codes ...uint16) {
	c.t.Helper()
	got, err := c.next()
	if err != nil {
		c.t.Fatalf("want close %v; got read error: %v", codes, err)
	}
	if got.op != opClose {
		c.t.Fatalf("want close %v; got %v", codes, got)
	}
	if len(got.payload) == 1 {
		c.t.Fatalf("server close frame has a 1-byte payload %x (RFC 6455 §5.5.1)", got.payload)
	}
	code, reason := parseClose(got.payload)
	if code != closeNoStatus && !validCloseCode(code) {
		c.t.Errorf("server sent close code %d, which must not be sent", code)
	}
	if !utf8.Valid(reason) {
		c.t.Errorf("server close reason is not valid UTF-8: %x", reason)
	}
	ok := false
	for _, want := range codes {
		ok = ok || code == want
	}
	if !ok {
		c.t.Fatalf("want close %v; got %v", codes, got)
	}
	c.closed = true
	c.expectTCPClose()
}

// expectTCPClose asserts that the server closes the connection and sends
// nothing more: after its close frame a server must not send anything
// (RFC 6455 §5.5.1) and should close TCP first (§7.1.1). We never send a
// close reply: the server must not depend on the client to finish.
func (c *wsConn) expectTCPClose() {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(closeTimeout))
	var b [512]byte
	n, err := c.br.Read(b[:])
	switch {
	case n > 0:
		c.t.Fatalf("server sent %d more bytes after its close frame: %x", n, b[:n])
	case errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET):
	case isTimeout(err):
		c.t.Fatalf("server did not close TCP within %v after its close frame", closeTimeout)
	default:
		c.t.Fatalf("after close frame: read error %v, want EOF or ECONNRESET", err)
	}
}

// expectNothing asserts that the server stays silent for d: it must neither
// send a frame nor close.
func (c *wsConn) expectNothing(d time.Duration) {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(d))
	_, err := c.br.Peek(1)
	if err == nil {
		got, err := c.next()
		if err != nil {
			c.t.Fatalf("want silence for %v; got a partial frame then %v", d, err)
		}
		c.t.Fatalf("want silence for %v; got %v", d, got)
	}
	if !isTimeout(err) {
		c.t.Fatalf("want silence for %v; got read error %v", d, err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func parseClose(p []byte) (code uint16, reason []byte) {
	if len(p) < 2 {
		return closeNoStatus, nil
	}
	return binary.BigEndian.Uint16(p), p[2:]
}

// validCloseCode reports whether code may appear in a close frame
// (RFC 6455 §7.4 and the IANA registry).
func validCloseCode(code uint16) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// brief renders a payload for failure messages without dumping MiBs.
func brief(p []byte) string {
	if len(p) <= 48 {
		return fmt.Sprintf("(%d bytes) %q", len(p), p)
	}
	return fmt.Sprintf("(%d bytes) %q…", len(p), p[:48])
}

func firstDiff(got, want []byte) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("first difference at offset %d: %#02x, want %#02x", i, got[i], want[i])
		}
	}
	return fmt.Sprintf("length %d, want %d", len(got), len(want))
}
