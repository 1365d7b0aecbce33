// One channel subscription and its resume position (codec/README.md §10).
//
// The subscription keeps the epoch of the channel's history and the offset of
// the last publication it delivered. After every reconnect the client
// subscribes again with that position; the gateway replays what was missed.
// Whatever arrives twice at the seam (offset not above the last one, same
// epoch) is dropped here, so the application sees each publication once and
// in offset order — or is told explicitly ("lost") what it cannot get.

import { Emitter } from "./emitter.js";
import { WsgateError, ErrorCode } from "./errors.js";

/** Subscribe errors worth retrying on the same connection (after a delay). */
const retryableSubscribe = new Set([ErrorCode.RateLimited, ErrorCode.Internal]);

export class Subscription extends Emitter {
  /** @type {string} */
  channel;
  /** "subscribing" | "subscribed" | "unsubscribed" | "failed" */
  state = "subscribing";
  /** Publications dropped as already seen (resume seams, repairs). */
  duplicates = 0;

  #client;
  #offset = 0; // last delivered (or skipped) offset in #epoch
  #epoch = ""; // "" = not known yet
  #everSubscribed = false;
  #token; // subscription token or source
  #ready; // {promise, resolve, reject} for ready()
  /** The position sent with the pending subscribe (null: none). @internal */
  _sentPosition = null;
  /** The id of the pending subscribe command (0: none). @internal */
  _pendingId = 0;
  /** Subscribe retries on this connection. @internal */
  _retries = 0;

  /**
   * @param {import("./client.js").Client} client
   * @param {string} channel
   * @param {{offset?: number, epoch?: string, token?: string | ((channel: string) => Promise<string> | string)}} opts
   */
  constructor(client, channel, opts = {}) {
    super();
    this.#client = client;
    this.channel = channel;
    if ((opts.offset != null) !== (opts.epoch != null)) {
      throw new TypeError("subscribe: a start position needs both offset and epoch");
    }
    if (opts.epoch != null) {
      this.#epoch = String(opts.epoch);
      this.#offset = checkOffset(opts.offset);
    }
    this.#token = opts.token;
    let resolve, reject;
    const promise = new Promise((res, rej) => ((resolve = res), (reject = rej)));
    promise.catch(() => {}); // ready() is optional: an unobserved failure is not an unhandled rejection
    this.#ready = { promise, resolve, reject };
  }

