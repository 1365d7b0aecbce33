"""permessage-deflate client for wsgate's /ws endpoint, built on Python's
`websockets` (Debian package python3-websockets), which offers
"permessage-deflate; client_max_window_bits" by default and then compresses
what it sends.

usage: /usr/bin/python3 deflate_client.py ws://host:port/ws DOCUMENT.json

Two JSON-protocol connections: one subscribes, the other publishes the JSON
document (compressed by websockets on the way in) and a small message; the
subscriber must receive both intact (the document compressed by wsgate on
the way out). Exits 0 when every check passes, else prints why and exits 1.
"""

import asyncio
import json
import os
import sys
import time

import websockets

from interop_common import PROTO, TIMEOUT, Failure, connect, response_extensions

CHANNEL = f"interop:deflate-python.{os.getpid()}-{int(time.time() * 1000)}"


async def open_conn(url, name):
    ws = await connect(url, subprotocols=[PROTO], open_timeout=10)
    ext = response_extensions(ws)
    if not ext.startswith("permessage-deflate") or "server_no_context_takeover" not in ext \
            or "client_no_context_takeover" not in ext:
        raise Failure(f"{name}: Sec-WebSocket-Extensions {ext!r}, want permessage-deflate without context takeover")
    names = [e.name for e in ws.extensions]
    if names != ["permessage-deflate"]:
        raise Failure(f"{name}: websockets negotiated {names}")
    print(f"{name}: negotiated {ext}")
    return ws


async def next_frame(ws, name):
    raw = await ws.recv()
    if not isinstance(raw, str):
        raise Failure(f"{name}: JSON connection got a binary frame")
    return json.loads(raw)


async def run(url, doc):
    sub = await open_conn(url, "subscriber")
    pub = await open_conn(url, "publisher")
    await sub.send(json.dumps({"id": 1, "cmd": "subscribe", "channel": CHANNEL}))
    r = await next_frame(sub, "subscriber")
    if r.get("type") != "reply" or r.get("id") != 1 or r.get("error"):
        raise Failure(f"subscribe reply {r!r}")
    small = {"n": 1}
    for i, data in enumerate([doc, small], start=2):
        await pub.send(json.dumps({"id": i, "cmd": "publish", "channel": CHANNEL, "data": data}))
        r = await next_frame(pub, "publisher")
        if r.get("type") != "reply" or r.get("id") != i or r.get("error"):
            raise Failure(f"publish reply {r!r}")
    for want in [doc, small]:
        m = await next_frame(sub, "subscriber")
        if m.get("type") != "message" or m.get("channel") != CHANNEL:
            raise Failure(f"want a message push, got {str(m)[:200]}")
        if m.get("data") != want:
            raise Failure(f"publication arrived altered: {str(m.get('data'))[:200]}")
    await sub.close()
    await pub.close()
    print(f"websockets {websockets.version.version}: document of {len(json.dumps(doc))} bytes and a small message "
          "published and received with permessage-deflate")


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
