// The wsgate client: one WebSocket connection that reconnects by itself,
// resumes every subscription where it left off, and reacts to close codes
// as codec/README.md §8 says.
//
// Lifecycle: connect() → "connecting" → (open) "connected" → (lost) →
// "connecting" again after a jittered backoff delay → … until close() or a
// close code / refused handshake / failing token source that forbids
// reconnecting, which ends in "disconnected" with the reason.

import { Emitter } from "./emitter.js";
import { Backoff } from "./backoff.js";
import { closeAction, handshakeAction, parseRetryAfter } from "./policy.js";
import { loadCodec, outData } from "./codec.js";
import { Subscription } from "./subscription.js";
import { WsgateError, ConnectionError, ErrorCode } from "./errors.js";

const defaults = Object.freeze({
  encoding: "msgpack",
  dataFormat: "raw",
  pingInterval: 25000, // ms without any frame before the client pings (0: never)
  pongTimeout: 10000, // ms to wait for any frame after that ping
  connectTimeout: 10000, // ms for the WebSocket handshake
  commandTimeout: 10000, // ms for a command, including time spent waiting for a connection
});

const OPEN = 1; // WebSocket.OPEN (not every runtime has the global)

// Publish errors an idempotent publish retries by itself (codec/README.md §6).
const retryablePublish = new Set([ErrorCode.RateLimited, ErrorCode.Internal, ErrorCode.OutcomeUnknown]);

// What happens to a command in flight when its connection is lost.
const Lost = Object.freeze({
  Requeue: 1, // sent again on the next connection (reads, idempotent publishes)
  Unknown: 2, // rejected with 113: it may have taken effect (a publish without a key)
  Resolve: 3, // nothing left to do (unsubscribe: the server forgot the subscription anyway)
  Fail: 4, // rejected with Disconnected
});

export class Client extends Emitter {
  #url;
  #opts;
  #backoff;
  #random; // uniform in [0, 1): the jitter of reconnects and retries
  #state = "disconnected";
  #stateEvents = null; // while state events are delivered: those of a handler's own state change, in order
  #closed = false; // close() was called or the client stopped for good; connect() clears it
  #gen = 0; // bumped by every dial and every stop: stale async steps compare it
  #socket = null;
  #codec = null;
  #WS = null;
  #subs = new Map(); // channel → Subscription
  #nextId = 1;
  #inflight = new Map(); // id → command or {sub}
  #queue = []; // commands waiting for a connection
  #retrying = new Set(); // commands in the pause before their next attempt
  #timers = new Set(); // subscribe retry timers to cancel on stop
  #reconnectTimer = null;
  #connectTimer = null;
  #livenessTimer = null;
  #lastRecv = 0;
  #pingSentAt = 0;
  #openedAt = 0;
  #tokenReason = "connect";
  #refreshing = false;

  /**
   * @param {string} url ws:// or wss:// URL of the gateway's client endpoint
   *   (in a browser also a path such as "/ws", resolved against the page)
   * @param {import("../index.js").ClientOptions} [options]
   */
  constructor(url, options = {}) {
    super();
    this.#url = url;
    this.#opts = { ...defaults, ...options };
    const o = this.#opts;
    if (o.encoding !== "msgpack" && o.encoding !== "json") {
      throw new TypeError(`encoding must be "msgpack" or "json", got ${o.encoding}`);
    }
    if (o.dataFormat !== "raw" && o.dataFormat !== "json") {
      throw new TypeError(`dataFormat must be "raw" or "json", got ${o.dataFormat}`);
    }
    this.#random = o.random ?? Math.random;
    this.#backoff = new Backoff(o.backoff, this.#random);
  }

  /** "disconnected" | "connecting" | "connected" */
  get state() {
    return this.#state;
  }

  /** The encoding in use: "msgpack" or "json". */
  get encoding() {
    return this.#opts.encoding;
  }

