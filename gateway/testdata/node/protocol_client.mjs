// Protocol client for wsgate's /ws endpoint (codec/README.md), built on npm
// `ws` and `@msgpack/msgpack`: neither the WebSocket nor the encoding side
// shares code with the server or the Go tests, so a reading of the spec that
// only our own code agrees with fails here.
//
// usage: node protocol_client.mjs ws://host:port/ws <msgpack|json>
//
// Exits 0 when every check passes; otherwise prints what failed and exits 1.
import WebSocket from 'ws';
import { decode, encode } from '@msgpack/msgpack';
import { isDeepStrictEqual } from 'node:util';

const GLOBAL_TIMEOUT_MS = 20_000;
const N_PUBLISH = 5;

// codec/README.md §6.
const BAD_REQUEST = 100;
const UNKNOWN_COMMAND = 101;
const BAD_CHANNEL = 102;
const NOT_SUBSCRIBED = 105;
// codec/README.md §1, §4, §8.
const CLOSE_UNSUPPORTED_DATA = 1003;
const CLOSE_INVALID_PAYLOAD = 1007;

const [url, mode] = process.argv.slice(2);
if (!url || (mode !== 'msgpack' && mode !== 'json')) {
  console.error('usage: node protocol_client.mjs ws://host:port/ws <msgpack|json>');
  process.exit(2);
}

function fail(msg) {
  console.error(`FAIL [${mode}]: ${msg}`);
  process.exit(1);
}

// A server that swallows a command would otherwise leave us waiting forever,
// and the Go test would only see its own timeout with no hint of which step
// hung.
let step = 'start';
setTimeout(() => fail(`global timeout of ${GLOBAL_TIMEOUT_MS} ms while ${step}`), GLOBAL_TIMEOUT_MS).unref();

// One channel per run, so a rerun against a long-lived server (or the two
// modes run in parallel against one) never sees another run's publications.
const CHANNEL = `interop:node-${mode}.${process.pid}-${Date.now()}`;

function show(v) {
  return JSON.stringify(v, (_k, x) => (x instanceof Uint8Array ? `<bin ${Buffer.from(x).toString('hex')}>` : x));
}

// Client wraps one /ws connection: commands are encoded for its subprotocol,
// incoming frames are checked for the matching frame type, decoded and
// queued, so a step can await "the next frame" whether or not it is already
// here. A close the step did not ask for fails the run.
class Client {
  constructor(name, encoding) {
    this.name = name;
    this.encoding = encoding;
    this.proto = `wsgate.v1.${encoding}`;
    this.inbox = [];
    this.waiter = null;
    this.closed = null; // { code, reason } once the connection is closed
    this.closeWaiter = null;
    this.expectClose = false;
  }

