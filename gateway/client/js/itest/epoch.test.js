// With the embedded (memory) broker a gateway restart loses the history:
// the epoch changes. Every subscriber must be told explicitly — a "lost"
// event of kind "unrecovered" — and then receive the new epoch's
// publications.

import { test } from "node:test";
import assert from "node:assert/strict";
import { Client } from "../src/index.js";
import { env, need, control, waitFor } from "./helpers.js";

const N = Number(env.WSGATE_SUBSCRIBERS ?? 20);

test(`${N} subscribers are told the history was lost when the memory broker's gateway restarts`, async (t) => {
  const url = need("WSGATE_A_URL");
  const channel = "acc3:epoch";
  const backoff = { min: 100, max: 1000 };
  const pub = new Client(url, { encoding: "json", backoff });
  const subs = [];
  t.after(() => {
    pub.close();
    for (const s of subs) s.client.close();
  });
  for (let i = 0; i < N; i++) {
    const client = new Client(url, { encoding: i % 2 ? "json" : "msgpack", dataFormat: "json", backoff });
    const s = { client, got: [], lost: [], subscribed: 0 };
    s.sub = client.subscribe(channel);
    s.sub.on("message", (p) => s.got.push([p.data, p.epoch]));
    s.sub.on("lost", (e) => s.lost.push(e));
    s.sub.on("subscribed", () => s.subscribed++);
    client.connect();
    subs.push(s);
  }
  await Promise.all(subs.map((s) => s.sub.ready()));
  pub.connect();
  for (let i = 1; i <= 5; i++) await pub.publish(channel, `before-${i}`);
  await waitFor(() => subs.every((s) => s.got.length === 5), 10000, () => "first batch");
  const oldEpoch = subs[0].sub.position.epoch;

  await control("kill", "a");
  await control("restart", "a");
  await waitFor(() => subs.every((s) => s.subscribed === 2), 20000, () => `resubscribed: ${subs.filter((s) => s.subscribed === 2).length}`);
  for (let i = 1; i <= 5; i++) await pub.publish(channel, `after-${i}`);
  await waitFor(() => subs.every((s) => s.got.length === 10), 10000, () => "second batch");

  for (const [k, s] of subs.entries()) {
    assert.equal(s.lost.length, 1, `subscriber ${k}: one lost event`);
    assert.equal(s.lost[0].kind, "unrecovered");
    assert.equal(s.lost[0].reason, "epoch changed");
    assert.equal(s.lost[0].previous, oldEpoch);
    const newEpoch = s.sub.position.epoch;
    assert.notEqual(newEpoch, oldEpoch);
    assert.deepEqual(s.got.map(([d]) => d), [1, 2, 3, 4, 5].map((i) => `before-${i}`).concat([1, 2, 3, 4, 5].map((i) => `after-${i}`)));
    assert.deepEqual(s.sub.position, { offset: 5, epoch: newEpoch });
  }
});
