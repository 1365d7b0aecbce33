package presence

import (
	"hash/crc32"
	"strconv"
)

// Key layout, shared with the broker (gateway/broker/redis): a channel
// belongs to partition crc32(channel) % partitions, and the partition is the
// Redis Cluster hash tag, so a channel's presence keys live in the slot of
// its Pub/Sub channel and one FCALL touches one slot.
//
//	<prefix>:{<partition>}:pz:<channel>   zset client → expiry ms
//	<prefix>:{<partition>}:ph:<channel>   hash client → member value
//	<prefix>:{<partition>}:pu:<channel>   hash user → client count
type naming struct {
	prefix     string
	partitions uint32
}

// keys returns channel's three keys (zset, members hash, users hash).
func (n naming) keys(channel string) [3]string {
	tag := n.prefix + ":{" + strconv.FormatUint(uint64(crc32.ChecksumIEEE([]byte(channel))%n.partitions), 10) + "}:"
	return [3]string{tag + "pz:" + channel, tag + "ph:" + channel, tag + "pu:" + channel}
}
