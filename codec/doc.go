// Package codec holds wsgate's wire formats as pure functions over byte
// slices: no I/O, no goroutines, no package-level mutable state.
//
// Two formats live here:
//
//   - the client protocol carried over WebSocket: one command per frame
//     from the client, replies and pushes from the server, in MessagePack
//     (binary frames, subprotocol "wsgate.v1.msgpack", the default) or in
//     JSON (text frames, "wsgate.v1.json");
//   - the broker envelope: one MessagePack map per publication, travelling
//     between gateway instances and from backends (through Redis).
//
// Everything that decodes bytes coming from outside the process (client
// frames, broker envelopes) is hand-written, bounded and allocation-safe:
// every declared length is checked against the bytes that remain before it
// is used, nesting is limited, and strings and payloads are returned as
// sub-slices of the input (zero copy). Those slices alias the caller's
// buffer: they are valid only as long as that buffer is not reused, so a
// caller that keeps a value past the frame's lifetime must copy it.
//
// Encoders are append-style (AppendX(dst, ...) []byte) so that a caller
// with a reusable buffer encodes without allocating. The message push, built
// once per publication and shared by every subscriber, allocates nothing
// when dst has room.
//
// README.md next to this file is the protocol specification for client
// authors.
package codec
