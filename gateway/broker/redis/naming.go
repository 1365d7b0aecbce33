package redis

import "github.com/wsgate/wsgate/gateway/rediskeys"

// naming is the broker's view of the Redis key layout, which
// gateway/rediskeys owns (presence shares it: a channel's keys all live in
// one slot).
type naming struct{ l rediskeys.Layout }

func newNaming(prefix string, partitions int) naming {
	return naming{rediskeys.Layout{Prefix: prefix, Partitions: uint32(partitions)}}
}

func (n naming) partition(channel string) uint32 { return n.l.Partition(channel) }

// pubsubChannel is the Redis Pub/Sub channel of a wsgate channel.
func (n naming) pubsubChannel(channel string) string { return n.l.PubSub(channel) }

// metaKey is the hash holding a channel's offset and epoch.
func (n naming) metaKey(channel string) string { return n.l.Meta(channel) }

// historyKey is the stream holding a channel's retained publications.
func (n naming) historyKey(channel string) string { return n.l.History(channel) }

// idempotencyKey is the string claimed by an idempotent publish of key on
// channel.
func (n naming) idempotencyKey(channel, key string) string { return n.l.Idempotency(channel, key) }

// channelOf is the wsgate channel of a Pub/Sub channel name, or "" for a
// name of another shape (a probe).
func channelOf(pubsub string) string { return rediskeys.ChannelOf(pubsub) }

// Slot is Redis Cluster's key slot (rediskeys.Slot). Exported for tests
// and tools that check where a channel lives.
func Slot(key string) uint16 { return rediskeys.Slot(key) }
