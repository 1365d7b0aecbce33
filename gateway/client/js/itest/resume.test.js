// Acceptance 3 of issue 13: the kill/restart scenario through Redis, with
// the JavaScript client in Node. Subscribers are on gateway A, the
// publisher on gateway B; A dies (SIGKILL, or SIGTERM: a 1001 drain) while
// publications go on, and comes back on the same address. Every subscriber
// must receive every publication exactly once, in order, and resume with
// recovered:true.

import { test } from "node:test";
import assert from "node:assert/strict";
import { Client } from "../src/index.js";
import { env, need, control, sleep, waitFor, percentile } from "./helpers.js";

const N = Number(env.WSGATE_SUBSCRIBERS ?? 50);
const M = Number(env.WSGATE_PUBLICATIONS ?? 300);
const fault = env.WSGATE_FAULT ?? "kill";

test(`${N} subscribers get all ${M} publications exactly once, in order, across a ${fault} and restart of their gateway`, async (t) => {
  const channel = `acc3:${fault}`;
  const backoff = { min: 100, max: 1000 };
  const subs = [];
  const pub = new Client(need("WSGATE_B_URL"), { encoding: "msgpack", dataFormat: "json" });
  t.after(() => {
    pub.close();
    for (const s of subs) s.client.close();
  });
  for (let i = 0; i < N; i++) {
    // Half the subscribers speak JSON, half MessagePack.
    const client = new Client(need("WSGATE_A_URL"), { encoding: i % 2 ? "json" : "msgpack", dataFormat: "json", backoff });
    const s = { client, got: [], offsets: [], lost: [], subscribed: [], stopped: null };
    s.sub = client.subscribe(channel);
    s.sub.on("message", (p) => {
      s.got.push(p.data.i);
      s.offsets.push(p.offset);
    });
    s.sub.on("lost", (e) => s.lost.push(e));
    s.sub.on("subscribed", (e) => s.subscribed.push({ ...e, at: Date.now() }));
    client.on("disconnected", (e) => (s.stopped = e));
    client.connect();
    subs.push(s);
  }
  await Promise.all(subs.map((s) => s.sub.ready()));
  pub.connect();

  const faultAt = Math.floor(M / 4);
  const restartAt = Math.floor(M / 2);
  let restartedAt = 0;
  const started = Date.now();
  for (let i = 1; i <= M; i++) {
    await pub.publish(channel, { i }, { idempotencyKey: `${channel}:${i}` });
    if (i === faultAt) await control(fault, "a");
    if (i === restartAt) {
      await control("restart", "a");
      restartedAt = Date.now();
    }
    await sleep(2);
  }
  t.diagnostic(`published ${M} in ${Date.now() - started} ms; gateway A down from publication ${faultAt} to ${restartAt}`);

  await waitFor(
    () => subs.every((s) => s.got.length >= M),
    30000,
    () => `received: min ${Math.min(...subs.map((s) => s.got.length))} of ${M}`,
  );
  await sleep(200); // anything extra (a duplicate) would arrive now
  const want = Array.from({ length: M }, (_, k) => k + 1);
  const resumeTimes = [];
  let dropped = 0;
  for (const [k, s] of subs.entries()) {
    assert.equal(s.stopped, null, `subscriber ${k} stopped: ${JSON.stringify(s.stopped)}`);
    assert.deepEqual(s.got, want, `subscriber ${k}: every publication once, in order`);
    for (let j = 1; j < s.offsets.length; j++) {
      assert.equal(s.offsets[j], s.offsets[j - 1] + 1, `subscriber ${k}: offsets consecutive`);
    }
    assert.deepEqual(s.lost, [], `subscriber ${k}: nothing reported lost`);
    assert.ok(s.subscribed.length >= 2, `subscriber ${k} resubscribed (${s.subscribed.length} subscribe replies)`);
    for (const e of s.subscribed.slice(1)) {
      assert.equal(e.resumed, true, `subscriber ${k}: resumed`);
      assert.equal(e.recovered, true, `subscriber ${k}: recovered (${e.reason})`);
    }
    resumeTimes.push(s.subscribed.at(-1).at - restartedAt);
    dropped += s.sub.duplicates;
  }
  t.diagnostic(
    `resumed after the restart: median ${percentile(resumeTimes, 50)} ms, p95 ${percentile(resumeTimes, 95)} ms, ` +
      `max ${Math.max(...resumeTimes)} ms (backoff window ${backoff.min}–${backoff.max} ms); duplicates dropped: ${dropped}`,
  );
});
