// The client's logic against a scripted fake socket: resume, dedupe, the
// "lost" notices, close-code policy, token handling, command settlement.

import { test, afterEach } from "node:test";
import assert from "node:assert/strict";
import { Client, ErrorCode, WsgateError, ConnectionError } from "../src/index.js";
import { fakeWebSocket, waitFor, record } from "./fake.js";
import { encode as mpEncode, decode as mpDecode } from "@msgpack/msgpack";

const fastBackoff = { min: 5, max: 20, healthyAfter: 60000, throttled: 30 };

// Every client a test made is closed after it, even when an assertion
// failed midway (a live client's timers would keep the runner waiting).
const made = [];
afterEach(() => {
  for (const c of made.splice(0)) c.close();
});

function newClient(fake, opts = {}) {
  return track(new Client("ws://gw.test/ws", { encoding: "json", WebSocket: fake.WebSocket, backoff: fastBackoff, pingInterval: 0, ...opts }));
}

// openClient connects a client (newClient's options) to a fake socket
// and opens it.
async function openClient(opts = {}) {
  const fake = fakeWebSocket();
  const c = newClient(fake, opts);
  c.connect();
  const s = await fake.socket(1);
  s.open();
  return { fake, c, s };
}

// subscribeC makes a client subscribed to "c" (recording its messages)
// and connects it to a fake socket.
function subscribeC() {
  const fake = fakeWebSocket();
  const c = newClient(fake);
  const sub = c.subscribe("c");
  const got = record(sub, "message");
  c.connect();
  return { fake, c, sub, got };
}

function track(c) {
  made.push(c);
  return c;
}

/** Connects, opens the socket, answers the subscribe of channel with reply. */
async function subscribed(client, fake, n, channel, reply) {
  const s = await fake.socket(n);
  s.open();
  await waitFor(() => s.lastCmd("subscribe"), "subscribe");
  const cmd = s.lastCmd("subscribe");
  assert.equal(cmd.channel, channel);
  s.push({ type: "reply", id: cmd.id, ...reply });
  return { s, cmd };
}

const msg = (offset, epoch, data = offset) => ({ type: "message", channel: "c", offset, epoch, data });

test("dedupe: offsets not above the last one in the same epoch are dropped", async () => {
  const { fake, c, sub, got } = subscribeC();
  const { s } = await subscribed(c, fake, 1, "c", { offset: 10, epoch: "e1" });
  for (const o of [11, 12, 12, 11, 10, 13]) s.push(msg(o, "e1"));
  assert.deepEqual(got.map((m) => m.offset), [11, 12, 13]);
  assert.equal(sub.duplicates, 3);
  assert.deepEqual(sub.position, { offset: 13, epoch: "e1" });
  c.close();
});

test("resume: after a reconnect the subscribe carries the last position; the seam's repeats are dropped", async () => {
  const fake = fakeWebSocket();
  const c = newClient(fake);
  const sub = c.subscribe("c");
  const got = record(sub, "message");
  const subscribedEv = record(sub, "subscribed");
  const lost = record(sub, "lost");
  c.connect();
  const { s } = await subscribed(c, fake, 1, "c", { offset: 4, epoch: "e1" });
  s.push(msg(5, "e1"));
  s.push(msg(6, "e1"));
  s.serverClose(1001, "going away");
  assert.equal(sub.state, "subscribing");
  const { cmd } = await subscribed(c, fake, 2, "c", { offset: 9, epoch: "e1", recovered: true, reason: "" });
  assert.equal(cmd.offset, 6);
  assert.equal(cmd.epoch, "e1");
  const s2 = fake.last();
  for (const o of [6, 7, 8, 9, 10]) s2.push(msg(o, "e1"));
  assert.deepEqual(got.map((m) => m.offset), [5, 6, 7, 8, 9, 10]);
  assert.equal(subscribedEv.length, 2);
  assert.equal(subscribedEv[1].resumed, true);
  assert.equal(subscribedEv[1].recovered, true);
  assert.equal(lost.length, 0);
  c.close();
});

test("recovered:false is an explicit lost event and the position jumps to the top", async () => {
  const fake = fakeWebSocket();
  const c = newClient(fake);
  const sub = c.subscribe("c");
  const lost = record(sub, "lost");
  const got = record(sub, "message");
  c.connect();
  const { s } = await subscribed(c, fake, 1, "c", { offset: 3, epoch: "e1" });
  s.push(msg(4, "e1"));
  s.fail(); // killed: close 1006
  await subscribed(c, fake, 2, "c", { offset: 2, epoch: "e2", recovered: false, reason: "epoch changed" });
  assert.equal(lost.length, 1);
  assert.deepEqual(lost[0], { kind: "unrecovered", channel: "c", reason: "epoch changed", epoch: "e2", previous: "e1", offset: 4 });
  assert.deepEqual(sub.position, { offset: 2, epoch: "e2" });
  fake.last().push(msg(3, "e2"));
  assert.deepEqual(got.map((m) => [m.offset, m.epoch]), [[4, "e1"], [3, "e2"]]);
  c.close();
});

test("a resume answered without 'recovered' (recovery off) counts as not recovered", async () => {
  const fake = fakeWebSocket();
  const c = newClient(fake);
  const sub = c.subscribe("c", { offset: 7, epoch: "e1" });
  const lost = record(sub, "lost");
  c.connect();
  const { cmd } = await subscribed(c, fake, 1, "c", { offset: 9, epoch: "e1" });
  assert.equal(cmd.offset, 7); // the start position given to subscribe
  assert.equal(lost.length, 1);
  assert.equal(lost[0].kind, "unrecovered");
  assert.match(lost[0].reason, /recovery is off/);
  c.close();
});

