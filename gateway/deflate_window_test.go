package gateway_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/gateway/deflate"
	"github.com/wsgate/wsgate/gateway/deflate/deflatetest"
)

// windowFrame is one data frame a windowed client received: compressed
// or not, and what it carries once inflated.
type windowFrame struct {
	what  string
	z     bool
	wire  []byte // the payload as sent
	plain []byte
}

// readWindowFrame reads one unfragmented data frame and inflates it.
func readWindowFrame(t *testing.T, c *wsConn, what string) windowFrame {
	t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(ioTimeout))
	f, err := c.readFrame()
	if err != nil || !f.fin || f.op != opText {
		t.Fatalf("%s: fin %v op %#x, %v", what, f.fin, f.op, err)
	}
	return windowFrame{what: what, z: f.rsv1, wire: f.payload, plain: c.inflate(f.rsv1, f.payload)}
}

// TestDeflateWindowSocket: a client offering server_max_window_bits=9 has
// it echoed, and then receives — publications and replies alike — a
// compressed frame for each message of at most 512 bytes (over the
// 256-byte threshold) and a plain frame for longer ones, while a client
// with the full window gets both compressed, from the same single
// compression. Every compressed frame the small-window client gets is
// decoded distance by distance (no back-reference over 512 bytes) and
// inflated by zlib with a 512-byte window, one byte per call so that zlib
// checks every distance; a negative control shows that check refuses a
// message that does reach past the window.
func TestDeflateWindowSocket(t *testing.T) {
	requirePython(t, "zlib")
	srv := startServer(t, nil)
	addr := srv.Addr().String()
	const json = "Sec-WebSocket-Protocol: wsgate.v1.json"
	w9 := dialWSWith(t, addr, "/ws", json, "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=9; client_max_window_bits")
	if want := deflate.ResponsePlain + "; server_max_window_bits=9"; w9.ext != want {
		t.Fatalf("answer %q, want %q", w9.ext, want)
	}
	full := dialWSWith(t, addr, "/ws", json, offerDeflate)
	pub := dialWSWith(t, addr, "/ws", json)
	for _, c := range []*wsConn{w9, full} {
		c.send(textFrame(`{"id":1,"cmd":"subscribe","channel":"win:x"}`))
		if f := readWindowFrame(t, c, "subscribe reply"); !bytes.Contains(f.plain, []byte(`"reply"`)) {
			t.Fatalf("subscribe: %q", f.plain)
		}
	}
	small := `"` + strings.Repeat(randomLetters(9, 160), 2) + `"` // a push of about 400 bytes, matches 160 back
	doc := readDocument(t)
	before := srv.Hub().Stats().Compressed.Load()
	var got []windowFrame
	for i, data := range [][]byte{[]byte(small), doc} {
		pub.send(textFrame(fmt.Sprintf(`{"id":%d,"cmd":"publish","channel":"win:x","data":%s}`, i+2, data)))
		readWindowFrame(t, pub, "publish reply")
		what := fmt.Sprintf("publication %d", i+1)
		if f := readWindowFrame(t, full, what); !f.z {
			t.Fatalf("%s of %d bytes: plain for the full window", what, len(f.plain))
		}
		got = append(got, readWindowFrame(t, w9, what))
	}
	if n := srv.Hub().Stats().Compressed.Load() - before; n != 2 {
		t.Fatalf("hub compressed %d frames for 2 publications, want 2", n)
	}
	for i, q := range []string{`"limit":1`, `"limit":1,"reverse":true`} { // the small one, then the document
		w9.send(textFrame(fmt.Sprintf(`{"id":%d,"cmd":"history","channel":"win:x",%s}`, i+5, q)))
		got = append(got, readWindowFrame(t, w9, "history reply "+q))
	}
	checkWindowFrames(t, got, 9)
}

// TestDeflateWindowEcho: the echo endpoint keeps the window on the
// transport (not a session) and honours it the same way, at the edges:
// 512 bytes compressed, 513 plain.
func TestDeflateWindowEcho(t *testing.T) {
	requirePython(t, "zlib")
	srv := startServer(t, nil)
	c := dialWSWith(t, srv.Addr().String(), "/echo", "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=9")
	if want := deflate.ResponsePlain + "; server_max_window_bits=9"; c.ext != want {
		t.Fatalf("answer %q, want %q", c.ext, want)
	}
	var got []windowFrame
	for _, n := range []int{100, 400, 512, 513, 2000} {
		msg := strings.Repeat(randomLetters(uint64(n), n/2+1), 2)[:n]
		c.send(textFrame(msg))
		f := readWindowFrame(t, c, fmt.Sprintf("echo of %d bytes", n))
		if string(f.plain) != msg {
			t.Fatalf("%s: altered", f.what)
		}
		got = append(got, f)
	}
	checkWindowFrames(t, got, 9)
}

// checkWindowFrames checks the frames a client with window bits got:
// compressed exactly when 256 ≤ length ≤ 2^bits (both cases present), and
// every compressed one within the window, by deflatetest and by zlib.
func checkWindowFrames(t *testing.T, got []windowFrame, bits int) {
	t.Helper()
	dir := t.TempDir()
	var args []string
	var zs, plains int
	for i, f := range got {
		n := len(f.plain)
		if want := n >= 256 && n <= 1<<bits; f.z != want {
			t.Fatalf("%s: %d bytes sent compressed=%v, want %v", f.what, n, f.z, want)
		}
		if !f.z {
			plains++
			continue
		}
		zs++
		out, dist, err := deflatetest.Inflate(f.wire)
		if err != nil || !bytes.Equal(out, f.plain) || dist > 1<<bits {
			t.Fatalf("%s: longest back-reference %d bytes (window %d), err %v", f.what, dist, 1<<bits, err)
		}
		t.Logf("%s: %d bytes compressed to %d, longest back-reference %d", f.what, n, len(f.wire), dist)
		args = append(args, "ok", writeTemp(t, dir, fmt.Sprintf("%d.z", i), f.wire), writeTemp(t, dir, fmt.Sprintf("%d.plain", i), f.plain))
	}
	if zs == 0 || plains == 0 {
		t.Fatalf("%d compressed and %d plain frames: want both", zs, plains)
	}
	// The negative control: random letters a little longer than the
	// window, said twice, so the matches reach just past it.
	long := []byte(strings.Repeat(randomLetters(uint64(bits), 1<<bits+100), 2))
	args = append(args, "reject", writeTemp(t, dir, "long.z", deflate.Compress(nil, long)), writeTemp(t, dir, "long.plain", long))
	script, _ := filepath.Abs(filepath.Join("testdata", "python", "window_inflate.py"))
	runInterop(t, dir, pythonInterp, append([]string{script, fmt.Sprint(bits)}, args...)...)
}

// randomLetters is n pseudo-random lower-case letters: they compress
// only where the text repeats itself.
func randomLetters(seed uint64, n int) string {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(r.IntN(26))
	}
	return string(b)
}

func writeTemp(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
