#!/usr/bin/python3
"""Publish to a wsgate channel from a backend, with Debian's python3-redis.

usage: publish.py REDIS_URL CHANNEL DATA [NODE]

This is the example from README.md ("Publishing from a backend"): compute the
channel's partition (CRC-32 of its name modulo 64, the gateways'
--redis-partitions), then call the wsgate_publish function, which assigns the
next offset and publishes the envelope atomically. Prints "offset epoch".
"""
import sys
import zlib

import redis

PARTITIONS = 64  # must equal the gateways' --redis-partitions
PREFIX = "wsgate"  # must equal the gateways' --redis-prefix
META_TTL_MS = 24 * 3600 * 1000
HISTORY_SIZE, HISTORY_TTL_MS = 100, 5 * 60 * 1000  # the channel's namespace options


def publish(r, channel, data, node="backend", cluster=False):
    tag = "%s:{%d}:" % (PREFIX, zlib.crc32(channel.encode()) % PARTITIONS)
    offset, epoch = r.fcall(
        "wsgate_publish", 2, tag + "m:" + channel, tag + "h:" + channel,  # KEYS: meta, history
        tag + "c:" + channel, channel, data, node, "",        # "": the server stamps the time
        META_TTL_MS, "SPUBLISH" if cluster else "PUBLISH", HISTORY_SIZE, HISTORY_TTL_MS)
    return offset, epoch.decode() if isinstance(epoch, bytes) else epoch


if __name__ == "__main__":
    url, channel, data = sys.argv[1], sys.argv[2], sys.argv[3].encode()
    node = sys.argv[4] if len(sys.argv) > 4 else "backend"
    offset, epoch = publish(redis.Redis.from_url(url), channel, data, node)
    print(offset, epoch)