test("epoch push and a message of another epoch: lost events, then the new epoch is delivered", async () => {
  const fake = fakeWebSocket();
  const c = newClient(fake);
  const sub = c.subscribe("c");
  const lost = record(sub, "lost");
  const got = record(sub, "message");
  c.connect();
  const { s } = await subscribed(c, fake, 1, "c", { offset: 20, epoch: "e1" });
  s.push(msg(21, "e1"));
  s.push({ type: "epoch", channel: "c", epoch: "e2", previous: "e1", offset: 21 });
  s.push({ type: "epoch", channel: "c", epoch: "e2", previous: "e1", offset: 21 }); // repeated: ignored
  s.push(msg(1, "e2"));
  s.push(msg(1, "e2"));
  s.push(msg(5, "e3")); // no push came first this time
  assert.deepEqual(got.map((m) => [m.offset, m.epoch]), [[21, "e1"], [1, "e2"], [5, "e3"]]);
  assert.deepEqual(lost, [
    { kind: "epoch", channel: "c", epoch: "e2", previous: "e1", offset: 21 },
    { kind: "epoch", channel: "c", epoch: "e3", previous: "e2", offset: 1 },
  ]);
  c.close();
});

test("gap push: lost event and the named offsets count as seen", async () => {
  const fake = fakeWebSocket();
  const c = newClient(fake);
  const sub = c.subscribe("c");
  const lost = record(sub, "lost");
  const got = record(sub, "message");
  c.connect();
  const { s } = await subscribed(c, fake, 1, "c", { offset: 0, epoch: "e1" });
  s.push(msg(1, "e1"));
  s.push({ type: "gap", channel: "c", from: 2, to: 4 });
  s.push(msg(3, "e1")); // a late repair of a declared gap: dropped
  s.push(msg(5, "e1"));
  // Gaps announced to every subscriber: only what this one has not had.
  s.push({ type: "gap", channel: "c", from: 4, to: 5 }); // all had: nothing
  s.push({ type: "gap", channel: "c", from: 5, to: 6 }); // 5 delivered: 6 lost
  assert.deepEqual(got.map((m) => m.offset), [1, 5]);
  assert.deepEqual(lost, [
    { kind: "gap", channel: "c", from: 2, to: 4, epoch: "e1" },
    { kind: "gap", channel: "c", from: 6, to: 6, epoch: "e1" },
  ]);
  c.close();
});

test("messages of a channel without history (offset 0) are all delivered", async () => {
  const fake = fakeWebSocket();
  const c = newClient(fake);
  const sub = c.subscribe("c");
  const got = record(sub, "message");
  const lost = record(sub, "lost");
  c.connect();
  const { s } = await subscribed(c, fake, 1, "c", {});
  s.push({ type: "message", channel: "c", offset: 0, data: "a" });
  s.push({ type: "message", channel: "c", offset: 0, data: "a" });
  assert.equal(got.length, 2);
  s.serverClose(1001);
  const { cmd } = await subscribed(c, fake, 2, "c", {});
  assert.equal(cmd.offset, undefined, "no position to resume from");
  assert.equal(lost.length, 1, "a resubscribe without history says so");
  c.close();
});

test("close codes that forbid reconnecting stop the client with the code", async () => {
  for (const code of [1002, 1003, 1007, 1008, 1009, 4500, 4501, 4503, 4505, 4999]) {
    const fake = fakeWebSocket();
    const c = newClient(fake);
    const stopped = record(c, "disconnected");
    c.connect();
    (await fake.socket(1)).open();
    fake.last().serverClose(code, "nope");
    assert.equal(c.state, "disconnected", `code ${code}`);
    assert.equal(stopped.length, 1);
    assert.ok(stopped[0].error instanceof ConnectionError);
    assert.equal(stopped[0].error.code, code);
    await new Promise((r) => setTimeout(r, 40)); // longer than any backoff here
    assert.equal(fake.sockets.length, 1, `code ${code}: no reconnect`);
    await assert.rejects(c.publish("c", 1), (e) => e instanceof WsgateError && e.code === ErrorCode.Closed);
  }
});

test("close codes that allow reconnecting reconnect; 4008/4029 wait longer", async () => {
  for (const code of [1000, 1001, 1005, 1006, 1011, 1012, 3000, 4000, 4008, 4029, 4499]) {
    const fake = fakeWebSocket();
    const c = newClient(fake);
    const connecting = record(c, "connecting");
    c.connect();
    (await fake.socket(1)).open();
    fake.last().serverClose(code);
    assert.equal(c.state, "connecting", `code ${code}`);
    const delay = connecting.at(-1).delay;
    if (code === 4008 || code === 4029) assert.ok(delay >= fastBackoff.throttled, `code ${code}: delay ${delay}`);
    else assert.ok(delay < fastBackoff.min, `code ${code}: delay ${delay}`);
    (await fake.socket(2)).open();
    assert.equal(c.state, "connected");
    c.close();
  }
});

test("4004 asks the token source again (reason expired); a fixed token stops instead of looping", async () => {
  const fake = fakeWebSocket();
  const reasons = [];
  let n = 0;
  const c = newClient(fake, {
    token: async ({ reason }) => {
      reasons.push(reason);
      return `tok${++n}`;
    },
  });
  c.connect();
  const s1 = await fake.socket(1);
  assert.match(s1.url, /[?&]token=tok1$/);
  s1.open();
  s1.serverClose(4004, "token expired");
  const s2 = await fake.socket(2);
  assert.match(s2.url, /token=tok2/);
  s2.open();
  s2.serverClose(1001);
  await fake.socket(3);
  assert.deepEqual(reasons, ["connect", "expired", "reconnect"]);
  c.close();

  const fake2 = fakeWebSocket();
  const fixed = newClient(fake2, { token: "static" });
  const stopped = record(fixed, "disconnected");
  fixed.connect();
  (await fake2.socket(1)).open();
  fake2.last().serverClose(4004);
  assert.equal(fixed.state, "disconnected");
  assert.match(stopped[0].error.message, /fixed string/);
});

test("refresh push: the token source is asked and a refresh command answers it", async () => {
  const fake = fakeWebSocket();
  const reasons = [];
  const c = newClient(fake, { token: ({ reason }) => (reasons.push(reason), `t-${reason}`) });
  const refreshed = record(c, "refreshed");
  c.connect();
  const s = await fake.socket(1);
  s.open();
  s.push({ type: "refresh" });
  await waitFor(() => s.lastCmd("refresh"), "refresh command");
  const cmd = s.lastCmd("refresh");
  assert.equal(cmd.token, "t-refresh");
  s.push({ type: "reply", id: cmd.id });
  await waitFor(() => refreshed.length === 1, "refreshed event");
  assert.equal(c.state, "connected", "no reconnect");
  assert.equal(fake.sockets.length, 1);
  c.close();
});

