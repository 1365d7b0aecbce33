// Errors a command can end with: the protocol's error codes
// (codec/README.md §6) and a few the client itself produces.

export const ErrorCode = Object.freeze({
  // Client side: never sent by a server (they are all below 100).
  Timeout: 1, // no reply in time (a publish whose outcome became unknown in any attempt: OutcomeUnknown)
  Closed: 2, // the client was closed, or stopped for good, before the command completed (such a publish: OutcomeUnknown)
  Disconnected: 3, // the connection was lost with the command in flight and it cannot be retried
  // Server side (codec/README.md §6).
  BadRequest: 100,
  UnknownCommand: 101,
  BadChannel: 102,
  TooManyChannels: 103,
  AlreadySubscribed: 104,
  NotSubscribed: 105,
  PayloadTooLarge: 106,
  RateLimited: 107,
  PermissionDenied: 108,
  Unauthorized: 109,
  NotAvailable: 110,
  Internal: 111,
  Unrecoverable: 112,
  OutcomeUnknown: 113,
  IdempotencyKeyReused: 114,
});

/** The error a command's promise rejects with. `code` is one of ErrorCode. */
export class WsgateError extends Error {
  /**
   * @param {number} code
   * @param {string} message
   * @param {{cause?: unknown}} [opts]
   */
  constructor(code, message, opts) {
    super(message, opts);
    this.name = "WsgateError";
    this.code = code;
  }

  /** Whether retrying (after a pause) may succeed: 107, 111, 113 and timeouts. */
  get temporary() {
    return (
      this.code === ErrorCode.RateLimited ||
      this.code === ErrorCode.Internal ||
      this.code === ErrorCode.OutcomeUnknown ||
      this.code === ErrorCode.Timeout
    );
  }
}

/**
 * Why the client stopped for good (the "disconnected" event's error): a
 * close code it must not reconnect after, a refused handshake, a failing
 * token source.
 */
export class ConnectionError extends Error {
  /**
   * @param {string} message
   * @param {{code?: number, status?: number, cause?: unknown}} [opts]
   */
  constructor(message, opts = {}) {
    super(message, { cause: opts.cause });
    this.name = "ConnectionError";
    /** The WebSocket close code (0 when none). */
    this.code = opts.code ?? 0;
    /** The HTTP status of a refused handshake (0 when unknown). */
    this.status = opts.status ?? 0;
  }
}
