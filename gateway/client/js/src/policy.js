// What a close code or a refused handshake means for the client
// (codec/README.md §8, README "Close codes").

/**
 * @typedef {object} CloseAction
 * @property {boolean} reconnect  false: stop and report (reconnecting as is cannot help)
 * @property {boolean} newToken   fetch a new token before reconnecting (4004)
 * @property {boolean} throttled  wait longer than usual (4008 slow consumer, 4029 rate limited)
 */

// Codes that mean "this client is broken": reconnecting would loop.
// 1002 protocol error, 1003 wrong frame type for the subprotocol, 1007
// invalid payload, 1009 too big (codec/README.md §8); 1008 policy violation
// and 1010 missing extension are the same kind of client fault.
const clientFaults = new Set([1002, 1003, 1007, 1008, 1009, 1010]);

/**
 * The client's reaction to a close code. Codes not named by the protocol
 * (1005 no status, 1006 abnormal closure — the gateway was killed or the
 * network broke —, 1011–1015, 3000–3999) reconnect with backoff: the
 * backoff bounds the cost of being wrong.
 * @param {number} code
 * @returns {CloseAction}
 */
export function closeAction(code) {
  const act = { reconnect: true, newToken: false, throttled: false };
  if (code === 4004) act.newToken = true;
  else if (code === 4008 || code === 4029) act.throttled = true;
  else if ((code >= 4500 && code <= 4999) || clientFaults.has(code)) act.reconnect = false;
  return act;
}

/**
 * The client's reaction to a handshake refused with an HTTP status (seen only
 * with the `ws` package: browsers and Node's built-in WebSocket hide it and
 * report a close with 1006). 401/403: the credentials are refused — stop.
 * 429/503: reconnect no sooner than Retry-After. Anything else: backoff.
 * @param {number} status
 * @returns {CloseAction}
 */
export function handshakeAction(status) {
  return {
    reconnect: status !== 401 && status !== 403,
    newToken: false,
    throttled: status === 429 || status === 503,
  };
}

/**
 * Retry-After in ms (seconds or an HTTP date), 0 when absent or unreadable.
 * @param {string | undefined | null} value
 * @param {number} now ms since the epoch
 */
export function parseRetryAfter(value, now = Date.now()) {
  if (value == null || value === "") return 0;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const t = Date.parse(value);
  return Number.isNaN(t) ? 0 : Math.max(0, t - now);
}