test("a failing token source ends in a clear error, not a loop", async () => {
  for (const when of ["connect", "refresh"]) {
    const fake = fakeWebSocket();
    let calls = 0;
    const c = newClient(fake, {
      token: async ({ reason }) => {
        calls++;
        if (reason === when) throw new Error("auth backend down");
        return "t";
      },
    });
    const stopped = record(c, "disconnected");
    c.connect();
    if (when === "refresh") {
      const s = await fake.socket(1);
      s.open();
      s.push({ type: "refresh" });
    }
    await waitFor(() => stopped.length === 1, "stop");
    assert.match(stopped[0].error.message, /token source failed: auth backend down/);
    await new Promise((r) => setTimeout(r, 40));
    assert.equal(calls, when === "connect" ? 1 : 2, "asked once, no loop");
    assert.equal(fake.sockets.length, when === "connect" ? 0 : 1);
  }
});

test("a refused handshake (ws package): 401/403 stop, 429/503 honour Retry-After", async () => {
  for (const [status, headers, stops, minDelay] of [
    [401, {}, true, 0],
    [403, {}, true, 0],
    [503, { "retry-after": "1" }, false, 1000],
    [429, {}, false, fastBackoff.throttled],
    [502, {}, false, 0],
  ]) {
    const fake = fakeWebSocket({ wsLike: true });
    const c = newClient(fake);
    const stopped = record(c, "disconnected");
    const connecting = record(c, "connecting");
    c.connect();
    (await fake.socket(1)).refuse(status, headers);
    await waitFor(() => stopped.length + connecting.length > 1, `outcome of ${status}`);
    if (stops) {
      assert.equal(c.state, "disconnected");
      assert.equal(stopped[0].error.status, status);
    } else {
      assert.equal(c.state, "connecting");
      assert.equal(connecting.at(-1).status, status);
      assert.ok(connecting.at(-1).delay >= minDelay, `${status}: delay ${connecting.at(-1).delay}`);
    }
    assert.ok(fake.sockets[0].terminated);
    c.close();
  }
});

test("a publish lost in flight: 113 without a key; sent again with its key after the reconnect", async () => {
  const fake = fakeWebSocket();
  const c = newClient(fake);
  c.connect();
  const s1 = await fake.socket(1);
  s1.open();
  const plain = c.publish("c", { n: 1 });
  const keyed = c.publish("c", { n: 2 }, { idempotencyKey: "k2" });
  const read = c.history("c", { limit: 5 });
  await waitFor(() => s1.frames().length === 3, "three commands");
  s1.serverClose(1012);
  await assert.rejects(plain, (e) => e.code === ErrorCode.OutcomeUnknown && /may have been published/.test(e.message));
  const s2 = await fake.socket(2);
  s2.open();
  await waitFor(() => s2.frames().length === 2, "resent commands");
  const [p, h] = s2.frames();
  assert.equal(p.cmd, "publish");
  assert.equal(p.idempotency_key, "k2");
  assert.deepEqual(p.data, { n: 2 });
  assert.equal(h.cmd, "history");
  s2.push({ type: "reply", id: p.id, offset: 8, epoch: "e", replayed: true });
  s2.push({ type: "reply", id: h.id, epoch: "e", publications: [{ offset: 8, data: { n: 2 } }, { offset: 9, b64: "aGk=" }] });
  assert.deepEqual(await keyed, { offset: 8, epoch: "e", replayed: true });
  const hist = await read;
  assert.deepEqual(hist.publications[0], { offset: 8, data: { n: 2 } });
  assert.deepEqual([...hist.publications[1].data], [104, 105]);
  c.close();
});

test("an idempotent publish retries 113 by itself; other errors reject with their code", async () => {
  const { fake, c, s } = await openClient();
  const keyed = c.publish("c", 1, { idempotencyKey: "k" });
  await waitFor(() => s.frames().length === 1, "publish");
  s.push({ type: "reply", id: s.frames()[0].id, error: { code: 113, message: "outcome unknown" } });
  await waitFor(() => s.frames().length === 2, "retry");
  const retry = s.frames()[1];
  assert.equal(retry.idempotency_key, "k");
  s.push({ type: "reply", id: retry.id, offset: 3, epoch: "e" });
  assert.equal((await keyed).offset, 3);

  const bad = c.publish("c", 2, { idempotencyKey: "k" });
  await waitFor(() => s.frames().length === 3, "third publish");
  s.push({ type: "reply", id: s.frames()[2].id, error: { code: 114, message: "idempotency key reused" } });
  await assert.rejects(bad, (e) => e.code === ErrorCode.IdempotencyKeyReused);
  c.close();
});

test("commands wait for the connection, behind the subscribes; a command times out if it never goes", async () => {
  const fake = fakeWebSocket();
  const c = newClient(fake, { commandTimeout: 60 });
  c.subscribe("c");
  const pub = c.publish("c", "x", { timeout: 2000 });
  const never = c.presence("c");
  c.connect();
  const s = await fake.socket(1);
  await assert.rejects(never, (e) => e.code === ErrorCode.Timeout && /not connected in time/.test(e.message));
  s.open();
  await waitFor(() => s.frames().length === 2, "frames");
  assert.deepEqual(s.frames().map((f) => f.cmd), ["subscribe", "publish"]);
  s.push({ type: "reply", id: s.frames()[1].id, offset: 1, epoch: "e" });
  assert.equal((await pub).offset, 1);
  c.close();
});