  /** The resume position: the last publication delivered, and its epoch. */
  get position() {
    return { offset: this.#offset, epoch: this.#epoch };
  }

  /** Resolves when the server first confirms the subscription (with what the "subscribed" event carries); rejects if it fails or ends first. */
  ready() {
    return this.#ready.promise;
  }

  /** Unsubscribes; nothing of the channel is delivered after this returns (or even before it resolves). */
  unsubscribe() {
    return this.#client._unsubscribe(this);
  }

  publish(data, opts) {
    return this.#client.publish(this.channel, data, opts);
  }

  history(opts) {
    return this.#client.history(this.channel, opts);
  }

  presence() {
    return this.#client.presence(this.channel);
  }

  presenceStats() {
    return this.#client.presenceStats(this.channel);
  }

  /**
   * Delivers event to its handlers, but no further once one of them ended
   * the subscription (unsubscribe(), or closed the client): nothing of the
   * channel after that, as unsubscribe() promises. The events that tell of
   * the end ("error", "unsubscribed") reach every handler.
   * @internal
   */
  emit(event, arg) {
    if (event === "error" || event === "unsubscribed") return super.emit(event, arg);
    return super.emit(event, arg, () => this._active);
  }

  // ---- called by the client ------------------------------------------------

  /** Whether this subscription still wants to be subscribed. @internal */
  get _active() {
    return this.state === "subscribing" || this.state === "subscribed";
  }

  /**
   * The subscribe command to send now, with the resume position if there is
   * one; a Promise of it only when a token source must be asked. @internal
   */
  _command() {
    const cmd = { cmd: "subscribe", channel: this.channel };
    this._sentPosition = null;
    if (this.#epoch !== "") {
      cmd.offset = this.#offset;
      cmd.epoch = this.#epoch;
      this._sentPosition = { offset: this.#offset, epoch: this.#epoch };
    }
    if (typeof this.#token === "function") {
      // In the executor, a token function that throws rejects like one
      // whose promise rejects: the client then fails the subscription.
      return new Promise((resolve) => resolve(this.#token(this.channel))).then((t) => {
        if (t) cmd.token = String(t);
        return cmd;
      });
    }
    if (this.#token) cmd.token = String(this.#token);
    return cmd;
  }

  /** The connection was lost: subscribe again on the next one. @internal */
  _onConnectionLost(reason) {
    this._pendingId = 0;
    this._retries = 0;
    if (this.state === "subscribed") {
      this.state = "subscribing";
      this.emit("subscribing", { channel: this.channel, reason });
    }
  }

  /**
   * The subscribe reply. The state is committed and ready() resolved before
   * any event: a handler that unsubscribes (or closes the client) then
   * sees a subscription the server has, and what it does stands. @internal
   */
  _onSubscribed(reply) {
    this._pendingId = 0;
    this._retries = 0;
    const top = Number(reply.offset ?? 0);
    const epoch = reply.epoch ?? "";
    const sent = this._sentPosition;
    const info = { channel: this.channel, offset: top, epoch, resumed: sent !== null, recovered: false, reason: "" };
    let lost = null;
    if (sent) {
      // Absent "recovered" after a resume position: the namespace has
      // recovery off, so nothing was replayed.
      info.recovered = reply.recovered === true;
      info.reason = reply.reason || (reply.recovered == null ? "recovery is off for this channel" : "");
      if (!info.recovered) {
        // Subscribed from the current top: the application must reload.
        this.#setPosition(top, epoch);
        lost = {
          kind: "unrecovered",
          channel: this.channel,
          reason: info.reason || "not recovered",
          epoch,
          previous: sent.epoch,
          offset: sent.offset,
        };
      }
      // Recovered: the missed publications follow the reply; keep the position.
    } else {
      if (this.#everSubscribed) {
        // Re-subscribed without a position (the channel keeps no history):
        // whatever was published meanwhile is gone for this client.
        lost = {
          kind: "unrecovered",
          channel: this.channel,
          reason: "no position to resume from (the channel keeps no history)",
          epoch,
          previous: "",
          offset: 0,
        };
      }
      if (epoch !== this.#epoch) this.#setPosition(top, epoch);
      else this.#offset = Math.max(this.#offset, top);
    }
    this.#everSubscribed = true;
    this.state = "subscribed";
    this.#ready.resolve(info);
    if (lost) {
      this.emit("lost", lost);
      if (this.state !== "subscribed") return; // a "lost" handler ended it (or closed the client)
    }
    this.emit("subscribed", info);
  }

  /** The subscribe was refused. Returns true when it should be retried. @internal */
  _onSubscribeError(err) {
    this._pendingId = 0;
    if (retryableSubscribe.has(err.code)) {
      this._retries++;
      this.emit("error", err);
      return true;
    }
    this._fail(err);
    return false;
  }

  /** Ends the subscription with an error (refused, client closed for good). @internal */
  _fail(err) {
    if (!this._active) return;
    this.state = "failed";
    this.emit("error", err);
    this.emit("unsubscribed", { channel: this.channel, reason: err.message, error: err });
    this.#ready.reject(err);
  }

  /** Unsubscribed by the application. @internal */
  _onUnsubscribed(reason) {
    if (!this._active) return;
    this.state = "unsubscribed";
    this.emit("unsubscribed", { channel: this.channel, reason });
    this.#ready.reject(new WsgateError(ErrorCode.Closed, `unsubscribed from ${this.channel}`));
  }

  /**
   * A message push: delivered unless already seen. @internal
   * @returns {boolean} whether it was delivered
   */
  _onMessage(offset, epoch, data) {
    if (!this._active) return false;
    epoch = epoch ?? "";
    if (!offset) {
      // A channel without history: no position, nothing to compare.
      this.emit("message", { channel: this.channel, offset: 0, epoch, data });
      return true;
    }
    if (epoch !== "" && this.#epoch !== "" && epoch !== this.#epoch) {
      // History was lost and offsets started again (no epoch push came first).
      const previous = this.#epoch;
      const lastSeen = this.#offset;
      this.#setPosition(offset, epoch);
      this.emit("lost", { kind: "epoch", channel: this.channel, epoch, previous, offset: lastSeen });
      if (!this._active) return false; // a "lost" handler unsubscribed
      this.emit("message", { channel: this.channel, offset, epoch, data });
      return true;
    }
    if (epoch !== "" && this.#epoch === "") this.#epoch = epoch;
    if (offset <= this.#offset) {
      this.duplicates++;
      return false;
    }
    this.#offset = offset;
    this.emit("message", { channel: this.channel, offset, epoch: this.#epoch, data });
    return true;
  }

  /** An epoch push: the channel's history was lost. @internal */
  _onEpoch(push) {
    if (!this._active) return;
    const epoch = push.epoch ?? "";
    if (epoch === this.#epoch) return; // the subscribe reply already named it
    const previous = this.#epoch || (push.previous ?? "");
    const lastSeen = this.#epoch === (push.previous ?? "") ? this.#offset : Number(push.offset ?? 0);
    this.#setPosition(0, epoch);
    this.emit("lost", { kind: "epoch", channel: this.channel, epoch, previous, offset: lastSeen });
  }

  /**
   * A gap push: publications from..to are lost for this client. The hub
   * announces a gap to every subscriber; one that resumed may have been
   * given part of it, or all, already: only the rest is reported.
   * @internal
   */
  _onGap(push) {
    if (!this._active) return;
    const to = Number(push.to ?? 0);
    if (to <= this.#offset) return;
    const from = Math.max(Number(push.from ?? 0), this.#offset + 1);
    this.#offset = to;
    this.emit("lost", { kind: "gap", channel: this.channel, from, to, epoch: this.#epoch });
  }

  #setPosition(offset, epoch) {
    this.#offset = offset;
    this.#epoch = epoch;
  }
}

function checkOffset(v) {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new TypeError(`offset must be a non-negative safe integer, got ${v}`);
  return n;
}
