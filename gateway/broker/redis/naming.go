package redis

import (
	"hash/crc32"
	"strconv"
	"strings"
)

// Key layout. Every channel belongs to one of a fixed number of partitions
// (CRC-32/IEEE of the channel name modulo Partitions). The partition is a
// Redis Cluster hash tag, so a channel's Pub/Sub channel and its meta key
// live in one slot (a publish script may touch both), and all channels of a
// partition live on one node (one pub/sub connection per node serves them).
//
//	<prefix>:{<partition>}:c:<channel>   Pub/Sub channel carrying envelopes
//	<prefix>:{<partition>}:m:<channel>   hash: o = last offset, e = epoch
//	<prefix>:{<partition>}:h:<channel>   stream: the channel's history
//	<prefix>:{<partition>}:i:<channel>|<key>  string: an idempotency key's
//	                                     "offset|epoch|sha1(data)"
//
// A backend computes the same names to publish (see README, "Publishing
// from a backend").
type naming struct {
	prefix     string
	partitions uint32
}

func (n naming) partition(channel string) uint32 {
	return crc32.ChecksumIEEE([]byte(channel)) % n.partitions
}

func (n naming) tag(channel string) string {
	return n.prefix + ":{" + strconv.FormatUint(uint64(n.partition(channel)), 10) + "}:"
}

// pubsubChannel is the Redis Pub/Sub channel of a wsgate channel.
func (n naming) pubsubChannel(channel string) string { return n.tag(channel) + "c:" + channel }

// metaKey is the hash holding a channel's offset and epoch.
func (n naming) metaKey(channel string) string { return n.tag(channel) + "m:" + channel }

// historyKey is the stream holding a channel's retained publications.
func (n naming) historyKey(channel string) string { return n.tag(channel) + "h:" + channel }

// idempotencyKey is the string claimed by an idempotent publish of key on
// channel. '|' cannot occur in a channel name, so (channel, key) pairs
// never collide.
func (n naming) idempotencyKey(channel, key string) string {
	return n.tag(channel) + "i:" + channel + "|" + key
}

// channelOf is the wsgate channel of a Pub/Sub channel name (the inverse
// of pubsubChannel), or "" for a name of another shape (a probe).
func channelOf(pubsub string) string {
	if i := strings.Index(pubsub, "}:c:"); i >= 0 {
		return pubsub[i+len("}:c:"):]
	}
	return ""
}

// Slot is Redis Cluster's key slot: CRC16 (XMODEM) of the hash tag, mod
// 16384. Exported for tests and tools that check where a channel lives.
func Slot(key string) uint16 {
	if i := indexByte(key, '{'); i >= 0 {
		if j := indexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	var crc uint16
	for k := 0; k < len(key); k++ {
		crc ^= uint16(key[k]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc % 16384
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}
