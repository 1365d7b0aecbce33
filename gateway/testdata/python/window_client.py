"""permessage-deflate with a limited server window, for wsgate's /ws
endpoint, built on Python's `websockets` (Debian package python3-websockets).

usage: /usr/bin/python3 window_client.py ws://host:port/ws DOCUMENT.json

A subscriber offers server_max_window_bits=10 (websockets then inflates
with a 1 KiB window) and must have it echoed; a publisher publishes a small
message (a push of 256-1024 bytes) and the JSON document (longer). The
subscriber must receive both intact, the small one compressed and the
document plain. Every compressed frame is also inflated again by zlib with
a 1 KiB window one byte per call, which makes zlib check every
back-reference against the window (in one call it would not). Exits 0 when
every check passes, else prints why and exits 1.
"""

import asyncio
import json
import os
import sys
import time
import zlib

import websockets
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

from interop_common import PROTO, TIMEOUT, Failure, connect, response_extensions

BITS = 10
CHANNEL = f"interop:window-python.{os.getpid()}-{int(time.time() * 1000)}"


def inflate_stepped(data):
    d = zlib.decompressobj(wbits=-BITS)
    out = bytearray()
    data += b"\x00\x00\xff\xff"
    while True:
        chunk = d.decompress(data, 1)
        data = d.unconsumed_tail
        out += chunk
        if not chunk and not data:
            return bytes(out)


def watch_frames(ws, seen):
    """Record, for every data frame the subscriber receives, whether it was
    compressed, and check compressed ones against the window strictly."""
    ext = ws.extensions[0]
    decode = ext.decode

    def checked(frame, *, max_size=None):
        if frame.rsv1:
            try:
                strict = inflate_stepped(frame.data)
            except zlib.error as e:
                raise Failure(f"a compressed frame reaches past the {1 << BITS}-byte window: {e}")
        out = decode(frame, max_size=max_size)
        if frame.rsv1 and strict != out.data:
            raise Failure("a compressed frame inflates differently one byte at a time")
        seen.append((frame.rsv1, len(out.data)))
        return out

    ext.decode = checked


async def next_frame(ws, name):
    raw = await ws.recv()
    if not isinstance(raw, str):
        raise Failure(f"{name}: JSON connection got a binary frame")
    return json.loads(raw)


async def run(url, doc):
    factory = ClientPerMessageDeflateFactory(server_max_window_bits=BITS)
    sub = await connect(url, subprotocols=[PROTO], open_timeout=10, extensions=[factory])
    ext = response_extensions(sub)
    if f"server_max_window_bits={BITS}" not in ext or "server_no_context_takeover" not in ext:
        raise Failure(f"subscriber: Sec-WebSocket-Extensions {ext!r}, want server_max_window_bits={BITS} echoed")
    if [e.name for e in sub.extensions] != ["permessage-deflate"] or sub.extensions[0].remote_max_window_bits != BITS:
        raise Failure(f"subscriber: websockets negotiated {sub.extensions!r}")
    print(f"subscriber: negotiated {ext}")
    seen = []
    watch_frames(sub, seen)
    pub = await connect(url, subprotocols=[PROTO], open_timeout=10)
    await sub.send(json.dumps({"id": 1, "cmd": "subscribe", "channel": CHANNEL}))
    r = await next_frame(sub, "subscriber")
    if r.get("type") != "reply" or r.get("id") != 1 or r.get("error"):
        raise Failure(f"subscribe reply {r!r}")
    small = {"text": "window " * 60}
    for i, data in enumerate([small, doc], start=2):
        await pub.send(json.dumps({"id": i, "cmd": "publish", "channel": CHANNEL, "data": data}))
        r = await next_frame(pub, "publisher")
        if r.get("type") != "reply" or r.get("id") != i or r.get("error"):
            raise Failure(f"publish reply {r!r}")
    for want in [small, doc]:
        m = await next_frame(sub, "subscriber")
        if m.get("type") != "message" or m.get("channel") != CHANNEL or m.get("data") != want:
            raise Failure(f"want the publication, got {str(m)[:200]}")
    pushes = seen[1:]  # after the subscribe reply
    (z1, n1), (z2, n2) = pushes
    if not (256 <= n1 <= 1 << BITS and z1):
        raise Failure(f"small push of {n1} bytes: compressed {z1}, want compressed")
    if not (n2 > 1 << BITS and not z2):
        raise Failure(f"document push of {n2} bytes: compressed {z2}, want plain")
    await sub.close()
    await pub.close()
    print(f"websockets {websockets.version.version}: with server_max_window_bits={BITS}, a push of {n1} bytes "
          f"arrived compressed within the window and one of {n2} bytes plain")


def main():
    url, path = sys.argv[1], sys.argv[2]
    with open(path) as f:
        doc = json.load(f)
    try:
        asyncio.run(asyncio.wait_for(run(url, doc), TIMEOUT))
    except Failure as e:
        print(f"FAIL: {e}")
        sys.exit(1)


if __name__ == "__main__":
    main()
