// Package pubsub checks wsgate's fan-out end to end: many subscribers on a
// few channels, a few publishers, and a verdict on whether every subscriber
// received every publication of its channel exactly once, in order, and
// nothing else.
//
// It drives running gateways over the client protocol (codec/README.md):
// subscribers live in loadclient pools (one event loop holds thousands of
// connections), publishers are goroutines on a small pool of their own.
//
// How a run proves exactly-once with O(publishers) memory per subscriber:
// every publish attempt carries (publisher, sequence, channel, send time)
// in its payload, and the sequence grows with every attempt, retries
// included. A publisher counts, per channel, the publications the gateway
// accepted and a sum of a 64-bit hash of their (publisher, sequence). A
// subscriber keeps the last sequence per publisher (order, duplicates),
// its own count and hash sum, and its last offset. Equal counts and equal
// hash sums mean the received set is the accepted set, up to a hash
// collision; strictly increasing sequences mean per-publisher order held.
package pubsub