  async open() {
    step = `connecting with ${this.proto}`;
    const ws = new WebSocket(url, [this.proto]);
    this.ws = ws;
    ws.on('unexpected-response', (_req, res) => fail(`${this.name}: handshake: HTTP ${res.statusCode} instead of 101`));
    ws.on('error', (err) => fail(`${this.name}: ${step}: socket error: ${err.message}`));
    ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      if (this.closeWaiter) this.closeWaiter();
      else if (!this.expectClose) fail(`${this.name}: ${step}: connection closed unexpectedly: code ${code} reason ${JSON.stringify(this.closed.reason)}`);
    });
    await new Promise((resolve) => ws.once('open', resolve));
    // ws itself fails the handshake when the server picks a protocol we did
    // not offer; this catches one that picked none or the other one.
    if (ws.protocol !== this.proto) {
      fail(`${this.name}: negotiated subprotocol ${JSON.stringify(ws.protocol)}, want ${JSON.stringify(this.proto)}`);
    }
    return this;
  }

  onMessage(data, isBinary) {
    let frame;
    if (this.encoding === 'msgpack') {
      if (!isBinary) fail(`${this.name}: ${step}: msgpack connection got a text frame: ${data.toString()}`);
      try {
        frame = decode(data);
      } catch (err) {
        fail(`${this.name}: ${step}: undecodable msgpack frame ${data.toString('hex')}: ${err.message}`);
      }
    } else {
      if (isBinary) fail(`${this.name}: ${step}: JSON connection got a binary frame: ${data.toString('hex')}`);
      try {
        frame = JSON.parse(data.toString('utf8'));
      } catch (err) {
        fail(`${this.name}: ${step}: invalid JSON frame ${data.toString()}: ${err.message}`);
      }
    }
    if (frame === null || typeof frame !== 'object' || Array.isArray(frame)) {
      fail(`${this.name}: ${step}: server frame is not a map: ${show(frame)}`);
    }
    const msg = { frame, raw: data };
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w(msg);
    } else {
      this.inbox.push(msg);
    }
  }

  next() {
    if (this.inbox.length > 0) return Promise.resolve(this.inbox.shift());
    return new Promise((resolve) => { this.waiter = resolve; });
  }

  send(cmd) {
    if (this.encoding === 'msgpack') this.ws.send(encode(cmd), { binary: true });
    else this.ws.send(JSON.stringify(cmd), { binary: false });
  }

  // sendRaw sends bytes as they are, for frames no encoder would produce.
  sendRaw(data, binary) {
    this.ws.send(data, { binary });
  }

  // reply waits for the next frame and checks it is the reply to id.
  async reply(id) {
    const { frame } = await this.next();
    if (frame.type !== 'reply') fail(`${this.name}: ${step}: want the reply to id ${id}, got ${show(frame)}`);
    if (frame.id !== id) fail(`${this.name}: ${step}: reply has id ${show(frame.id)}, want ${id}: ${show(frame)}`);
    return frame;
  }

  async okReply(id) {
    const frame = await this.reply(id);
    if (frame.error !== undefined) fail(`${this.name}: ${step}: error reply ${show(frame)}`);
    return frame;
  }

  async errorReply(id, code) {
    const frame = await this.reply(id);
    const e = frame.error;
    if (e === undefined || e === null) fail(`${this.name}: ${step}: want error ${code}, got success ${show(frame)}`);
    if (e.code !== code) fail(`${this.name}: ${step}: error code ${show(e.code)}, want ${code}: ${show(frame)}`);
    if (typeof e.message !== 'string') fail(`${this.name}: ${step}: error without a message string: ${show(frame)}`);
    return frame;
  }

  // expectClosedWith waits for the server to close the connection with code
  // and checks that nothing (a reply, say) came before the close frame.
  async expectClosedWith(code) {
    this.expectClose = true;
    await new Promise((resolve) => { this.closeWaiter = resolve; if (this.closed) resolve(); });
    if (this.inbox.length > 0) fail(`${this.name}: ${step}: got ${show(this.inbox[0].frame)} before the close`);
    if (this.closed.code !== code) {
      fail(`${this.name}: ${step}: closed with ${this.closed.code} (reason ${JSON.stringify(this.closed.reason)}), want ${code}`);
    }
  }

  async close() {
    this.expectClose = true;
    if (this.inbox.length > 0) fail(`${this.name}: unexpected frame left over: ${show(this.inbox[0].frame)}`);
    const done = new Promise((resolve) => { this.closeWaiter = resolve; if (this.closed) resolve(); });
    this.ws.close(1000);
    await done;
  }
}

function isUint(v) {
  return Number.isSafeInteger(v) && v >= 0;
}

// Payloads. msgpack: every byte value, non-JSON and invalid UTF-8, so the
// server must treat data as opaque bytes. JSON: a value with whitespace,
// nesting, escapes and non-ASCII, carried in the command as written, so
// "arrives exactly as sent" (README §5) is checked against the text itself.
function payload(i) {
  if (mode === 'msgpack') {
    const b = new Uint8Array(40 + i);
    for (let j = 0; j < b.length; j++) b[j] = (i * 37 + j * 101) & 0xff;
    return { value: b };
  }
  const text = `{"n": ${i}, "s": "caf\u00e9 \\u00e9 \\"q\\" \ud83d\ude00", "a": [1, 2.5, null, true, {"k": []}]}`;
  return { value: JSON.parse(text), text };
}

function publishFrame(id, i) {
  const p = payload(i);
  if (mode === 'msgpack') return encode({ id, cmd: 'publish', channel: CHANNEL, data: p.value });
  // Hand-built so the data keeps its exact text (JSON.stringify would
  // normalise it).
  return `{"id":${id},"cmd":"publish","channel":${JSON.stringify(CHANNEL)},"data":${p.text}}`;
}