test("unsubscribe: nothing of the channel is delivered after it; the server is told", async () => {
  const { fake, c, sub, got } = subscribeC();
  const { s } = await subscribed(c, fake, 1, "c", { offset: 0, epoch: "e" });
  s.push(msg(1, "e"));
  const done = sub.unsubscribe();
  s.push(msg(2, "e"));
  const u = s.lastCmd("unsubscribe");
  assert.equal(u.channel, "c");
  s.push({ type: "reply", id: u.id });
  await done;
  assert.deepEqual(got.map((m) => m.offset), [1]);
  assert.equal(sub.state, "unsubscribed");
  assert.equal(c.getSubscription("c"), undefined);
  const again = c.subscribe("c"); // allowed again
  assert.equal(again.state, "subscribing");
  c.close();
});

test("a refused subscribe fails the subscription; 107 and 111 are retried", async () => {
  const fake = fakeWebSocket();
  const c = newClient(fake);
  const denied = c.subscribe("secret");
  const flaky = c.subscribe("flaky");
  c.connect();
  const s = await fake.socket(1);
  s.open();
  await waitFor(() => s.frames().length === 2, "subscribes");
  const [a, b] = s.frames();
  s.push({ type: "reply", id: a.id, error: { code: 108, message: "permission denied" } });
  s.push({ type: "reply", id: b.id, error: { code: 111, message: "internal" } });
  await assert.rejects(denied.ready(), (e) => e.code === ErrorCode.PermissionDenied);
  assert.equal(denied.state, "failed");
  await waitFor(() => s.frames().length === 3, "retried subscribe");
  const retry = s.frames()[2];
  assert.equal(retry.channel, "flaky");
  s.push({ type: "reply", id: retry.id, offset: 0, epoch: "e" });
  assert.equal((await flaky.ready()).epoch, "e");
  c.close();
});

test("liveness: a silent connection is pinged, and dropped when the ping goes unanswered", async () => {
  const fake = fakeWebSocket();
  const c = newClient(fake, { pingInterval: 30, pongTimeout: 30 });
  const connecting = record(c, "connecting");
  c.connect();
  const s = await fake.socket(1);
  s.open();
  await waitFor(() => s.lastCmd("ping"), "first ping");
  s.push({ type: "reply", id: s.lastCmd("ping").id }); // answered: stays up
  await waitFor(() => s.frames().filter((f) => f.cmd === "ping").length === 2, "second ping");
  await fake.socket(2); // not answered: a new connection
  assert.match(connecting.at(-1).reason, /after a ping/);
  assert.deepEqual(s.closedWith, { code: 1000, reason: "connection lost" });
  c.close();
});

test("the handshake is abandoned after connectTimeout", async () => {
  const fake = fakeWebSocket();
  const c = newClient(fake, { connectTimeout: 20 });
  c.connect();
  await fake.socket(2);
  assert.notEqual(fake.sockets[0].closedWith, null);
  c.close();
});

test("close() ends everything: state, pending commands, no reconnect", async () => {
  const fake = fakeWebSocket();
  const c = newClient(fake);
  const states = record(c, "state");
  c.connect();
  const s = await fake.socket(1);
  s.open();
  const pending = c.ping();
  c.close();
  await assert.rejects(pending, (e) => e.code === ErrorCode.Closed);
  assert.deepEqual(states.map((x) => x.state), ["connecting", "connected", "disconnected"]);
  assert.deepEqual(s.closedWith, { code: 1000, reason: "closed by the client" });
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(fake.sockets.length, 1);
});

test("the healthy period resets the backoff", async () => {
  const fake = fakeWebSocket();
  const c = newClient(fake, { backoff: { ...fastBackoff, min: 1, max: 1000, healthyAfter: 40 } });
  const connecting = record(c, "connecting");
  c.connect();
  for (let i = 1; i <= 4; i++) (await fake.socket(i)).fail();
  assert.deepEqual(connecting.slice(1).map((e) => e.attempt), [1, 2, 3, 4]);
  const s5 = await fake.socket(5);
  s5.open();
  s5.serverClose(1001); // too soon: keeps counting
  const s6 = await fake.socket(6);
  s6.open();
  await new Promise((r) => setTimeout(r, 50));
  s6.serverClose(1001); // healthy for 50 ms > 40: starts again
  assert.deepEqual(connecting.slice(5).map((e) => e.attempt), [5, 1]);
  c.close();
});

test("bad arguments throw at the call", async () => {
  const fake = fakeWebSocket();
  assert.throws(() => new Client("ws://x", { encoding: "xml" }), TypeError);
  const c = newClient(fake);
  assert.throws(() => c.subscribe(""), TypeError);
  c.subscribe("c");
  assert.throws(() => c.subscribe("c"), /already subscribed/);
  assert.throws(() => c.subscribe("d", { offset: 3 }), /both offset and epoch/);
  await assert.rejects(c.publish("c", new Uint8Array(2)), TypeError); // bytes over JSON
  c.close();
});

test("an unsubscribe push from the server ends the subscription; it is not resubscribed on reconnect", async () => {
  const fake = fakeWebSocket();
  const c = newClient(fake);
  const sub = c.subscribe("c");
  const got = record(sub, "message");
  const ended = record(sub, "unsubscribed");
  c.connect();
  const { s } = await subscribed(c, fake, 1, "c", { offset: 0, epoch: "e1" });
  s.push(msg(1, "e1"));
  s.push({ type: "unsubscribe", channel: "c" });
  s.push(msg(2, "e1"));
  assert.deepEqual(got.map((m) => m.offset), [1]);
  assert.equal(sub.state, "unsubscribed");
  assert.equal(ended[0].reason, "unsubscribed by the server");
  s.serverClose(1001, "going away");
  const s2 = await fake.socket(2);
  s2.open();
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(s2.lastCmd("subscribe"), undefined);
  c.close();
});

/** Runs fn with Math.random returning v. */
async function withMathRandom(v, fn) {
  const orig = Math.random;
  Math.random = () => v;
  try {
    return await fn();
  } finally {
    Math.random = orig;
  }
}

const outcomeUnknown = (e) => e instanceof WsgateError && e.code === ErrorCode.OutcomeUnknown && /may have been published/.test(e.message);

