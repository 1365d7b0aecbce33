// Reconnect delays: exponential with full jitter ("Exponential Backoff And
// Jitter", AWS Architecture Blog): attempt n waits a uniformly random time
// in [floor, floor + min(max, min·factor^n)). Full jitter spreads a crowd of
// clients that lost the same gateway evenly over the window instead of
// bringing them back in waves.

export const defaultBackoff = Object.freeze({
  min: 500, // ms: the first window
  max: 20000, // ms: the largest window
  factor: 2,
  healthyAfter: 10000, // ms connected before the attempt count starts again
  throttled: 5000, // ms added to the delay after 4008/4029 (slow consumer, rate limited)
  maxRetryAfter: 300000, // ms: the most a handshake's Retry-After may add
});

export class Backoff {
  #attempt = 0;
  #opts;
  #random;

  /**
   * @param {Partial<typeof defaultBackoff>} [opts]
   * @param {() => number} [random] uniform in [0, 1); tests pass their own
   */
  constructor(opts = {}, random = Math.random) {
    const o = { ...defaultBackoff, ...opts };
    if (!(o.min > 0) || !(o.max >= o.min) || !(o.factor >= 1)) {
      throw new RangeError(`backoff: need 0 < min <= max and factor >= 1, got ${JSON.stringify(o)}`);
    }
    this.#opts = o;
    this.#random = random;
  }

  get options() {
    return this.#opts;
  }

  /** How many delays were drawn since the last reset. */
  get attempt() {
    return this.#attempt;
  }

  /** The window of the next delay, without the floor. */
  window() {
    const { min, max, factor } = this.#opts;
    // min·factor^attempt, computed without overflowing to Infinity.
    const w = min * Math.pow(factor, Math.min(this.#attempt, 64));
    return Math.min(max, w);
  }

  /**
   * Draws the next delay in ms and counts the attempt.
   * @param {number} [floor] ms added before the jittered part (throttling, Retry-After)
   */
  next(floor = 0) {
    const d = floor + this.#random() * this.window();
    this.#attempt++;
    return d;
  }

  reset() {
    this.#attempt = 0;
  }
}
