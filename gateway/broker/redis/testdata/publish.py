#!/usr/bin/python3
"""Publish to a wsgate channel from a backend, with Debian's python3-redis.

usage: publish.py REDIS_URL CHANNEL DATA [NODE [IDEMPOTENCY_KEY]]

This is the example from README.md ("Publishing from a backend"): compute the
channel's partition (CRC-32 of its name modulo 64, the gateways'
--redis-partitions), then call the wsgate_publish function, which assigns the
next offset and publishes the envelope atomically — at most once per
idempotency key. Prints "offset epoch", and "replayed" when the key had
already published it.
"""
import sys
import time
import zlib

import redis

PARTITIONS = 64  # must equal the gateways' --redis-partitions
PREFIX = "wsgate"  # must equal the gateways' --redis-prefix
META_TTL_MS = 24 * 3600 * 1000
HISTORY_SIZE, HISTORY_TTL_MS = 100, 5 * 60 * 1000  # the channel's namespace options
IDEMPOTENCY_TTL_MS = 5 * 60 * 1000  # the gateways' --idempotency-ttl


def publish(r, channel, data, key=None, node="backend", cluster=False):
    tag = "%s:{%d}:" % (PREFIX, zlib.crc32(channel.encode()) % PARTITIONS)
    keys = [tag + "m:" + channel, tag + "h:" + channel]  # KEYS: meta, history
    args = [tag + "c:" + channel, channel, data, node, "",  # "": the server stamps the time
            META_TTL_MS, "SPUBLISH" if cluster else "PUBLISH", HISTORY_SIZE, HISTORY_TTL_MS]
    if key:  # at most once per key, through any gateway, for IDEMPOTENCY_TTL_MS
        keys.append(tag + "i:" + channel + "|" + key)
        args.append(IDEMPOTENCY_TTL_MS)
    for attempt in range(20):
        try:
            res = r.fcall("wsgate_publish", len(keys), *keys, *args)
            break
        except redis.ResponseError as e:
            # A Redis that just restarted has no functions until a gateway
            # reloads them (within a second of Redis accepting connections).
            if "Function not found" not in str(e) or attempt == 19:
                raise
            time.sleep(0.1)
    offset, epoch = res[0], res[1]
    return offset, epoch.decode() if isinstance(epoch, bytes) else epoch, len(res) == 3


if __name__ == "__main__":
    url, channel, data = sys.argv[1], sys.argv[2], sys.argv[3].encode()
    node = sys.argv[4] if len(sys.argv) > 4 else "backend"
    key = sys.argv[5] if len(sys.argv) > 5 else None
    offset, epoch, replayed = publish(redis.Redis.from_url(url), channel, data, key, node)
    print(offset, epoch, "replayed" if replayed else "")