test("a publish whose outcome became unknown in any attempt ends as 113, never Timeout or Closed", async (t) => {
  await t.test("(a) keyed, its connection lost, no reconnect before the deadline", async () => {
    const { fake, c, s } = await openClient();
    const p = c.publish("c", 1, { idempotencyKey: "k", timeout: 60 });
    await waitFor(() => s.frames().length === 1, "publish");
    s.fail(); // the next socket never opens
    await assert.rejects(p, outcomeUnknown);
  });

  await t.test("(b) keyed, answered 113, the deadline inside the retry pause", async () => {
    const { fake, c, s } = await openClient({ random: () => 0.99 });
    const p = c.publish("c", 1, { idempotencyKey: "k", timeout: 60 }); // the pause is ~200 ms
    await waitFor(() => s.frames().length === 1, "publish");
    s.push({ type: "reply", id: s.frames()[0].id, error: { code: 113, message: "outcome unknown" } });
    await assert.rejects(p, outcomeUnknown);
    assert.equal(s.frames().length, 1, "not retried before the deadline");
  });

  await t.test("(c) keyed, in flight when the client stops for good (4503, close())", async () => {
    for (const stop of [(s) => s.serverClose(4503, "forbidden"), (s, c) => c.close()]) {
      const { fake, c, s } = await openClient();
      const p = c.publish("c", 1, { idempotencyKey: "k" });
      await waitFor(() => s.frames().length === 1, "publish");
      stop(s, c);
      await assert.rejects(p, outcomeUnknown);
    }
  });

  await t.test("(d) without a key, in flight at close()", async () => {
    const { fake, c, s } = await openClient();
    const p = c.publish("c", 1);
    await waitFor(() => s.frames().length === 1, "publish");
    c.close();
    await assert.rejects(p, outcomeUnknown);
  });

  await t.test("every attempt answered: not published, so not 113", async () => {
    const fake = fakeWebSocket();
    const c = newClient(fake, { random: () => 0 }); // no pauses, no backoff
    c.connect();
    const s = await fake.socket(1);
    s.open();
    const denied = c.publish("c", 1);
    const waiting = c.publish("c", 2, { idempotencyKey: "k", timeout: 60 });
    await waitFor(() => s.frames().length === 2, "publishes");
    s.push({ type: "reply", id: s.frames()[0].id, error: { code: 108, message: "permission denied" } });
    s.push({ type: "reply", id: s.frames()[1].id, error: { code: 107, message: "slow down" } });
    s.fail(); // the retry after 107 waits for a connection that never opens
    await assert.rejects(denied, (e) => e.code === ErrorCode.PermissionDenied);
    await assert.rejects(waiting, (e) => e.code === ErrorCode.Timeout && /not connected in time/.test(e.message));
  });

  await t.test("never sent: Timeout and Closed as before", async () => {
    const fake = fakeWebSocket();
    const c = newClient(fake);
    const late = c.publish("c", 1, { idempotencyKey: "k1", timeout: 20 });
    const closed = c.publish("c", 2, { idempotencyKey: "k2" });
    await assert.rejects(late, (e) => e.code === ErrorCode.Timeout && /not connected in time/.test(e.message));
    c.close();
    await assert.rejects(closed, (e) => e.code === ErrorCode.Closed);
  });
});

test("pushes before a subscribe's reply belong to the channel's previous subscription: ignored", async (t) => {
  /** Subscribes A, answers it, unsubscribes it and subscribes B; returns before B's reply. */
  async function resubscribed(opts) {
    const fake = fakeWebSocket();
    const c = newClient(fake);
    const a = c.subscribe("c");
    c.connect();
    const { s } = await subscribed(c, fake, 1, "c", { offset: 7, epoch: "e1" });
    s.push(msg(8, "e1"));
    a.unsubscribe();
    const b = c.subscribe("c", opts);
    await waitFor(() => s.frames().filter((f) => f.cmd === "subscribe").length === 2, "B's subscribe");
    return { c, s, b, unsub: s.lastCmd("unsubscribe"), sub: s.lastCmd("subscribe") };
  }

  await t.test("A's trailing message and gap do not move B's position past its replay", async () => {
    const { s, b, unsub, sub } = await resubscribed({ offset: 3, epoch: "e1" });
    const events = [];
    b.on("message", (m) => events.push(m.offset));
    b.on("subscribed", () => events.push("subscribed"));
    const lost = record(b, "lost");
    s.push(msg(9, "e1")); // queued for A before the server read its unsubscribe
    s.push({ type: "gap", channel: "c", from: 10, to: 11 });
    s.push({ type: "reply", id: unsub.id });
    s.push({ type: "reply", id: sub.id, offset: 11, epoch: "e1", recovered: true });
    for (const o of [4, 5, 6, 7, 8, 9]) s.push(msg(o, "e1"));
    s.push({ type: "gap", channel: "c", from: 10, to: 11 }); // B's own
    assert.deepEqual(events, ["subscribed", 4, 5, 6, 7, 8, 9]);
    assert.deepEqual(lost, [{ kind: "gap", channel: "c", from: 10, to: 11, epoch: "e1" }]);
    assert.equal(b.duplicates, 0);
  });

  await t.test("an unsubscribe push about A does not end B", async () => {
    const { c, s, b, unsub, sub } = await resubscribed();
    const ended = record(b, "unsubscribed");
    const got = record(b, "message");
    s.push({ type: "unsubscribe", channel: "c" }); // a backend ended A meanwhile
    s.push({ type: "reply", id: unsub.id, error: { code: 105, message: "not subscribed" } });
    s.push({ type: "reply", id: sub.id, offset: 8, epoch: "e1" });
    s.push(msg(9, "e1"));
    assert.equal(b.state, "subscribed");
    assert.equal(ended.length, 0);
    assert.equal(c.getSubscription("c"), b);
    assert.deepEqual(got.map((m) => m.offset), [9]);
  });
});

