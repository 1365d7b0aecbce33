// Redis restarts empty under a running gateway: the channel's history is
// lost and offsets start again at 1. Subscribers stay connected and must be
// told — the gateway's epoch push, a "lost" event of kind "epoch" — and
// then receive the new epoch's publications, none dropped as "already
// seen" although their offsets are lower than before.

import { test } from "node:test";
import assert from "node:assert/strict";
import { Client } from "../src/index.js";
import { env, need, control, waitFor } from "./helpers.js";

const N = Number(env.WSGATE_SUBSCRIBERS ?? 20);

test(`${N} subscribers are told when Redis loses the channel's history, and get the new epoch`, async (t) => {
  const url = need("WSGATE_A_URL");
  const channel = "acc3:redis-epoch";
  const pub = new Client(url, { encoding: "msgpack", dataFormat: "json", commandTimeout: 20000 });
  const subs = [];
  t.after(() => {
    pub.close();
    for (const s of subs) s.client.close();
  });
  for (let i = 0; i < N; i++) {
    const client = new Client(url, { encoding: i % 2 ? "json" : "msgpack", dataFormat: "json" });
    const s = { client, got: [], lost: [], subscribed: 0 };
    s.sub = client.subscribe(channel);
    s.sub.on("message", (p) => s.got.push({ data: p.data, offset: p.offset, epoch: p.epoch }));
    s.sub.on("lost", (e) => s.lost.push(e));
    s.sub.on("subscribed", () => s.subscribed++);
    client.connect();
    subs.push(s);
  }
  await Promise.all(subs.map((s) => s.sub.ready()));
  pub.connect();
  for (let i = 1; i <= 5; i++) await pub.publish(channel, `before-${i}`);
  await waitFor(() => subs.every((s) => s.got.length === 5), 10000, () => "first batch");
  const oldEpoch = subs[0].got[0].epoch;
  assert.notEqual(oldEpoch, "", "message pushes carry their epoch");

  await control("restart", "redis"); // killed, then started again with nothing
  // Publishing may fail while the gateway reconnects to Redis; the key
  // makes the client's retries safe.
  for (let i = 1; i <= 5; i++) await pub.publish(channel, `after-${i}`, { idempotencyKey: `after-${i}` });
  await waitFor(() => subs.every((s) => s.got.length === 10), 15000, () => `second batch: ${subs.map((s) => s.got.length)}`);

  for (const [k, s] of subs.entries()) {
    assert.equal(s.subscribed, 1, `subscriber ${k} stayed connected`);
    assert.deepEqual(s.got.map((m) => m.data), [1, 2, 3, 4, 5].map((i) => `before-${i}`).concat([1, 2, 3, 4, 5].map((i) => `after-${i}`)));
    const newEpoch = s.got[5].epoch;
    assert.notEqual(newEpoch, oldEpoch);
    assert.deepEqual(s.got.slice(5).map((m) => [m.offset, m.epoch]), [1, 2, 3, 4, 5].map((o) => [o, newEpoch]));
    assert.deepEqual(s.lost, [{ kind: "epoch", channel, epoch: newEpoch, previous: oldEpoch, offset: 5 }], `subscriber ${k}`);
  }
});