// --- round trip: subscribe, publish N, receive N in order ---

const sub = await new Client('subscriber', mode).open();
const pub = await new Client('publisher', mode).open();

step = 'subscribe';
sub.send({ id: 1, cmd: 'subscribe', channel: CHANNEL });
const subReply = await sub.okReply(1);
if (!isUint(subReply.offset)) fail(`subscribe reply: offset ${show(subReply.offset)} is not an unsigned integer: ${show(subReply)}`);
if (typeof subReply.epoch !== 'string') fail(`subscribe reply: epoch ${show(subReply.epoch)} is not a string: ${show(subReply)}`);

// Publish everything before reading: replies may come back in any order
// (README §3), so they are matched by id.
step = 'publish';
for (let i = 0; i < N_PUBLISH; i++) pub.sendRaw(publishFrame(100 + i, i), mode === 'msgpack');
const pubReplies = new Map();
for (let i = 0; i < N_PUBLISH; i++) {
  const { frame } = await pub.next();
  if (frame.type !== 'reply') fail(`publish: publisher got ${show(frame)}, want a reply`);
  if (frame.error !== undefined) fail(`publish: error reply ${show(frame)}`);
  if (!(frame.id >= 100 && frame.id < 100 + N_PUBLISH) || pubReplies.has(frame.id)) {
    fail(`publish: reply with unexpected or repeated id: ${show(frame)}`);
  }
  pubReplies.set(frame.id, frame);
}

let lastOffset = subReply.offset;
for (let i = 0; i < N_PUBLISH; i++) {
  step = `receive publication ${i}`;
  const { frame, raw } = await sub.next();
  const want = payload(i);
  if (frame.type !== 'message') fail(`${step}: got ${show(frame)}, want a message push`);
  if (frame.channel !== CHANNEL) fail(`${step}: channel ${show(frame.channel)}, want ${CHANNEL}`);
  // The channel is new, so every publication lies above the top offset the
  // subscribe reply reported (README §10), and offsets strictly increase
  // within the epoch (§9).
  if (!isUint(frame.offset) || frame.offset <= lastOffset) {
    fail(`${step}: offset ${show(frame.offset)} does not increase past ${lastOffset}: ${show(frame)}`);
  }
  lastOffset = frame.offset;
  if (mode === 'msgpack') {
    if (!(frame.data instanceof Uint8Array) || !Buffer.from(frame.data).equals(Buffer.from(want.value))) {
      fail(`${step}: data ${show(frame.data)}, want ${show(want.value)} (messages out of order or altered)`);
    }
  } else {
    if (frame.b64 !== undefined) fail(`${step}: JSON data arrived as b64: ${show(frame)}`);
    if (!isDeepStrictEqual(frame.data, want.value)) fail(`${step}: data ${show(frame.data)}, want ${want.text}`);
    if (!raw.toString('utf8').includes(`"data":${want.text}`)) {
      fail(`${step}: data is not the published text verbatim: got frame ${raw.toString('utf8')}, want it to contain "data":${want.text}`);
    }
  }
  // A publish reply that reports a position must agree with the push.
  const pr = pubReplies.get(100 + i);
  if (pr.offset !== undefined && pr.offset !== frame.offset) {
    fail(`${step}: publish reply ${show(pr)} says offset ${pr.offset}, push says ${frame.offset}`);
  }
  if (pr.epoch !== undefined && pr.epoch !== subReply.epoch) {
    fail(`${step}: publish reply epoch ${show(pr.epoch)} differs from the subscribe reply's ${show(subReply.epoch)}`);
  }
}

// --- cross-encoding (JSON mode): a msgpack publisher's bytes ---

