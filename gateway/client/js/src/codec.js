// The two encodings of the wire protocol (codec/README.md §1–2) and the
// conversion of publication data between the wire and the application.
//
// MessagePack is loaded with a dynamic import only when it is used, so a
// browser page that speaks JSON needs no MessagePack file at all.

export const PROTOCOL_MSGPACK = "wsgate.v1.msgpack";
export const PROTOCOL_JSON = "wsgate.v1.json";

const utf8 = new TextEncoder();
const utf8dec = new TextDecoder("utf-8", { fatal: true });

/**
 * @typedef {object} Codec
 * @property {"msgpack"|"json"} name
 * @property {string} protocol        the subprotocol offered
 * @property {(frame: object) => string | Uint8Array} encode
 * @property {(data: string | ArrayBuffer | Uint8Array) => any} decode
 * @property {(frame: object, format: string) => any} inData  a received frame's data → application value
 */

/** The JSON codec: text frames, `data` is any JSON value. */
export const jsonCodec = Object.freeze({
  name: "json",
  protocol: PROTOCOL_JSON,
  encode: (frame) => JSON.stringify(frame),
  decode(data) {
    if (typeof data !== "string") {
      throw new TypeError("binary frame on a JSON connection");
    }
    return JSON.parse(data);
  },
  inData(frame, format) {
    if (frame.b64 != null) {
      // Bytes that are not JSON text (e.g. from a MessagePack publisher).
      const bytes = fromBase64(frame.b64);
      return format === "json" ? parseJSONBytes(bytes) : bytes;
    }
    return frame.data;
  },
});

/**
 * The MessagePack codec over @msgpack/msgpack's encode/decode.
 * @param {{encode: Function, decode: Function}} mp
 * @returns {Codec}
 */
export function msgpackCodec(mp) {
  return Object.freeze({
    name: "msgpack",
    protocol: PROTOCOL_MSGPACK,
    encode: (frame) => mp.encode(frame, { ignoreUndefined: true }),
    decode(data) {
      if (typeof data === "string") throw new TypeError("text frame on a MessagePack connection");
      return mp.decode(data instanceof ArrayBuffer ? new Uint8Array(data) : data);
    },
    inData(frame, format) {
      let d = frame.data;
      if (d == null) d = new Uint8Array(0);
      else if (typeof d === "string") d = utf8.encode(d); // servers write bin; str is accepted
      return format === "json" ? parseJSONBytes(d) : d;
    },
  });
}

/**
 * Loads the codec for an encoding. mp: an already loaded @msgpack/msgpack
 * (or anything with its encode/decode), else it is imported on demand.
 * @param {"msgpack"|"json"} encoding
 * @param {{encode: Function, decode: Function}} [mp]
 * @returns {Promise<Codec>}
 */
export async function loadCodec(encoding, mp) {
  if (encoding === "json") return jsonCodec;
  if (encoding !== "msgpack") throw new TypeError(`encoding must be "msgpack" or "json", got ${encoding}`);
  if (!mp) {
    try {
      mp = await import("@msgpack/msgpack");
    } catch (err) {
      throw new Error(
        'encoding "msgpack" needs the @msgpack/msgpack package (install it, map it with an import map, ' +
          'or pass options.msgpack); or use encoding "json"',
        { cause: err },
      );
    }
  }
  return msgpackCodec(mp);
}

/**
 * An application value as the wire's `data` for an encoding: checked when
 * the command is made (before any codec is loaded), so a wrong type throws
 * at the call. The result is a copy, never the application's object or
 * buffer: what is sent (and resent after a reconnect, under the same
 * idempotency key) is the data as it was at the call.
 * @param {"msgpack"|"json"} encoding
 * @param {any} value
 * @param {"raw"|"json"} format
 */
export function outData(encoding, value, format) {
  if (value === undefined) throw new TypeError("publish needs data (null is a JSON value; undefined is not)");
  if (encoding === "json") {
    if (format === "raw" && isBytes(value)) {
      throw new TypeError("the JSON encoding carries JSON values, not bytes: use encoding msgpack");
    }
    // Encoded again with its frame when sent, which may be after a
    // reconnect: a value JSON cannot carry fails here, and the copy is
    // what JSON made of it now (it encodes again to the same text).
    return JSON.parse(jsonText(value));
  }
  if (format === "json") return utf8.encode(jsonText(value));
  if (isBytes(value)) return toUint8(value).slice();
  if (typeof value === "string") return utf8.encode(value);
  throw new TypeError('with encoding "msgpack" and dataFormat "raw", data must be bytes or a string');
}

/** value as JSON text; a TypeError that says so for what JSON cannot carry (BigInt, a cycle, a function). */
function jsonText(value) {
  let text;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    throw new TypeError(`publish data cannot be encoded as JSON: ${err?.message ?? err}`, { cause: err });
  }
  if (text === undefined) throw new TypeError(`publish data cannot be encoded as JSON: a ${typeof value}`);
  return text;
}

/** A received JSON-text payload as a value; bytes that are not JSON stay bytes. */
function parseJSONBytes(bytes) {
  try {
    return JSON.parse(utf8dec.decode(bytes));
  } catch {
    return bytes;
  }
}

function isBytes(v) {
  return v instanceof Uint8Array || v instanceof ArrayBuffer || ArrayBuffer.isView(v);
}

function toUint8(v) {
  if (v instanceof Uint8Array) return v;
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

/** Standard base64 (with padding) → bytes, in browsers and Node alike. */
export function fromBase64(s) {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