test("a failing token of an unsubscribed subscription leaves the channel's new subscription alone", async () => {
  const { fake, c, s } = await openClient();
  let rejectA;
  const a = c.subscribe("c", { token: () => new Promise((_, reject) => (rejectA = reject)) });
  await waitFor(() => rejectA, "A's token call");
  a.unsubscribe();
  const b = c.subscribe("c");
  const got = record(b, "message");
  rejectA(new Error("token service down"));
  await new Promise((r) => setTimeout(r, 5));
  assert.equal(c.getSubscription("c"), b);
  s.push({ type: "reply", id: s.lastCmd("subscribe").id, offset: 1, epoch: "e1" });
  s.push(msg(2, "e1"));
  assert.equal(b.state, "subscribed");
  assert.deepEqual(got.map((m) => m.offset), [2]);
});

test("nothing is written to a CLOSING socket: a publish goes on the next connection, not 113", async () => {
  const fake = fakeWebSocket();
  const c = newClient(fake);
  const a = c.subscribe("c");
  c.connect();
  const { s } = await subscribed(c, fake, 1, "c", { offset: 0, epoch: "e1" });
  s.closing(); // the server's close frame (a drain) arrived; the close event has not
  const pub = c.publish("c", "x");
  a.unsubscribe();
  const b = c.subscribe("c");
  s.serverClose(1001, "drain");
  assert.equal(s.dropped.length, 0, "nothing written after CLOSING");
  const s2 = await fake.socket(2);
  s2.open();
  await waitFor(() => s2.frames().length === 2, "subscribe and publish");
  // The unsubscribe went with the old connection: not carried to the new one.
  assert.deepEqual(s2.frames().map((f) => f.cmd), ["subscribe", "publish"]);
  s2.push({ type: "reply", id: s2.lastCmd("publish").id, offset: 1, epoch: "e1" });
  assert.equal((await pub).offset, 1);
  assert.equal(b.state, "subscribing");
});

test("data the encoding cannot carry rejects at the call; a command the codec cannot encode rejects with its error", async () => {
  const fake = fakeWebSocket();
  const c = newClient(fake);
  const errors = record(c, "error");
  const cyclic = {};
  cyclic.self = cyclic;
  const notJSON = (e) => e instanceof TypeError && /cannot be encoded as JSON/.test(e.message);
  await assert.rejects(c.publish("c", { n: 1n }, { timeout: 50 }), notJSON); // not connected yet
  c.connect();
  const s = await fake.socket(1);
  s.open();
  await assert.rejects(c.publish("c", cyclic, { idempotencyKey: "k", timeout: 50 }), notJSON);
  await assert.rejects(c.history("c", { offset: 1n, epoch: "e", timeout: 50 }), (e) => e instanceof TypeError && /history: cannot encode/.test(e.message));
  assert.equal(s.frames().length, 0);
  assert.equal(errors.length, 0);

  const mp = newClient(fakeWebSocket({ encoding: "msgpack" }), { encoding: "msgpack", dataFormat: "json" });
  await assert.rejects(mp.publish("c", () => 1), notJSON); // not the text "undefined"
});

test("close() rejects a keyed publish in its retry pause; connect() does not send it", async () => {
  for (const [code, outcome] of [
    [113, outcomeUnknown],
    [107, (e) => e.code === ErrorCode.Closed], // not published: nothing is unknown
  ]) {
    const { fake, c, s } = await openClient({ random: () => 0.99 });
    const p = c.publish("c", 1, { idempotencyKey: "k", timeout: 2000 });
    await waitFor(() => s.frames().length === 1, "publish");
    s.push({ type: "reply", id: s.frames()[0].id, error: { code, message: "try again" } });
    c.close(); // inside the ~200 ms pause
    await assert.rejects(p, outcome);
    c.connect();
    const s2 = await fake.socket(2);
    s2.open();
    await new Promise((r) => setTimeout(r, 250)); // past the pause
    assert.equal(s2.frames().length, 0, `${code}: nothing sent on the new connection`);
  }
});

test("close() from an event handler stops the reconnect", async (t) => {
  /** After close() in a handler: disconnected once, and no socket beyond the first n. */
  async function stopped(c, fake, states, n) {
    assert.equal(c.state, "disconnected");
    await new Promise((r) => setTimeout(r, 40)); // longer than any backoff here
    assert.equal(fake.sockets.length, n, "no new connection");
    assert.equal(c.state, "disconnected");
    assert.equal(states.filter((x) => x.state === "disconnected").length, 1);
    assert.equal(states.at(-1).state, "disconnected");
  }

  for (const [name, on] of [
    ["the client's connecting", (c) => c.on("connecting", () => c.close())],
    ["the client's state", (c) => c.on("state", (e) => e.state === "connecting" && c.close())],
    ["a subscription's subscribing", (c, sub) => sub.on("subscribing", () => c.close())],
  ]) {
    await t.test(`${name}, after a lost connection`, async () => {
      const { fake, c, sub, got } = subscribeC();
      const { s } = await subscribed(c, fake, 1, "c", { offset: 0, epoch: "e" });
      const states = record(c, "state");
      on(c, sub);
      s.serverClose(1001, "drain");
      await stopped(c, fake, states, 1);
      assert.equal(got.length, 0);
    });
  }

  await t.test("the client's connecting, at the first connect()", async () => {
    const fake = fakeWebSocket();
    const c = newClient(fake);
    const states = record(c, "state");
    c.on("connecting", () => c.close());
    c.connect();
    await stopped(c, fake, states, 0);
  });
});

test("a subscription token function that throws fails the subscription like one that rejects", async () => {
  const unhandled = [];
  const onUnhandled = (e) => unhandled.push(e);
  process.on("unhandledRejection", onUnhandled);
  try {
    const { fake, c, s } = await openClient();
    for (const token of [
      () => {
        throw new Error("no session");
      },
      async () => {
        throw new Error("no session");
      },
    ]) {
      const sub = c.subscribe("c", { token });
      const errors = record(sub, "error");
      const ended = record(sub, "unsubscribed");
      await assert.rejects(sub.ready(), /subscription token source failed: no session/);
      assert.equal(sub.state, "failed");
      assert.equal(errors.length, 1);
      assert.equal(ended.length, 1);
      assert.equal(c.getSubscription("c"), undefined);
    }
    assert.equal(s.frames().length, 0, "no subscribe sent");
    await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(unhandled, []);
  } finally {
    process.off("unhandledRejection", onUnhandled);
  }
});

