package pubsub

import "encoding/binary"

// Payload layout (big endian), padded to Config.Size:
//
//	[0]      payloadMagic
//	[1:5]    publisher id
//	[5:9]    channel index
//	[9:17]   sequence: per publisher, +1 for every publish attempt
//	[17:25]  send time, Unix nanoseconds
//	[25:]    padding: byte i is padByte(i)
//
// The magic byte is not valid UTF-8 on its own, so the payload is never
// JSON text and JSON subscribers always get it as "b64": the binary path
// of the protocol is the one exercised.
const (
	payloadMagic  = 0xA5
	PayloadHeader = 25 // smallest payload: the header alone
)

// header is what a payload carries besides padding.
type header struct {
	publisher uint32
	channel   uint32
	seq       uint64
	sentNanos int64
}

func padByte(i int) byte { return byte(i*7 + 3) }

// newPayload returns a size-byte buffer with the padding filled in; put
// writes each publication's header into it.
func newPayload(size int) []byte {
	b := make([]byte, size)
	for i := PayloadHeader; i < size; i++ {
		b[i] = padByte(i)
	}
	return b
}

func (h header) put(b []byte) {
	b[0] = payloadMagic
	binary.BigEndian.PutUint32(b[1:5], h.publisher)
	binary.BigEndian.PutUint32(b[5:9], h.channel)
	binary.BigEndian.PutUint64(b[9:17], h.seq)
	binary.BigEndian.PutUint64(b[17:25], uint64(h.sentNanos))
}

// parsePayload reads a payload's header and checks its size and last
// padding byte (a cheap guard against truncated or spliced data).
func parsePayload(b []byte, size int) (header, bool) {
	if len(b) != size || b[0] != payloadMagic {
		return header{}, false
	}
	if last := len(b) - 1; last >= PayloadHeader && b[last] != padByte(last) {
		return header{}, false
	}
	return header{
		publisher: binary.BigEndian.Uint32(b[1:5]),
		channel:   binary.BigEndian.Uint32(b[5:9]),
		seq:       binary.BigEndian.Uint64(b[9:17]),
		sentNanos: int64(binary.BigEndian.Uint64(b[17:25])),
	}, true
}

// pubHash is the value one publication adds to its channel's hash sum
// (publisher < 2¹⁶ and seq < 2⁴⁸ keep the pair distinct before mixing).
// splitmix64's finalizer spreads (publisher, seq) over 64 bits, so two
// different sets of publications have equal sums only by a 2⁻⁶⁴ accident.
func pubHash(publisher uint32, seq uint64) uint64 {
	x := (uint64(publisher)<<48 ^ seq) + 0x9e3779b97f4a7c15
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
