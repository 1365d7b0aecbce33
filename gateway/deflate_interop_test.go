package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	cws "github.com/coder/websocket"
	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/gateway"
)

// The permessage-deflate interop tests: clients nobody on this project
// wrote negotiate compression with wsgate, send compressed messages (a
// publish of the benchmark's JSON document) and receive compressed
// publications. The server's counters prove both directions were
// compressed: publications compressed by the hub, messages inflated.

// documentPath is the benchmark's JSON document (bench/README.md).
const documentPath = "../bench/harness/wire/document.json"

func readDocument(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(documentPath)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// startDeflateServer runs a gateway with the demo page (a same-origin page
// for Chromium) and the echo endpoint, compression on by default.
func startDeflateServer(t *testing.T) *gateway.Server {
	return startServer(t, func(c *gateway.Config) { c.Demo = true })
}

// checkCompressedBothWays fails unless srv inflated at least one message
// and compressed at least one publication.
func checkCompressedBothWays(t *testing.T, srv *gateway.Server) {
	t.Helper()
	in, out := srv.Metrics().MessagesInflated.Load(), srv.Hub().Stats().Compressed.Load()
	if in == 0 || out == 0 {
		t.Fatalf("messages inflated %d, publication frames compressed %d: want both > 0", in, out)
	}
	t.Logf("messages inflated %d, publication frames compressed %d", in, out)
}

// TestDeflatePython: Python websockets offers deflate by default.
func TestDeflatePython(t *testing.T) {
	t.Parallel()
	requirePython(t, "websockets")
	srv := startDeflateServer(t)
	doc, _ := filepath.Abs(documentPath)
	runInterop(t, filepath.Join("testdata", "python"), pythonInterp, "deflate_client.py", "ws://"+srv.Addr().String()+"/ws", doc)
	checkCompressedBothWays(t, srv)
}

// TestDeflateWindowPython: Python websockets offering
// server_max_window_bits=10 (it then inflates with a 1 KiB window) gets it
// echoed and receives publications correctly: a short one compressed
// (checked against the window by zlib, strictly, in the script), a longer
// one plain.
func TestDeflateWindowPython(t *testing.T) {
	t.Parallel()
	requirePython(t, "websockets")
	srv := startDeflateServer(t)
	doc, _ := filepath.Abs(documentPath)
	runInterop(t, filepath.Join("testdata", "python"), pythonInterp, "window_client.py", "ws://"+srv.Addr().String()+"/ws", doc)
	if n := srv.Hub().Stats().Compressed.Load(); n != 1 {
		t.Fatalf("hub compressed %d publication frames, want 1 (the short one; nobody could take the long one compressed)", n)
	}
}

// TestDeflateNode: npm ws with perMessageDeflate.
func TestDeflateNode(t *testing.T) {
	t.Parallel()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node not found on PATH (Node.js 20+ is required for this test): %v", err)
	}
	dir := filepath.Join("testdata", "node")
	ensureNodeModules(t, dir)
	srv := startDeflateServer(t)
	doc, _ := filepath.Abs(documentPath)
	runInterop(t, dir, node, "deflate_client.mjs", "ws://"+srv.Addr().String()+"/ws", doc)
	checkCompressedBothWays(t, srv)
}

// chromiumDeflateJS runs the publish/receive exchange in the page and
// resolves to "ok <extensions>" or rejects with what went wrong.
const chromiumDeflateJS = `(async () => {
  const url = "ws://" + location.host + "/ws";
  const doc = %s;
  const channel = "interop:deflate-chromium." + Date.now();
  const open = () => new Promise((resolve, reject) => {
    const ws = new WebSocket(url, ["wsgate.v1.json"]);
    const queue = [], waiters = [];
    ws.onmessage = (e) => { const f = JSON.parse(e.data); const w = waiters.shift(); if (w) w(f); else queue.push(f); };
    ws.next = () => queue.length ? Promise.resolve(queue.shift()) : new Promise((r) => waiters.push(r));
    ws.onopen = () => resolve(ws);
    ws.onerror = () => reject(new Error("websocket error"));
  });
  const sub = await open(), pub = await open();
  for (const ws of [sub, pub]) {
    if (!ws.extensions.startsWith("permessage-deflate")) throw new Error("extensions: " + ws.extensions);
  }
  sub.send(JSON.stringify({id: 1, cmd: "subscribe", channel}));
  let r = await sub.next();
  if (r.type !== "reply" || r.error) throw new Error("subscribe: " + JSON.stringify(r));
  pub.send(JSON.stringify({id: 2, cmd: "publish", channel, data: doc}));
  r = await pub.next();
  if (r.type !== "reply" || r.error) throw new Error("publish: " + JSON.stringify(r));
  const m = await sub.next();
  if (m.type !== "message" || JSON.stringify(m.data) !== JSON.stringify(doc)) throw new Error("message: " + JSON.stringify(m).slice(0, 200));
  sub.close(); pub.close();
  return "ok " + sub.extensions;
})()`