test("options.random is the jitter of command and subscribe retries too", async () => {
  await withMathRandom(0, async () => {
    const fake = fakeWebSocket();
    const c = newClient(fake, { random: () => 0.99 }); // pauses of ~200 ms, not 0
    c.subscribe("c");
    c.connect();
    const s = await fake.socket(1);
    s.open();
    await waitFor(() => s.lastCmd("subscribe"), "subscribe");
    s.push({ type: "reply", id: s.lastCmd("subscribe").id, error: { code: 111, message: "internal" } });
    c.publish("c", 1, { idempotencyKey: "k" }).catch(() => {});
    await waitFor(() => s.lastCmd("publish"), "publish");
    s.push({ type: "reply", id: s.lastCmd("publish").id, error: { code: 107, message: "rate limited" } });
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(s.frames().map((f) => f.cmd), ["subscribe", "publish"], "no retry before ~200 ms");
    await waitFor(() => s.frames().length === 4, "both retried");
  });
});

test("a keyed publish whose deadline ends the pause after 107/111 rejects with that code, not Timeout", async () => {
  for (const code of [107, 111]) {
    const { fake, c, s } = await openClient({ random: () => 0.99 });
    const p = c.publish("c", 1, { idempotencyKey: "k", timeout: 60 }); // the pause is ~200 ms
    await waitFor(() => s.frames().length === 1, "publish");
    s.push({ type: "reply", id: s.frames()[0].id, error: { code, message: "try later" } });
    await assert.rejects(p, (e) => e.code === code && /try later \(retried until the deadline\)/.test(e.message));
  }
});

test("a subscribe made by a connected or state handler is sent once, not again by the resubscribe", async (t) => {
  for (const [name, on, subOpts] of [
    ["connected", (c, make) => c.on("connected", make)],
    ["state", (c, make) => c.on("state", (e) => e.state === "connected" && make())],
    ["connected, with a subscription token function", (c, make) => c.on("connected", make), { token: async () => "t" }],
  ]) {
    await t.test(name, async () => {
      const fake = fakeWebSocket();
      const c = newClient(fake);
      on(c, () => c.getSubscription("x") ?? c.subscribe("x", subOpts));
      c.connect();
      const s = await fake.socket(1);
      s.open();
      await waitFor(() => s.lastCmd("subscribe"), "subscribe");
      await new Promise((r) => setTimeout(r, 5)); // a second one would be out by now
      const subs = s.frames().filter((f) => f.cmd === "subscribe");
      assert.equal(subs.length, 1, "one subscribe on the wire");
      const sub = c.getSubscription("x");
      const got = record(sub, "message");
      s.push({ type: "reply", id: subs[0].id, offset: 0, epoch: "e" });
      s.push({ type: "message", channel: "x", offset: 1, epoch: "e", data: 1 });
      assert.equal(sub.state, "subscribed");
      assert.equal(c.getSubscription("x"), sub);
      assert.deepEqual(got.map((m) => m.offset), [1]);
    });
  }
});

test("a lost handler of an unrecovered resume that unsubscribes (or closes) has its way", async (t) => {
  /** A subscribe with a start position, answered recovered:false; handler runs on "lost". */
  async function unrecovered(handler) {
    const fake = fakeWebSocket();
    const c = newClient(fake);
    const a = c.subscribe("c", { offset: 3, epoch: "e1" });
    const events = [];
    for (const e of ["lost", "subscribed", "subscribing", "unsubscribed"]) a.on(e, () => events.push(e));
    const ctx = { c, a, events };
    a.on("lost", () => handler(ctx));
    c.connect();
    const { s } = await subscribed(c, fake, 1, "c", { offset: 10, epoch: "e2", recovered: false, reason: "epoch changed" });
    return { ...ctx, s, fake };
  }

  await t.test("unsubscribe() and a fresh subscribe: the server is told, and the new one is subscribed", async () => {
    const { c, a, events, s } = await unrecovered((x) => {
      x.a.unsubscribe();
      x.b = x.c.subscribe("c");
    });
    assert.deepEqual(s.frames().map((f) => f.cmd), ["subscribe", "unsubscribe", "subscribe"]);
    assert.deepEqual(events, ["lost", "unsubscribed"]);
    assert.equal(a.state, "unsubscribed");
    assert.equal((await a.ready()).offset, 10, "ready() resolves: the reply came first");
    s.push({ type: "reply", id: s.lastCmd("unsubscribe").id });
    s.push({ type: "reply", id: s.lastCmd("subscribe").id, offset: 10, epoch: "e2" });
    const b = c.getSubscription("c");
    assert.equal(b.state, "subscribed");
  });

  await t.test("close(): the subscription waits for the next connection, not subscribed", async () => {
    const { c, a, events, fake } = await unrecovered((x) => x.c.close());
    assert.equal(c.state, "disconnected");
    assert.deepEqual(events, ["lost", "subscribing"]);
    assert.equal(a.state, "subscribing");
    c.connect();
    const s2 = await fake.socket(2);
    s2.open();
    await waitFor(() => s2.lastCmd("subscribe"), "resubscribe");
    assert.deepEqual([s2.lastCmd("subscribe").offset, s2.lastCmd("subscribe").epoch], [10, "e2"]);
  });
});

test("a subscribed handler that unsubscribes: ready() still resolves with the reply", async () => {
  const fake = fakeWebSocket();
  const c = newClient(fake);
  const sub = c.subscribe("y");
  sub.on("subscribed", () => sub.unsubscribe());
  c.connect();
  const s = await fake.socket(1);
  s.open();
  await waitFor(() => s.lastCmd("subscribe"), "subscribe");
  s.push({ type: "reply", id: s.lastCmd("subscribe").id, offset: 4, epoch: "e" });
  assert.equal((await sub.ready()).offset, 4);
  assert.equal(sub.state, "unsubscribed");
  assert.equal(s.lastCmd("unsubscribe")?.channel, "y");
});

