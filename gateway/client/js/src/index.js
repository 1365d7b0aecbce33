// wsgate-client: the JavaScript client of wsgate (codec/README.md), for
// browsers and Node ≥ 20. See README.md beside this package.

export { Client } from "./client.js";
export { Emitter } from "./emitter.js";
export { Subscription } from "./subscription.js";
export { WsgateError, ConnectionError, ErrorCode } from "./errors.js";
export { Backoff, defaultBackoff } from "./backoff.js";
export { closeAction, handshakeAction } from "./policy.js";
export { PROTOCOL_JSON, PROTOCOL_MSGPACK } from "./codec.js";
