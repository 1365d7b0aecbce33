// The wire encodings against the examples of codec/README.md.

import { test } from "node:test";
import assert from "node:assert/strict";
import * as msgpack from "@msgpack/msgpack";
import { loadCodec, jsonCodec, outData, fromBase64 } from "../src/codec.js";

const hex = (s) => Uint8Array.from(s.trim().split(/\s+/), (b) => parseInt(b, 16));

test("msgpack: the spec's message push decodes to its bytes", async () => {
  const codec = await loadCodec("msgpack"); // the dynamic import
  assert.equal(codec.protocol, "wsgate.v1.msgpack");
  const frame = codec.decode(hex(`85 a4 74 79 70 65 a7 6d 65 73 73 61 67 65 a7 63 68 61 6e 6e 65 6c aa 63
68 61 74 3a 72 6f 6f 6d 31 a6 6f 66 66 73 65 74 2a a5 65 70 6f 63 68 a3
78 71 33 a4 64 61 74 61 c4 02 68 69`).buffer);
  assert.deepEqual({ ...frame, data: undefined }, { type: "message", channel: "chat:room1", offset: 42, epoch: "xq3", data: undefined });
  assert.deepEqual([...codec.inData(frame, "raw")], [0x68, 0x69]);
  // A JSON publisher's value arrives as JSON text: dataFormat json parses it.
  assert.deepEqual(codec.inData({ data: new TextEncoder().encode('{"text":"hi"}') }, "json"), { text: "hi" });
  assert.deepEqual([...codec.inData({ data: hex("01 02") }, "json")], [1, 2], "not JSON: stays bytes");
});

test("msgpack: a publish command has data as bin and integer fields as ints", async () => {
  const codec = await loadCodec("msgpack", msgpack);
  const bytes = codec.encode({ cmd: "publish", channel: "chat:room1", data: outData("msgpack", "hi", "raw"), id: 2 });
  const back = msgpack.decode(bytes);
  assert.ok(back.data instanceof Uint8Array, "bin");
  assert.equal(back.id, 2);
  assert.ok(Buffer.from(bytes).includes(Buffer.from([0xc4, 0x02, 0x68, 0x69])), "c4 02 68 69 as in the spec");
  assert.ok(!Buffer.from(bytes).includes(Buffer.from([0xcb])), "no float64");
  const sub = codec.encode({ cmd: "subscribe", channel: "c", offset: 2 ** 40, epoch: "e", id: 1 });
  assert.equal(msgpack.decode(sub).offset, 2 ** 40);
});

test("json: data or b64, and bytes refused on the way out", () => {
  const f = jsonCodec.decode('{"type":"message","channel":"c","offset":1,"b64":"AAEC"}');
  assert.deepEqual([...jsonCodec.inData(f, "raw")], [0, 1, 2]);
  assert.deepEqual(jsonCodec.inData({ data: { a: 1 } }, "raw"), { a: 1 });
  assert.throws(() => outData("json", new Uint8Array(1), "raw"), TypeError);
  assert.throws(() => outData("json", undefined, "raw"), TypeError);
  assert.equal(outData("json", null, "raw"), null);
  assert.throws(() => jsonCodec.decode(new ArrayBuffer(2)), /binary frame/);
  assert.deepEqual(new TextDecoder().decode(outData("msgpack", { a: 1 }, "json")), '{"a":1}');
  assert.throws(() => outData("msgpack", { a: 1 }, "raw"), TypeError);
  assert.deepEqual([...fromBase64("aGk=")], [104, 105]);
});