test("a lost handler that unsubscribes on a message of another epoch gets no message after it", async () => {
  const fake = fakeWebSocket();
  const c = newClient(fake);
  const sub = c.subscribe("c");
  const events = [];
  sub.on("lost", (e) => {
    events.push(`lost ${e.kind}`);
    sub.unsubscribe();
  });
  sub.on("message", (m) => events.push(`message ${m.offset}`));
  c.connect();
  const { s } = await subscribed(c, fake, 1, "c", { offset: 5, epoch: "e1" });
  s.push(msg(1, "e2"));
  assert.deepEqual(events, ["lost epoch"]);
  assert.equal(sub.state, "unsubscribed");
});

test("a handler that changes the state does not cut the current event short: every listener sees every change, in order", async (t) => {
  await t.test("close() from the first of two state listeners", async () => {
    const fake = fakeWebSocket();
    const c = newClient(fake);
    c.on("state", (e) => e.state === "connecting" && e.attempt >= 1 && c.close());
    const seen = [];
    c.on("state", (e) => seen.push(e.state));
    c.connect();
    (await fake.socket(1)).open();
    fake.last().serverClose(1001, "drain");
    assert.deepEqual(seen, ["connecting", "connected", "connecting", "disconnected"]);
    assert.equal(c.state, "disconnected");
  });

  await t.test("close() from the first of two connecting listeners", async () => {
    const fake = fakeWebSocket();
    const c = newClient(fake);
    c.on("connecting", (e) => e.attempt >= 1 && c.close());
    const seen = [];
    c.on("connecting", () => seen.push("connecting"));
    c.on("disconnected", () => seen.push("disconnected"));
    c.connect();
    (await fake.socket(1)).open();
    fake.last().serverClose(1001, "drain");
    assert.deepEqual(seen, ["connecting", "connecting", "disconnected"]);
    await new Promise((r) => setTimeout(r, 40)); // longer than any backoff here
    assert.equal(fake.sockets.length, 1, "no reconnect");
  });

  await t.test("connect() from a state listener on disconnected: the others still get disconnected and its error", async () => {
    const fake = fakeWebSocket();
    const c = newClient(fake);
    let again = true;
    c.on("state", (e) => {
      if (e.state === "disconnected" && again) {
        again = false;
        c.connect();
      }
    });
    const states = [];
    c.on("state", (e) => states.push(e.state));
    const stopped = record(c, "disconnected");
    c.connect();
    (await fake.socket(1)).open();
    fake.last().serverClose(4503, "forbidden");
    assert.deepEqual(states, ["connecting", "connected", "disconnected", "connecting"]);
    assert.equal(stopped.length, 1);
    assert.ok(stopped[0].error instanceof ConnectionError);
    assert.equal(stopped[0].error.code, 4503);
    assert.equal(c.state, "connecting");
    await fake.socket(2); // and it does connect again
  });
});

test("a keyed publish is resent with its data as it was at the call; a resend that cannot be encoded ends as 113", async (t) => {
  /** Publishes data with a key, loses the connection in flight, runs change, opens the next socket. */
  async function resent(fake, c, data, change) {
    c.connect();
    const s = await fake.socket(1);
    s.open();
    const p = c.publish("c", data, { idempotencyKey: "k", timeout: 2000 });
    await waitFor(() => s.frames().length === 1, "publish");
    s.fail();
    change();
    const s2 = await fake.socket(2);
    s2.open();
    return { p, s, s2 };
  }

  await t.test("json: the object changed after the call, into a cycle or not", async () => {
    for (const change of [(o) => (o.n = 2), (o) => (o.self = o)]) {
      const fake = fakeWebSocket();
      const c = newClient(fake);
      const obj = { n: 1 };
      const { p, s, s2 } = await resent(fake, c, obj, () => change(obj));
      await waitFor(() => s2.lastCmd("publish"), "the resend");
      assert.deepEqual(s2.lastCmd("publish").data, { n: 1 });
      assert.deepEqual(s2.lastCmd("publish").data, s.lastCmd("publish").data);
      s2.push({ type: "reply", id: s2.lastCmd("publish").id, offset: 1, epoch: "e" });
      assert.equal((await p).offset, 1);
    }
  });

  await t.test("msgpack: the bytes changed after the call", async () => {
    const fake = fakeWebSocket({ encoding: "msgpack" });
    const c = newClient(fake, { encoding: "msgpack" });
    const buf = new Uint8Array([1, 2, 3]);
    const { p, s2 } = await resent(fake, c, buf, () => buf.fill(9));
    await waitFor(() => s2.lastCmd("publish"), "the resend");
    assert.deepEqual([...s2.lastCmd("publish").data], [1, 2, 3]);
    s2.push({ type: "reply", id: s2.lastCmd("publish").id, offset: 1, epoch: "e" });
    assert.equal((await p).offset, 1);
  });

  await t.test("the codec throws at the resend: 113 (the first attempt may have published it), not its TypeError", async () => {
    let broken = false;
    const msgpack = {
      encode(v, o) {
        if (broken && v.cmd === "publish") throw new Error("encoder broke");
        return mpEncode(v, o);
      },
      decode: mpDecode,
    };
    const fake = fakeWebSocket({ encoding: "msgpack" });
    const c = newClient(fake, { encoding: "msgpack", msgpack });
    const { p, s2 } = await resent(fake, c, "x", () => (broken = true));
    await assert.rejects(p, (e) => outcomeUnknown(e) && /cannot encode the command: encoder broke/.test(e.message));
    assert.equal(s2.frames().length, 0);
  });
});

test("a handler that unsubscribes stops the event reaching the subscription's other handlers", async () => {
  for (const event of ["message", "lost"]) {
    const { fake, c, sub } = subscribeC();
    const seen = [];
    sub.on(event, () => {
      seen.push("first");
      sub.unsubscribe();
    });
    sub.on(event, () => seen.push("second"));
    sub.on("unsubscribed", () => seen.push("unsubscribed"));
    const { s } = await subscribed(c, fake, 1, "c", { offset: 10, epoch: "e1" });
    s.push(event === "message" ? msg(11, "e1") : { type: "gap", channel: "c", from: 11, to: 12 });
    assert.deepEqual(seen, ["first", "unsubscribed"], event);
  }
});
