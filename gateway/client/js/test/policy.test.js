// Backoff spread and the close-code table, without any socket.

import { test } from "node:test";
import assert from "node:assert/strict";
import { Backoff, closeAction, handshakeAction, Client } from "../src/index.js";
import { parseRetryAfter } from "../src/policy.js";
import { fakeWebSocket, waitFor } from "./fake.js";

test("close-code table of codec/README.md §8", () => {
  const cases = {
    1000: "reconnect", 1001: "reconnect", 1005: "reconnect", 1006: "reconnect", 1011: "reconnect",
    1002: "stop", 1003: "stop", 1007: "stop", 1008: "stop", 1009: "stop", 1010: "stop",
    4000: "reconnect", 4004: "token", 4008: "throttled", 4029: "throttled", 4499: "reconnect",
    4500: "stop", 4501: "stop", 4503: "stop", 4505: "stop", 4999: "stop",
  };
  for (const [code, want] of Object.entries(cases)) {
    const a = closeAction(Number(code));
    const got = !a.reconnect ? "stop" : a.newToken ? "token" : a.throttled ? "throttled" : "reconnect";
    assert.equal(got, want, `close ${code}`);
  }
  assert.equal(handshakeAction(401).reconnect, false);
  assert.equal(handshakeAction(403).reconnect, false);
  assert.equal(handshakeAction(429).throttled, true);
  assert.equal(handshakeAction(503).throttled, true);
  assert.deepEqual(handshakeAction(500), { reconnect: true, newToken: false, throttled: false });
});

test("Retry-After: seconds or an HTTP date", () => {
  assert.equal(parseRetryAfter("7"), 7000);
  assert.equal(parseRetryAfter(undefined), 0);
  assert.equal(parseRetryAfter("soon"), 0);
  const now = Date.parse("Wed, 21 Oct 2015 07:28:00 GMT");
  assert.equal(parseRetryAfter("Wed, 21 Oct 2015 07:28:30 GMT", now), 30000);
});

test("backoff windows grow by the factor up to max, and reset", () => {
  const b = new Backoff({ min: 100, max: 1000, factor: 2 }, () => 0.999999);
  const d = Array.from({ length: 6 }, () => Math.round(b.next()));
  assert.deepEqual(d, [100, 200, 400, 800, 1000, 1000]);
  b.reset();
  assert.equal(Math.round(b.next(50)), 150, "floor + window");
  assert.throws(() => new Backoff({ min: 0 }), RangeError);
  assert.throws(() => new Backoff({ min: 10, max: 5 }), RangeError);
});

/** Counts samples in each tenth of [0, window) and returns the largest and smallest share. */
function spread(samples, window) {
  const bins = new Array(10).fill(0);
  for (const s of samples) {
    assert.ok(s >= 0 && s < window, `sample ${s} outside [0, ${window})`);
    bins[Math.floor((s / window) * 10)]++;
  }
  return { max: Math.max(...bins) / samples.length, min: Math.min(...bins) / samples.length, bins };
}

test("full jitter: delays spread evenly over the window", (t) => {
  const samples = [];
  for (let i = 0; i < 20000; i++) {
    const b = new Backoff({ min: 1000, max: 8000 });
    b.next();
    b.next();
    samples.push(b.next()); // the third attempt: window 4000
  }
  const s = spread(samples, 4000);
  t.diagnostic(`20,000 delays per tenth of the window: ${s.bins.join(" ")}`);
  assert.ok(s.max <= 0.12 && s.min >= 0.08, `tenths ${s.bins}`);
});

test("1,000 clients losing one gateway spread their reconnects over the window", async (t) => {
  // Every client's first connection fails at once (the gateway is gone);
  // the delays they choose for attempt 1 must cover the whole window.
  const window = 2000;
  const fake = fakeWebSocket();
  const delays = [];
  const clients = [];
  t.after(() => clients.forEach((c) => c.close()));
  for (let i = 0; i < 1000; i++) {
    const c = new Client("ws://gw.test/ws", {
      encoding: "json", WebSocket: fake.WebSocket, pingInterval: 0, backoff: { min: window, max: window * 4 },
    });
    c.on("connecting", (e) => e.attempt === 1 && delays.push(e.delay));
    clients.push(c);
    c.connect();
  }
  await waitFor(() => fake.sockets.length === 1000, "1000 sockets");
  for (const s of fake.sockets) s.fail();
  assert.equal(delays.length, 1000);
  const s = spread(delays, window);
  // Binomial(1000, 0.1) has a standard deviation of 9.5: 15 % is 5 sigma out.
  t.diagnostic(`reconnects per tenth of the ${window} ms window: ${s.bins.join(" ")} (largest ${(s.max * 100).toFixed(1)} %)`);
  assert.ok(s.max <= 0.15, `tenths of the window: ${s.bins}`);
  for (const c of clients) c.close();
});