  /** Starts connecting (no-op when already connecting or connected). */
  connect() {
    if (this.#state !== "disconnected") return;
    this.#closed = false;
    this.#backoff.reset();
    this.#tokenReason = "connect";
    const gen = this.#gen;
    this.#setState("connecting", { code: 0, reason: "connect", delay: 0, attempt: 0 });
    if (gen === this.#gen) this.#dial(); // else a handler of these events called close()
  }

  /**
   * Closes the connection for good (1000) and rejects pending commands
   * (with 113 a publish that may have been published).
   * Subscriptions stay registered with their positions: connect() resumes them.
   */
  close() {
    this.#stop({ code: 1000, reason: "closed by the client" });
  }

  /**
   * Subscribes to channel, now or as soon as the client is connected, and
   * after every reconnect with the last position.
   * @param {string} channel
   * @param {{offset?: number, epoch?: string, token?: string | ((channel: string) => string | Promise<string>)}} [opts]
   */
  subscribe(channel, opts) {
    if (typeof channel !== "string" || channel === "") throw new TypeError("subscribe: channel must be a non-empty string");
    if (this.#subs.has(channel)) throw new Error(`already subscribed to ${channel} (use getSubscription)`);
    const sub = new Subscription(this, channel, opts);
    this.#subs.set(channel, sub);
    if (this.#state === "connected") this.#sendSubscribe(sub, this.#socket);
    return sub;
  }

  /** The subscription of channel, if any. */
  getSubscription(channel) {
    return this.#subs.get(channel);
  }

  /** Every current subscription. */
  subscriptions() {
    return [...this.#subs.values()];
  }

  /**
   * Publishes data to channel. With an idempotencyKey the client retries by
   * itself (after a lost connection, 107, 111, 113) until commandTimeout,
   * and the gateway publishes at most once.
   * @returns {Promise<{offset: number, epoch: string, replayed: boolean}>}
   */
  async publish(channel, data, opts = {}) {
    const frame = { cmd: "publish", channel, data: outData(this.#opts.encoding, data, this.#opts.dataFormat) };
    const key = opts.idempotencyKey;
    if (key != null) frame.idempotency_key = String(key);
    const r = await this.#request(frame, {
      timeout: opts.timeout,
      lost: key != null ? Lost.Requeue : Lost.Unknown,
      retry: key != null ? retryablePublish : null,
    });
    return { offset: Number(r.offset ?? 0), epoch: r.epoch ?? "", replayed: r.replayed === true };
  }

  /**
   * Publications of channel from history.
   * @param {string} channel
   * @param {{offset?: number, epoch?: string, limit?: number, reverse?: boolean, timeout?: number}} [opts]
   */
  async history(channel, opts = {}) {
    const frame = { cmd: "history", channel };
    if (opts.offset != null) frame.offset = opts.offset;
    if (opts.epoch != null) frame.epoch = opts.epoch;
    if (opts.limit) frame.limit = opts.limit;
    if (opts.reverse) frame.reverse = true;
    const r = await this.#request(frame, { timeout: opts.timeout, lost: Lost.Requeue });
    const pubs = (r.publications ?? []).map((p) => ({
      offset: Number(p.offset ?? 0),
      data: this.#codec.inData(p, this.#opts.dataFormat),
    }));
    return { publications: pubs, epoch: r.epoch ?? "" };
  }

  /** @returns {Promise<{clients: {client: string, user: string}[]}>} */
  async presence(channel, opts = {}) {
    const r = await this.#request({ cmd: "presence", channel }, { timeout: opts.timeout, lost: Lost.Requeue });
    return { clients: r.clients ?? [] };
  }

  /** @returns {Promise<{clients: number, users: number}>} */
  async presenceStats(channel, opts = {}) {
    const r = await this.#request({ cmd: "presence_stats", channel }, { timeout: opts.timeout, lost: Lost.Requeue });
    return { clients: Number(r.clients ?? 0), users: Number(r.users ?? 0) };
  }

  /** A protocol round trip; resolves with its time in ms. */
  async ping(opts = {}) {
    const start = now();
    await this.#request({ cmd: "ping" }, { timeout: opts.timeout, lost: Lost.Fail });
    return now() - start;
  }

  // ---- commands --------------------------------------------------------

  /**
   * Sends frame now or when connected; resolves with the reply.
   * @param {object} frame the command without its id
   * @param {{timeout?: number, lost: number, retry?: Set<number> | null}} how
   */
  #request(frame, how) {
    if (this.#closed) {
      return Promise.reject(new WsgateError(ErrorCode.Closed, "client is closed: call connect() first"));
    }
    return new Promise((resolve, reject) => {
      // sent: the current attempt was written and its reply has not come.
      // unknown: an attempt was sent and its outcome will never be learned
      // (connection lost, 113, given up): a publish that fails after that
      // may still have been published, whatever ends it (codec/README.md §6).
      const p = { frame, resolve, reject, lost: how.lost, retry: how.retry ?? null, sent: false, unknown: false, id: 0, timer: null, retryTimer: null };
      p.timer = setTimeout(() => this.#expire(p), how.timeout ?? this.#opts.commandTimeout);
      this.#submit(p);
    });
  }

  /** Sends p now if the socket takes it, else queues it for the next connection. */
  #submit(p) {
    if (this.#writable()) {
      const id = this.#nextId++;
      let written;
      try {
        written = this.#write({ ...p.frame, id });
      } catch (err) {
        // Nothing was sent this time: the caller gets the codec's error,
        // or 113 if an earlier attempt may have published it (#fail).
        this.#fail(p, new TypeError(`${p.frame.cmd}: cannot encode the command: ${err?.message ?? err}`, { cause: err }));
        return;
      }
      if (written) {
        p.id = id;
        p.sent = true;
        this.#inflight.set(id, p);
        return;
      }
    }
    this.#queue.push(p);
  }

  /** The command's deadline passed. */
  #expire(p) {
    const pausing = this.#retrying.delete(p);
    const i = this.#queue.indexOf(p);
    if (i >= 0) this.#queue.splice(i, 1);
    if (p.id) this.#inflight.delete(p.id);
    if (pausing && !p.unknown) {
      // Every attempt was answered 107 or 111: nothing was published, and
      // the last answer says why (as the Go client returns it).
      const last = p.lastError;
      this.#fail(p, new WsgateError(last.code, `${p.frame.cmd}: ${last.message} (retried until the deadline)`, { cause: last }));
      return;
    }
    const why = p.sent || p.unknown ? "no reply in time" : "not connected in time";
    this.#fail(p, new WsgateError(ErrorCode.Timeout, `${p.frame.cmd}: ${why}`));
  }

  /**
   * Rejects a command that is no longer queued, in flight or waiting to
   * retry. A publish whose outcome became unknown in any attempt (lost in
   * flight, answered 113, or in flight now) ends as 113 instead of err:
   * Timeout and Closed would claim it never took effect. One whose every
   * attempt was answered keeps err.
   */
  #fail(p, err) {
    clearTimeout(p.timer);
    clearTimeout(p.retryTimer);
    if (p.sent) p.unknown = true; // its reply will never be read
    if (p.unknown && p.frame.cmd === "publish" && err.code !== ErrorCode.OutcomeUnknown) {
      err = new WsgateError(ErrorCode.OutcomeUnknown, `${err.message}: it may have been published`, { cause: err });
    }
    p.reject(err);
  }

  #onReply(f) {
    const id = Number(f.id ?? 0);
    const p = this.#inflight.get(id);
    if (!p) {
      if (id === 0 && f.error) this.emit("error", new WsgateError(Number(f.error.code ?? 0), String(f.error.message ?? "")));
      return; // a ping's reply, or a command that expired meanwhile
    }
    this.#inflight.delete(id);
    if (p.sub) {
      this.#onSubscribeReply(p.sub, p.sock, f);
      return;
    }
    p.sent = false; // answered: this attempt's outcome is known…
    p.id = 0;
    if (f.error) {
      const err = new WsgateError(Number(f.error.code ?? 0), String(f.error.message ?? ""));
      if (err.code === ErrorCode.OutcomeUnknown) p.unknown = true; // …unless it is 113
      if (p.retry?.has(err.code)) {
        p.lastError = err;
        p.tries = (p.tries ?? 0) + 1;
        this.#retrying.add(p);
        p.retryTimer = setTimeout(() => {
          this.#retrying.delete(p);
          this.#submit(p);
        }, this.#retryDelay(p.tries));
        return;
      }
      this.#fail(p, err);
      return;
    }
    clearTimeout(p.timer);
    p.resolve(f);
  }

  // ---- subscriptions ---------------------------------------------------

  async #sendSubscribe(sub, sock) {
    // Ended meanwhile (a handler unsubscribed it): not even its token is asked for.
    if (!sub._active || this.#subs.get(sub.channel) !== sub) return;
    // Without a token source the command is ready at once and goes out
    // before anything queued after it (e.g. the first publish).
    let cmd;
    try {
      cmd = sub._command();
      if (cmd instanceof Promise) cmd = await cmd;
    } catch (err) {
      sub._fail(new WsgateError(ErrorCode.Unauthorized, `subscription token source failed: ${err?.message ?? err}`, { cause: err }));
      // Only its own entry: the channel may have a newer subscription by now.
      if (this.#subs.get(sub.channel) === sub) this.#subs.delete(sub.channel);
      return;
    }
    if (!sub._active || this.#subs.get(sub.channel) !== sub) return;
    // Not written (a replaced or closing socket): the next connection
    // subscribes it again.
    if (sock !== this.#socket || !this.#writable()) return;
    const id = this.#nextId++;
    if (!this.#write({ ...cmd, id })) return;
    sub._pendingId = id;
    this.#inflight.set(id, { sub, sock });
  }

  #onSubscribeReply(sub, sock, f) {
    if (!sub._active || this.#subs.get(sub.channel) !== sub) return;
    if (!f.error) {
      sub._onSubscribed(f);
      return;
    }
    const err = new WsgateError(Number(f.error.code ?? 0), `subscribe ${sub.channel}: ${f.error.message ?? ""}`);
    if (sub._onSubscribeError(err)) {
      const t = setTimeout(() => {
        this.#timers.delete(t);
        if (sock === this.#socket && sub._active) this.#sendSubscribe(sub, sock);
      }, this.#retryDelay(sub._retries));
      this.#timers.add(t);
    } else {
      this.#subs.delete(sub.channel);
    }
  }

  /** @internal Subscription.unsubscribe */
  async _unsubscribe(sub) {
    if (this.#subs.get(sub.channel) !== sub) return;
    this.#subs.delete(sub.channel);
    const onServer = sub._pendingId !== 0 || sub.state === "subscribed";
    sub._onUnsubscribed("unsubscribed by the application");
    // A socket that is not open takes the subscription with it; a queued
    // unsubscribe would reach the next connection and could end a newer
    // subscription of the channel there.
    if (!onServer || !this.#writable()) return;
    try {
      await this.#request({ cmd: "unsubscribe", channel: sub.channel }, { lost: Lost.Resolve });
    } catch (err) {
      if (err.code === ErrorCode.NotSubscribed || err.code === ErrorCode.Closed) return;
      throw err;
    }
  }

  // ---- the connection ----------------------------------------------------

  async #dial() {
    const gen = ++this.#gen;
    const o = this.#opts;
    let token;
    try {
      this.#codec ??= await loadCodec(o.encoding, o.msgpack);
      this.#WS ??= await resolveWebSocket(o.WebSocket);
    } catch (err) {
      if (gen === this.#gen) this.#stop({ code: 0, reason: err.message, error: new ConnectionError(err.message, { cause: err }) });
      return;
    }
    if (gen !== this.#gen) return;
    try {
      token = await this.#fetchToken(this.#tokenReason);
    } catch (err) {
      if (gen === this.#gen) {
        const msg = `token source failed: ${err?.message ?? err}`;
        this.#stop({ code: 0, reason: msg, error: new ConnectionError(msg, { cause: err }) });
      }
      return;
    }
    if (gen !== this.#gen) return;
    let sock;
    try {
      const url = withToken(resolveURL(this.#url), token);
      sock = o.wsOptions ? new this.#WS(url, this.#codec.protocol, o.wsOptions) : new this.#WS(url, this.#codec.protocol);
    } catch (err) {
      const msg = `cannot open a WebSocket to ${this.#url}: ${err?.message ?? err}`;
      this.#stop({ code: 0, reason: msg, error: new ConnectionError(msg, { cause: err }) });
      return;
    }
    sock.binaryType = "arraybuffer";
    this.#socket = sock;
    let refused = null; // {status, retryAfter}: the handshake's HTTP answer, when visible
    if (typeof sock.on === "function") {
      // The ws package: it alone shows a refused handshake's status.
      sock.on("unexpected-response", (req, res) => {
        refused = { status: res.statusCode, retryAfter: parseRetryAfter(res.headers?.["retry-after"]) };
        res.resume?.();
        sock.terminate();
      });
    }
    sock.addEventListener("open", () => this.#onOpen(sock));
    sock.addEventListener("message", (ev) => this.#onFrame(sock, ev.data));
    sock.addEventListener("close", (ev) => this.#onLost(sock, { code: ev.code, reason: ev.reason || "", refused }));
    sock.addEventListener("error", () => {}); // a close event follows every error
    this.#connectTimer = setTimeout(() => this.#onLost(sock, { code: 1006, reason: "handshake timed out" }), o.connectTimeout);
  }

  async #fetchToken(reason) {
    const src = this.#opts.token;
    if (typeof src !== "function") return src ?? "";
    const t = await src({ reason });
    if (t != null && typeof t !== "string") throw new TypeError(`the token source returned ${typeof t}, want a string`);
    return t ?? "";
  }

  #onOpen(sock) {
    if (sock !== this.#socket) return;
    clearTimeout(this.#connectTimer);
    this.#openedAt = this.#lastRecv = now();
    this.#pingSentAt = 0;
    this.#tokenReason = "reconnect";
    // Taken before the events: a subscription a handler makes is sent by
    // subscribe() itself, and sending it again here would get 104.
    const subs = [...this.#subs.values()];
    this.#setState("connected", { protocol: sock.protocol || this.#codec.protocol });
    if (sock !== this.#socket) return; // a "connected" handler called close()
    this.#armLiveness(this.#opts.pingInterval);
    for (const sub of subs) this.#sendSubscribe(sub, sock);
    const queued = this.#queue;
    this.#queue = [];
    for (const p of queued) this.#submit(p);
  }

  #onFrame(sock, raw) {
    if (sock !== this.#socket) return;
    this.#lastRecv = now();
    let f;
    try {
      f = this.#codec.decode(raw);
      if (f === null || typeof f !== "object" || Array.isArray(f)) throw new TypeError("frame is not a map");
    } catch (err) {
      this.emit("error", new WsgateError(0, `undecodable frame from the server: ${err.message}`, { cause: err }));
      return;
    }
    switch (f.type) {
      case "reply":
        this.#onReply(f);
        return;
      case "message": {
        const sub = this.#subscribed(f.channel);
        if (sub) sub._onMessage(Number(f.offset ?? 0), f.epoch ?? "", this.#codec.inData(f, this.#opts.dataFormat));
        return;
      }
      case "epoch":
        this.#subscribed(f.channel)?._onEpoch(f);
        return;
      case "gap":
        this.#subscribed(f.channel)?._onGap(f);
        return;
      case "join":
      case "leave":
        this.#subscribed(f.channel)?.emit(f.type, { channel: f.channel, client: f.client ?? "", user: f.user ?? "" });
        return;
      case "unsubscribe": {
        // The server ended the subscription (its API's unsubscribe): it is
        // not resubscribed on reconnect.
        const sub = this.#subscribed(f.channel);
        if (sub) {
          this.#subs.delete(f.channel);
          sub._onUnsubscribed("unsubscribed by the server");
        }
        return;
      }
      case "refresh":
        this.#refresh();
        return;
      default:
        return; // a push type this client does not know: ignored (forward compatibility)
    }
  }

  /**
   * The subscription a push of channel is for: only one whose subscribe
   * this connection answered (a lost connection makes it "subscribing"
   * again). Until then a push is about an earlier subscription of the
   * channel that the server has not yet seen unsubscribed: a trailing
   * message would move the new one's position past what its resume
   * replays, and an unsubscribe push would end it by mistake.
   */
  #subscribed(channel) {
    const sub = this.#subs.get(channel);
    return sub?.state === "subscribed" ? sub : undefined;
  }

  /** The server's token expired: answer with a refresh command. */
  async #refresh() {
    if (this.#refreshing) return;
    if (typeof this.#opts.token !== "function") {
      this.emit("error", new ConnectionError("the server asks for a new token, but options.token is not a function: the connection will close with 4004"));
      return;
    }
    this.#refreshing = true;
    const gen = this.#gen;
    try {
      let token;
      try {
        token = await this.#fetchToken("refresh");
      } catch (err) {
        if (gen !== this.#gen) return;
        const msg = `token source failed: ${err?.message ?? err}`;
        this.#stop({ code: 0, reason: msg, error: new ConnectionError(msg, { cause: err }) });
        return;
      }
      if (gen !== this.#gen) return;
      await this.#request({ cmd: "refresh", token }, { lost: Lost.Fail });
      this.emit("refreshed", {});
    } catch (err) {
      this.emit("error", err);
    } finally {
      this.#refreshing = false;
    }
  }

  // Liveness: browsers never show WebSocket pings to scripts, so the client
  // checks with protocol pings: after pingInterval without any frame it
  // sends one, and a connection silent for pongTimeout after that is dead.
  #armLiveness(ms) {
    clearTimeout(this.#livenessTimer);
    if (this.#opts.pingInterval > 0) this.#livenessTimer = setTimeout(() => this.#checkLiveness(), ms);
  }

  #checkLiveness() {
    const sock = this.#socket;
    if (!sock || this.#state !== "connected") return;
    const t = now();
    if (this.#pingSentAt) {
      if (this.#lastRecv < this.#pingSentAt) {
        this.#onLost(sock, { code: 1006, reason: `no frame for ${this.#opts.pongTimeout} ms after a ping` });
        return;
      }
      this.#pingSentAt = 0;
    }
    const idle = t - this.#lastRecv;
    if (idle < this.#opts.pingInterval) {
      this.#armLiveness(this.#opts.pingInterval - idle);
      return;
    }
    this.#pingSentAt = t;
    this.#write({ cmd: "ping", id: this.#nextId++ });
    this.#armLiveness(this.#opts.pongTimeout);
  }

  /**
   * Whether a frame written now goes to the server. Once the server's close
   * frame has arrived the socket is CLOSING: browsers and ws then drop
   * send() without an error, and the close event comes only later.
   */
  #writable() {
    return this.#state === "connected" && this.#socket?.readyState === OPEN;
  }

  /**
   * Writes frame to the socket; false when the socket refused it. A frame
   * the codec cannot encode throws, and nothing is sent.
   */
  #write(frame) {
    const data = this.#codec.encode(frame);
    try {
      this.#socket.send(data);
      return true;
    } catch (err) {
      this.emit("error", new WsgateError(0, `send failed: ${err?.message ?? err}`, { cause: err }));
      return false;
    }
  }

  /** The transport is gone (closed, failed, timed out): settle commands, then reconnect or stop. */
  #onLost(sock, { code, reason, refused = null }) {
    if (sock !== this.#socket) return;
    // Event handlers run below may call close() (and connect()), which
    // bump #gen: then that decided what happens next, not this.
    const gen = this.#gen;
    const wasOpen = this.#state === "connected";
    this.#dropSocket(true);
    this.#settleInflight(reason);
    for (const sub of this.#subs.values()) sub._onConnectionLost(reason);
    if (gen !== this.#gen) return;

    const act = refused ? handshakeAction(refused.status) : closeAction(code);
    const what = refused ? `handshake refused with HTTP ${refused.status}` : `closed with ${code}${reason ? ` (${reason})` : ""}`;
    if (!act.reconnect) {
      const error = new ConnectionError(what, { code: refused ? 0 : code, status: refused?.status ?? 0 });
      this.#stop({ code, reason: what, error });
      return;
    }
    if (act.newToken) {
      if (typeof this.#opts.token !== "function" && this.#opts.token) {
        const msg = `${what}: the token expired and options.token is a fixed string; pass a function to renew it`;
        this.#stop({ code, reason: msg, error: new ConnectionError(msg, { code }) });
        return;
      }
      this.#tokenReason = "expired";
    }
    const b = this.#backoff.options;
    if (wasOpen && now() - this.#openedAt >= b.healthyAfter) this.#backoff.reset();
    let floor = 0;
    if (refused?.retryAfter) floor = Math.min(refused.retryAfter, b.maxRetryAfter);
    else if (act.throttled) floor = b.throttled;
    const attempt = this.#backoff.attempt + 1;
    const delay = this.#backoff.next(floor);
    this.#setState("connecting", { code, reason: what, delay, attempt, status: refused?.status ?? 0 });
    if (gen !== this.#gen) return;
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = null;
      this.#dial();
    }, delay);
  }

  /** Commands in flight on a lost connection: requeue, or reject as their kind says. */
  #settleInflight(reason) {
    const requeue = [];
    for (const p of this.#inflight.values()) {
      if (p.sub) continue; // subscribes are sent again by the subscription
      switch (p.lost) {
        case Lost.Requeue:
          p.unknown = true; // the lost attempt may have taken effect
          p.sent = false;
          p.id = 0;
          requeue.push(p);
          break;
        case Lost.Resolve:
          clearTimeout(p.timer);
          p.resolve({});
          break;
        case Lost.Unknown: // a publish without a key: #fail makes it 113
        default:
          this.#fail(p, new WsgateError(ErrorCode.Disconnected, `${p.frame.cmd}: connection lost before the reply (${reason})`));
      }
    }
    this.#inflight.clear();
    this.#queue = requeue.concat(this.#queue); // issued first, sent first
  }

  /**
   * Forgets the socket (its late events are ignored) and closes it: hard —
   * a lost or dead connection — terminates it where the ws package allows,
   * else a close handshake with 1000.
   */
  #dropSocket(hard) {
    clearTimeout(this.#connectTimer);
    clearTimeout(this.#livenessTimer);
    const sock = this.#socket;
    this.#socket = null;
    if (!sock) return;
    try {
      if (hard && typeof sock.terminate === "function") sock.terminate();
      else if (sock.readyState < 2) sock.close(1000, hard ? "connection lost" : "closed by the client");
    } catch {
      // already closing
    }
  }

  /** Stops for good: no reconnect, pending commands rejected. */
  #stop({ code, reason, error = null }) {
    // Stopped already, or stopping: a handler of the events below called close().
    if (this.#closed) return;
    this.#closed = true;
    this.#gen++;
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = null;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    this.#dropSocket(false);
    const closedErr = new WsgateError(ErrorCode.Closed, error ? `client stopped: ${error.message}` : "client closed", { cause: error ?? undefined });
    for (const p of [...this.#inflight.values(), ...this.#queue, ...this.#retrying]) {
      if (!p.sub) this.#fail(p, closedErr);
    }
    this.#inflight.clear();
    this.#queue = [];
    this.#retrying.clear();
    for (const sub of this.#subs.values()) sub._onConnectionLost(reason);
    this.#setState("disconnected", { code, reason, error });
  }

  /** Full-jitter delay for command and subscribe retries: up to 100 ms·2^n, at most 5 s. */
  #retryDelay(n) {
    return this.#random() * Math.min(5000, 100 * 2 ** Math.min(n, 10));
  }

  /**
   * Changes the state at once and emits "state", then the state's own event.
   * A handler that changes the state again (close(), connect()) does not
   * interrupt these: the new state's events are queued and come after the
   * current ones have reached every listener. Every listener thus sees
   * every change, in order, the last one being the client's state (as the
   * Go client's queued events).
   */
  #setState(state, info) {
    const previous = this.#state;
    this.#state = state;
    const events = [
      ["state", { state, previous, ...info }],
      [state, info],
    ];
    if (this.#stateEvents) {
      this.#stateEvents.push(...events);
      return;
    }
    this.#stateEvents = events;
    try {
      for (let i = 0; i < events.length; i++) this.emit(events[i][0], events[i][1]);
    } finally {
      this.#stateEvents = null;
    }
  }
}

function now() {
  return Date.now();
}

/** options.WebSocket, else the global one (browsers, Node ≥ 22), else the ws package. */
async function resolveWebSocket(impl) {
  if (impl) return impl;
  if (typeof globalThis.WebSocket === "function") return globalThis.WebSocket;
  try {
    const m = await import(/* webpackIgnore: true */ /* @vite-ignore */ "ws");
    return m.WebSocket ?? m.default;
  } catch (err) {
    throw new Error("no WebSocket implementation: this runtime has no global WebSocket; install the ws package or pass options.WebSocket", { cause: err });
  }
}

/** A path or http(s) URL against the page's location, as browsers allow. */
function resolveURL(url) {
  const base = globalThis.location?.href;
  const u = base ? new URL(url, base) : new URL(url);
  if (u.protocol === "http:") u.protocol = "ws:";
  else if (u.protocol === "https:") u.protocol = "wss:";
  return u;
}

function withToken(u, token) {
  if (token) u.searchParams.set("token", token);
  return u.toString();
}
