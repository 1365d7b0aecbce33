package deflate

// Window is a connection's permessage-deflate agreement in one byte: 0
// when none was negotiated, otherwise the base-2 logarithm of the largest
// LZ77 window the client inflates server messages with — the offer's
// server_max_window_bits (8–15), or 15 when it stated none.
//
// compress/flate cannot compress into a window smaller than 32 KiB, yet
// every window is honoured exactly: wsgate always answers
// server_no_context_takeover, so each compressed message is a DEFLATE
// stream of its own, and a back-reference in it reaches at most to the
// message's first byte. A message of at most 2^N bytes therefore never
// uses a distance over 2^N, whatever the compressor's own window. A
// connection with window N gets compressed frames for such messages and
// plain frames (RSV1 clear, allowed per message, §6) for longer ones, so
// the compressed frame the hub builds once per publication stays shareable
// by every connection it fits.
//
// Window 8 is accepted too. zlib cannot compress raw DEFLATE into a
// 256-byte window (deflateInit2 refuses it since 1.2.9, and a wrapped
// stream is silently given 9), so zlib-based servers decline or mishandle
// server_max_window_bits=8; the length rule needs no compressor support,
// and zlib inflates a raw 256-byte window fine. With the default
// --compression-min-bytes (256) such a connection in practice receives
// plain frames, which is still a correct answer to its offer.
type Window uint8

// NoWindow: permessage-deflate was not negotiated.
const NoWindow Window = 0

// Negotiated reports whether the connection agreed on permessage-deflate.
func (w Window) Negotiated() bool { return w != NoWindow }

// Fits reports whether a message of n bytes (uncompressed) may be sent
// compressed to a connection that agreed on w: compression was negotiated
// and no back-reference in the message can exceed the client's window.
func (w Window) Fits(n int) bool {
	return w >= maxWindowBits || (w >= minWindowBits && n <= 1<<w)
}