let crossNote = '';
if (mode === 'json') {
  const mp = await new Client('msgpack publisher', 'msgpack').open();
  // Not JSON and not UTF-8; 0xfb 0xff makes both base64 specials ("+/") and
  // the odd length makes padding, so only standard padded base64 matches.
  const binary = new Uint8Array([0x00, 0xff, 0xfe, 0x80, 0xc0, 0xfb, 0xff, 0x0a, 0x7b]);
  // Bytes that happen to be JSON text arrive as a JSON value instead.
  const jsonBytes = new TextEncoder().encode('{"from":"msgpack","v":[1,2]}');
  const cases = [{ id: 200, data: binary }, { id: 201, data: jsonBytes }];
  for (const c of cases) {
    step = `cross-encoding publish ${c.id}`;
    mp.send({ id: c.id, cmd: 'publish', channel: CHANNEL, data: c.data });
    await mp.okReply(c.id);
    step = `cross-encoding receive ${c.id}`;
    const { frame } = await sub.next();
    if (frame.type !== 'message' || frame.channel !== CHANNEL) fail(`${step}: got ${show(frame)}, want a message push on ${CHANNEL}`);
    if (!isUint(frame.offset) || frame.offset <= lastOffset) fail(`${step}: offset ${show(frame.offset)} does not increase past ${lastOffset}`);
    lastOffset = frame.offset;
    if (c.data === binary) {
      const want = Buffer.from(binary).toString('base64');
      if (frame.data !== undefined) fail(`${step}: binary data arrived with a "data" key: ${show(frame)}`);
      if (frame.b64 !== want) fail(`${step}: b64 ${show(frame.b64)}, want ${show(want)} (standard base64 with padding)`);
    } else {
      if (frame.b64 !== undefined) fail(`${step}: JSON-text bytes arrived as b64: ${show(frame)}`);
      if (!isDeepStrictEqual(frame.data, { from: 'msgpack', v: [1, 2] })) fail(`${step}: data ${show(frame.data)}`);
    }
  }
  await mp.close();
  crossNote = ', cross-encoding b64 + JSON text';
}

// --- ping and error replies ---

step = 'ping';
sub.send({ id: 2, cmd: 'ping' });
const pong = await sub.okReply(2);

step = 'subscribe to an invalid channel name';
sub.send({ id: 3, cmd: 'subscribe', channel: 'bad channel' });
await sub.errorReply(3, BAD_CHANNEL);

step = 'unsubscribe from a channel not subscribed';
sub.send({ id: 4, cmd: 'unsubscribe', channel: `${CHANNEL}.other` });
await sub.errorReply(4, NOT_SUBSCRIBED);

step = 'unknown command';
sub.send({ id: 5, cmd: 'frobnicate', channel: CHANNEL });
await sub.errorReply(5, UNKNOWN_COMMAND);

step = 'subscribe without a channel';
sub.send({ id: 6, cmd: 'subscribe' });
await sub.errorReply(6, BAD_REQUEST);

// After all that the connection still works and is still subscribed.
step = 'unsubscribe';
sub.send({ id: 7, cmd: 'unsubscribe', channel: CHANNEL });
await sub.okReply(7);

await pub.close();
await sub.close();

// --- frames that are not commands: the server closes ---

const bad = await new Client('malformed-frame client', mode).open();
step = 'malformed frame';
if (mode === 'msgpack') bad.sendRaw(Buffer.from([0x81]), true); // a map of one pair, and nothing else
else bad.sendRaw('{"id":', false); // no id can be read from it
await bad.expectClosedWith(CLOSE_INVALID_PAYLOAD);

const wrong = await new Client('wrong-frame-type client', mode).open();
step = 'wrong frame type';
// A well-formed command in the other encoding's frame type: the frame type
// alone must get it closed.
if (mode === 'msgpack') wrong.sendRaw('{"id":1,"cmd":"ping"}', false);
else wrong.sendRaw(encode({ id: 1, cmd: 'ping' }), true);
await wrong.expectClosedWith(CLOSE_UNSUPPORTED_DATA);

console.log(
  `ok [${mode}]: ws + @msgpack/msgpack: subscribe (offset ${subReply.offset}, epoch ${show(subReply.epoch)}), ` +
  `${N_PUBLISH} publications in order (last offset ${lastOffset})${crossNote}, ping ${show(pong)}, ` +
  `errors ${BAD_CHANNEL}/${NOT_SUBSCRIBED}/${UNKNOWN_COMMAND}/${BAD_REQUEST}, ` +
  `close ${CLOSE_INVALID_PAYLOAD} on a malformed frame, ${CLOSE_UNSUPPORTED_DATA} on the wrong frame type`,
);
process.exit(0);
