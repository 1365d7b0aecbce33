// A scriptable stand-in for the WebSocket class: each test gets its own
// class whose instances it drives as the server would (open, push frames,
// close with a code), and whose sent frames it reads back decoded.

import { encode, decode } from "@msgpack/msgpack";

/**
 * @param {{encoding?: "json"|"msgpack", wsLike?: boolean}} [opts]
 *   wsLike: instances also have the ws package's on()/terminate(), so a
 *   refused handshake's HTTP status can be scripted.
 */
export function fakeWebSocket({ encoding = "json", wsLike = false } = {}) {
  const sockets = [];
  class FakeWebSocket {
    constructor(url, protocol, options) {
      this.url = url;
      this.offered = protocol;
      this.options = options;
      this.protocol = "";
      this.readyState = 0;
      this.binaryType = "blob";
      this.sent = [];
      this.dropped = []; // written while CLOSING or CLOSED: never reached the server
      this.closedWith = null;
      this.terminated = false;
      this.listeners = {};
      this.emitterListeners = {};
      sockets.push(this);
    }
    addEventListener(type, fn) {
      (this.listeners[type] ??= []).push(fn);
    }
    // As browsers and ws do: send() throws before the socket opens, and
    // once it is CLOSING or CLOSED drops the data without an error.
    send(data) {
      if (this.readyState === 0) throw new Error("InvalidStateError: still connecting");
      if (this.readyState === 1) this.sent.push(data);
      else this.dropped.push(data);
    }
    close(code, reason) {
      this.closedWith = { code, reason };
      if (this.readyState < 2) this.readyState = 2;
    }
    // ---- the server's side ----
    fire(type, ev) {
      for (const fn of this.listeners[type] ?? []) fn(ev);
    }
    open() {
      this.readyState = 1;
      this.protocol = this.offered;
      this.fire("open", {});
    }
    /** Sends a frame (an object) to the client in the socket's encoding. */
    push(frame) {
      const data = encoding === "json" ? JSON.stringify(frame) : toArrayBuffer(encode(frame));
      this.fire("message", { data });
    }
    pushRaw(data) {
      this.fire("message", { data });
    }
    /** The server's close frame arrived: CLOSING until serverClose() fires the close event. */
    closing() {
      this.readyState = 2;
    }
    serverClose(code, reason = "") {
      this.readyState = 3;
      this.fire("close", { code, reason, wasClean: true });
    }
    /** The TCP connection broke or was refused: error, then close 1006. */
    fail() {
      this.readyState = 3;
      this.fire("error", {});
      this.fire("close", { code: 1006, reason: "", wasClean: false });
    }
    /** Every frame the client sent, decoded. */
    frames() {
      return this.sent.map((d) => (typeof d === "string" ? JSON.parse(d) : decode(d)));
    }
    /** The last sent frame with this cmd. */
    lastCmd(cmd) {
      return this.frames().filter((f) => f.cmd === cmd).at(-1);
    }
  }
  if (wsLike) {
    FakeWebSocket.prototype.on = function (type, fn) {
      (this.emitterListeners[type] ??= []).push(fn);
    };
    FakeWebSocket.prototype.terminate = function () {
      this.terminated = true;
      if (this.readyState !== 3) {
        this.readyState = 3;
        queueMicrotask(() => this.fire("close", { code: 1006, reason: "", wasClean: false }));
      }
    };
    /** A non-101 answer to the handshake, as ws reports it. */
    FakeWebSocket.prototype.refuse = function (status, headers = {}) {
      const res = { statusCode: status, headers, resume() {} };
      for (const fn of this.emitterListeners["unexpected-response"] ?? []) fn({}, res);
    };
  }
  return {
    WebSocket: FakeWebSocket,
    sockets,
    last: () => sockets.at(-1),
    /** Waits until n sockets were created. */
    async socket(n) {
      await waitFor(() => sockets.length >= n, `socket #${n}`);
      return sockets[n - 1];
    },
  };
}

function toArrayBuffer(u8) {
  return u8.buffer.slice(u8.byteOffset, u8.byteOffset + u8.byteLength);
}

/** Polls cond every few ms until it holds, for at most ms. */
export async function waitFor(cond, what = "condition", ms = 3000) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Collects every argument of an event. */
export function record(emitter, event) {
  const got = [];
  emitter.on(event, (x) => got.push(x));
  return got;
}
