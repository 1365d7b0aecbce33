// Interop client for wsgate's raw echo endpoint, built on the npm `ws`
// package: a WebSocket implementation nobody on this project wrote, so a
// frame-format or handshake mistake shared by our server and our Go test
// clients still shows up here.
//
// usage: node echo_client.mjs ws://host:port/echo
//
// Exits 0 when every check passes; otherwise prints what failed and exits 1.
import WebSocket from 'ws';

const SIZES = [0, 1, 125, 126, 65535, 65536]; // 65536 = the test server's message limit
const CLOSE_CODE = 4000;
const GLOBAL_TIMEOUT_MS = 20_000;

const url = process.argv[2];
if (!url) {
  console.error('usage: node echo_client.mjs ws://host:port/echo');
  process.exit(2);
}

function fail(msg) {
  console.error(`FAIL: ${msg}`);
  process.exit(1);
}

// The whole run must finish in time: a server that swallows a frame would
// otherwise leave us waiting forever, and the Go test would only see its own
// timeout with no hint of which step hung.
let step = 'connecting';
setTimeout(() => fail(`global timeout of ${GLOBAL_TIMEOUT_MS} ms while ${step}`), GLOBAL_TIMEOUT_MS);

// Text payloads mix 1-, 2-, 3- and 4-byte UTF-8 sequences so that a server
// which splits or validates text on the wrong boundary is caught; the byte
// length is exact (ASCII fills whatever the pattern leaves over).
function textPayload(size) {
  const pattern = ['a', 'é', '€', '😀', 'z'];
  const parts = [];
  let n = 0;
  for (let i = 0; n < size; i++) {
    let ch = pattern[i % pattern.length];
    const len = Buffer.byteLength(ch);
    if (n + len > size) ch = 'x';
    parts.push(ch);
    n += Buffer.byteLength(ch);
  }
  return parts.join('');
}

// Binary payloads cover every byte value (including ones that are invalid
// UTF-8) in a non-repeating-looking order, so an off-by-one in unmasking
// or a mix-up with the text path cannot pass by accident.
function binaryPayload(size) {
  const b = Buffer.alloc(size);
  let x = 0x12345678 + size;
  for (let i = 0; i < size; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

const cases = [];
for (const size of SIZES) {
  cases.push({ name: `text ${size}`, binary: false, data: textPayload(size) });
  cases.push({ name: `binary ${size}`, binary: true, data: binaryPayload(size) });
}

// Incoming messages go into a queue so a check can await "the next message"
// whether it has already arrived or not.
const inbox = [];
let waiter = null;
function nextMessage() {
  if (inbox.length > 0) return Promise.resolve(inbox.shift());
  return new Promise((resolve) => { waiter = resolve; });
}

function verify(c, msg) {
  const want = c.binary ? c.data : Buffer.from(c.data, 'utf8');
  if (msg.isBinary !== c.binary) {
    fail(`${c.name}: got a ${msg.isBinary ? 'binary' : 'text'} message, want ${c.binary ? 'binary' : 'text'}`);
  }
  if (!Buffer.isBuffer(msg.data)) fail(`${c.name}: got data of type ${typeof msg.data}`);
  if (!want.equals(msg.data)) {
    let at = 0;
    while (at < want.length && at < msg.data.length && want[at] === msg.data[at]) at++;
    fail(`${c.name}: echo differs: got ${msg.data.length} bytes, want ${want.length}; first difference at byte ${at}`);
  }
}

let closed = null; // set by the 'close' event: { code, reason }
let closedWaiter = null;

const ws = new WebSocket(url);
ws.on('unexpected-response', (_req, res) => fail(`handshake: HTTP ${res.statusCode} instead of 101`));
ws.on('error', (err) => fail(`${step}: socket error: ${err.message}`));
ws.on('message', (data, isBinary) => {
  const msg = { data, isBinary };
  if (waiter) {
    const w = waiter;
    waiter = null;
    w(msg);
  } else {
    inbox.push(msg);
  }
});
ws.on('close', (code, reason) => {
  closed = { code, reason: reason.toString() };
  if (closedWaiter) closedWaiter();
  else if (!step.startsWith('closing')) fail(`${step}: connection closed early: code ${code} reason ${JSON.stringify(closed.reason)}`);
});

await new Promise((resolve) => ws.once('open', resolve));

// Lock-step: one message out, its echo back, so a failure names the case.
for (const c of cases) {
  step = `lock-step ${c.name}`;
  ws.send(c.data, { binary: c.binary });
  verify(c, await nextMessage());
}

// Pipelined: all cases in flight at once; echoes must come back in order
// (one writer per connection: frames leave in queue order), which also exercises several frames per read.
step = 'pipelined burst';
for (const c of cases) ws.send(c.data, { binary: c.binary });
for (const c of cases) {
  step = `pipelined ${c.name}`;
  verify(c, await nextMessage());
}

// Ping: the server must answer with a pong carrying the same payload.
step = 'ping/pong';
const pingPayload = Buffer.from('wsgate-ping-1234');
const pong = new Promise((resolve) => ws.once('pong', resolve));
ws.ping(pingPayload);
const pongData = await pong;
if (!pingPayload.equals(pongData)) {
  fail(`pong payload ${JSON.stringify(pongData.toString())}, want ${JSON.stringify(pingPayload.toString())}`);
}

// Close handshake: the server answers our close frame with one carrying the
// same code; ws reports the code it received in the 'close' event (1005 if
// the server's close frame had no code, 1006 if it sent none at all).
step = 'closing handshake';
const closedP = new Promise((resolve) => { closedWaiter = resolve; if (closed) resolve(); });
ws.close(CLOSE_CODE, 'bye');
await closedP;
if (closed.code !== CLOSE_CODE) {
  fail(`close: server's close frame carried code ${closed.code}, want ${CLOSE_CODE}`);
}
if (inbox.length > 0) fail(`${inbox.length} unexpected message(s) left over after the echoes`);

console.log(`ok: ws ${cases.length * 2} echoes, ping/pong, close ${closed.code} (reason ${JSON.stringify(closed.reason)}), extensions ${JSON.stringify(ws.extensions)}`);
process.exit(0);