// TestDeflateChromium: headless Chromium (as the browser tests of
// gateway/client/js start it) negotiates permessage-deflate, publishes the
// JSON document compressed and receives it compressed.
func TestDeflateChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium (-short)")
	}
	chrome, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium not found on PATH (make deps installs the Debian package): %v", err)
	}
	srv := startDeflateServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chrome), chromedp.UserDataDir(t.TempDir()), chromedp.Headless, chromedp.DisableGPU,
		chromedp.NoSandbox, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-dev-shm-usage", true))
	defer cancelAlloc()
	tab, cancelTab := chromedp.NewContext(alloc)
	defer cancelTab()
	if err := chromedp.Do(tab); err != nil { // the first Run starts the browser
		t.Fatalf("start Chromium: %v", err)
	}
	run, cancelRun := context.WithTimeout(tab, 30*time.Second)
	defer cancelRun()
	if err := chromedp.Do(run, chromedp.Navigate("http://"+srv.Addr().String()+"/")); err != nil {
		t.Fatalf("open the page: %v", err)
	}
	got, err := chromedp.Run(run, chromedp.Evaluate[string](fmt.Sprintf(chromiumDeflateJS, readDocument(t)), chromedp.EvalAwaitPromise))
	if err != nil || !strings.HasPrefix(got, "ok permessage-deflate") {
		t.Fatalf("exchange in Chromium: %q, %v", got, err)
	}
	t.Log(got)
	checkCompressedBothWays(t, srv)
}

// pushJSON is a JSON-protocol server frame as the Go clients read it.
type pushJSON struct {
	Type  string          `json:"type"`
	ID    int             `json:"id"`
	Error json.RawMessage `json:"error"`
	Data  json.RawMessage `json:"data"`
}

// TestDeflateGoClients: gorilla/websocket (EnableCompression) and
// coder/websocket (no context takeover) negotiate it, publish the document
// compressed and receive it compressed; /echo answers a compressed message
// compressed too.
func TestDeflateGoClients(t *testing.T) {
	srv := startDeflateServer(t)
	addr := srv.Addr().String()
	doc := readDocument(t)
	publish := fmt.Appendf(nil, `{"id":2,"cmd":"publish","channel":"interop:deflate-go","data":%s}`, doc)

	d := websocket.Dialer{EnableCompression: true, Subprotocols: []string{"wsgate.v1.json"}}
	sub, resp, err := d.Dial("ws://"+addr+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); !strings.HasPrefix(ext, "permessage-deflate") {
		t.Fatalf("gorilla: extensions %q", ext)
	}
	readPush := func() pushJSON {
		sub.SetReadDeadline(time.Now().Add(5 * time.Second))
		var p pushJSON
		if err := sub.ReadJSON(&p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sub.WriteMessage(websocket.TextMessage, []byte(`{"id":1,"cmd":"subscribe","channel":"interop:deflate-go"}`))
	if p := readPush(); p.Type != "reply" || p.Error != nil {
		t.Fatalf("subscribe: %+v", p)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pub, _, err := cws.Dial(ctx, "ws://"+addr+"/ws", &cws.DialOptions{Subprotocols: []string{"wsgate.v1.json"},
		CompressionMode: cws.CompressionNoContextTakeover, CompressionThreshold: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.CloseNow()
	if err := pub.Write(ctx, cws.MessageText, publish); err != nil {
		t.Fatal(err)
	}
	if _, b, err := pub.Read(ctx); err != nil || !bytes.Contains(b, []byte(`"type":"reply"`)) || bytes.Contains(b, []byte(`"error"`)) {
		t.Fatalf("coder: publish reply %s, %v", b, err)
	}
	if p := readPush(); p.Type != "message" || !jsonEqual(p.Data, doc) {
		t.Fatalf("gorilla: push %s %.80s", p.Type, p.Data)
	}

	echo, _, err := d.Dial("ws://"+addr+"/echo", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	echo.WriteMessage(websocket.TextMessage, doc)
	echo.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, b, err := echo.ReadMessage(); err != nil || !bytes.Equal(b, doc) {
		t.Fatalf("echo: %d bytes, %v", len(b), err)
	}
	checkCompressedBothWays(t, srv)
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && fmt.Sprint(x) == fmt.Sprint(y)
}
