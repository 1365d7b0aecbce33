// Package rediskeys is wsgate's Redis key layout, in one place: the Redis
// broker (gateway/broker/redis) and Redis presence (gateway/presence) name
// their keys here, and a backend that publishes through Redis directly
// computes the same names (README, "Publishing from a backend").
//
// Every channel belongs to one of a fixed number of partitions (CRC-32/IEEE
// of the channel name modulo Partitions). The partition is a Redis Cluster
// hash tag, so all keys of a channel — its Pub/Sub channel, meta key,
// history and presence — live in one slot (one script may touch them all),
// and all channels of a partition live on one node (one pub/sub connection
// per node serves them).
//
//	<prefix>:{<partition>}:c:<channel>   Pub/Sub channel carrying envelopes
//	<prefix>:{<partition>}:m:<channel>   hash: o = last offset, e = epoch
//	<prefix>:{<partition>}:h:<channel>   stream: the channel's history
//	<prefix>:{<partition>}:i:<channel>|<key>  string: an idempotency key's
//	                                     "offset|epoch|sha1(data)"
//	<prefix>:{<partition>}:pz:<channel>  presence zset: client → expiry ms
//	<prefix>:{<partition>}:ph:<channel>  presence hash: client → member value
//	<prefix>:{<partition>}:pu:<channel>  presence hash: user → client count
package rediskeys

import (
	"hash/crc32"
	"strconv"
	"strings"
)

// Defaults of the layout's two parameters.
const (
	DefaultPrefix     = "wsgate"
	DefaultPartitions = 64
)

// Defaults returns prefix and partitions, with the defaults for what is
// unset: the broker and presence must agree on both.
func Defaults(prefix string, partitions int) (string, int) {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if partitions <= 0 {
		partitions = DefaultPartitions
	}
	return prefix, partitions
}

// Layout names the keys of one deployment: every instance and every
// backend must use the same Prefix and Partitions.
type Layout struct {
	Prefix     string
	Partitions uint32
}

// Partition is the channel's partition.
func (l Layout) Partition(channel string) uint32 {
	return crc32.ChecksumIEEE([]byte(channel)) % l.Partitions
}

// Tag is the prefix every key of channel starts with, hash tag included.
func (l Layout) Tag(channel string) string {
	return l.Prefix + ":{" + strconv.FormatUint(uint64(l.Partition(channel)), 10) + "}:"
}

// PubSub is the Redis Pub/Sub channel of a wsgate channel.
func (l Layout) PubSub(channel string) string { return l.Tag(channel) + "c:" + channel }

// Meta is the hash holding a channel's offset and epoch.
func (l Layout) Meta(channel string) string { return l.Tag(channel) + "m:" + channel }

// History is the stream holding a channel's retained publications.
func (l Layout) History(channel string) string { return l.Tag(channel) + "h:" + channel }

// Idempotency is the string claimed by an idempotent publish of key on
// channel. '|' cannot occur in a channel name, so (channel, key) pairs
// never collide.
func (l Layout) Idempotency(channel, key string) string {
	return l.Tag(channel) + "i:" + channel + "|" + key
}

// Presence returns channel's three presence keys: the zset, the members
// hash and the users hash.
func (l Layout) Presence(channel string) [3]string {
	tag := l.Tag(channel)
	return [3]string{tag + "pz:" + channel, tag + "ph:" + channel, tag + "pu:" + channel}
}

// ChannelOf is the wsgate channel of a Pub/Sub channel name (the inverse
// of PubSub), or "" for a name of another shape (a probe).
func ChannelOf(pubsub string) string {
	if i := strings.Index(pubsub, "}:c:"); i >= 0 {
		return pubsub[i+len("}:c:"):]
	}
	return ""
}

// Slot is Redis Cluster's key slot: CRC16 (XMODEM) of the hash tag, mod
// 16384.
func Slot(key string) uint16 {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
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
