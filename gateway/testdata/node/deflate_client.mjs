// permessage-deflate client for wsgate's /ws endpoint, built on npm `ws`
// with perMessageDeflate (threshold 0: it compresses everything it sends).
//
// usage: node deflate_client.mjs ws://host:port/ws DOCUMENT.json
//
// Two JSON-protocol connections: one subscribes, the other publishes the
// JSON document and a small message; the subscriber must receive both
// intact. Exits 0 when every check passes, else prints why and exits 1.
import WebSocket from 'ws';
import { readFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';

const [url, path] = process.argv.slice(2);
const doc = JSON.parse(readFileSync(path, 'utf8'));
const channel = `interop:deflate-node.${process.pid}-${Date.now()}`;

function fail(msg) {
  console.error(`FAIL: ${msg}`);
  process.exit(1);
}
setTimeout(() => fail('global timeout of 20 s'), 20_000).unref();

function open(name) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, ['wsgate.v1.json'], { perMessageDeflate: { threshold: 0 } });
    const queue = [];
    const waiters = [];
    ws.on('message', (data, isBinary) => {
      if (isBinary) fail(`${name}: binary frame on a JSON connection`);
      const frame = JSON.parse(data.toString());
      const w = waiters.shift();
      if (w) w(frame); else queue.push(frame);
    });
    ws.next = () => queue.length ? Promise.resolve(queue.shift()) : new Promise((r) => waiters.push(r));
    // ws.extensions names the extensions only; the parameters are in the
    // response header.
    let ext = '';
    ws.on('upgrade', (res) => { ext = res.headers['sec-websocket-extensions'] || ''; });
    ws.on('open', () => {
      if (ws.extensions !== 'permessage-deflate') fail(`${name}: ws negotiated ${JSON.stringify(ws.extensions)}`);
      if (!ext.startsWith('permessage-deflate') || !ext.includes('server_no_context_takeover') ||
          !ext.includes('client_no_context_takeover')) {
        fail(`${name}: extensions ${JSON.stringify(ext)}`);
      }
      console.log(`${name}: negotiated ${ext}`);
      resolve(ws);
    });
    ws.on('error', reject);
  });
}

const sub = await open('subscriber');
const pub = await open('publisher');
sub.send(JSON.stringify({ id: 1, cmd: 'subscribe', channel }));
let r = await sub.next();
if (r.type !== 'reply' || r.id !== 1 || r.error) fail(`subscribe reply ${JSON.stringify(r)}`);
const small = { n: 1 };
let id = 2;
for (const data of [doc, small]) {
  pub.send(JSON.stringify({ id, cmd: 'publish', channel, data }));
  r = await pub.next();
  if (r.type !== 'reply' || r.id !== id || r.error) fail(`publish reply ${JSON.stringify(r)}`);
  id++;
}
for (const want of [doc, small]) {
  const m = await sub.next();
  if (m.type !== 'message' || m.channel !== channel) fail(`want a message push, got ${JSON.stringify(m).slice(0, 200)}`);
  if (!isDeepStrictEqual(m.data, want)) fail(`publication arrived altered: ${JSON.stringify(m.data).slice(0, 200)}`);
}
sub.close();
pub.close();
console.log(`ws: document and a small message published and received with permessage-deflate`);
