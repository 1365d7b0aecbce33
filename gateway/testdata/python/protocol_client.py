"""Protocol client for wsgate's /ws endpoint (codec/README.md) in MessagePack
mode, built on Python's `websockets` and `msgpack` (Debian packages
python3-websockets, python3-msgpack): neither the WebSocket nor the encoding
side shares code with the server or the Go tests, so a reading of the spec
that only our own code agrees with fails here.

usage: /usr/bin/python3 protocol_client.py ws://host:port/ws

Exits 0 when every check passes; otherwise prints what failed and exits 1.
"""

import asyncio
import os
import sys
import time

import msgpack
import websockets

# websockets >= 13 has the new asyncio implementation; older releases (Debian
# bookworm ships 10.4) only have the legacy one. Both expose what is used
# here (subprotocol, send, recv, close, wait_closed, close_code).
try:
    from websockets.asyncio.client import connect
except ImportError:
    from websockets.client import connect

PROTO = "wsgate.v1.msgpack"
GLOBAL_TIMEOUT = 20.0
N_PUBLISH = 5

# codec/README.md §6.
BAD_REQUEST = 100
UNKNOWN_COMMAND = 101
BAD_CHANNEL = 102
NOT_SUBSCRIBED = 105
# codec/README.md §1, §4, §8.
CLOSE_UNSUPPORTED_DATA = 1003
CLOSE_INVALID_PAYLOAD = 1007

# One channel per run, so a rerun against a long-lived server never sees
# another run's publications.
CHANNEL = f"interop:python-msgpack.{os.getpid()}-{int(time.time() * 1000)}"


class Failure(Exception):
    pass


def is_uint(v):
    # bool is an int subclass in Python; a msgpack true is not an offset.
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def payload(i):
    """Every byte value, non-JSON and invalid UTF-8, so the server must treat
    data as opaque bytes; a different length per publication."""
    return bytes((i * 37 + j * 101) & 0xFF for j in range(40 + i))


class Client:
    """One /ws connection: commands go out as msgpack in binary frames;
    every incoming frame must be binary and decode to a map."""

    def __init__(self, name, state):
        self.name = name
        self.state = state

    async def open(self, url):
        self.state["step"] = f"connecting with {PROTO}"
        self.ws = await connect(url, subprotocols=[PROTO], open_timeout=10)
        # websockets itself rejects a protocol we did not offer; this catches
        # a server that picked none.
        if self.ws.subprotocol != PROTO:
            raise Failure(f"{self.name}: negotiated subprotocol {self.ws.subprotocol!r}, want {PROTO!r}")
        return self

    def where(self):
        return f"{self.name}: {self.state['step']}"

    async def send(self, cmd):
        await self.ws.send(msgpack.packb(cmd, use_bin_type=True))

    async def next(self):
        try:
            raw = await self.ws.recv()
        except websockets.exceptions.ConnectionClosed as e:
            raise Failure(f"{self.where()}: connection closed unexpectedly: {e}") from None
        # websockets returns str for a text message and bytes for a binary one.
        if isinstance(raw, str):
            raise Failure(f"{self.where()}: msgpack connection got a text frame: {raw!r}")
        try:
            frame = msgpack.unpackb(raw, raw=False)
        except Exception as e:
            raise Failure(f"{self.where()}: undecodable msgpack frame {raw.hex()}: {e}") from None
        if not isinstance(frame, dict):
            raise Failure(f"{self.where()}: server frame is not a map: {frame!r}")
        return frame

    async def reply(self, id_):
        frame = await self.next()
        if frame.get("type") != "reply":
            raise Failure(f"{self.where()}: want the reply to id {id_}, got {frame!r}")
        if frame.get("id") != id_:
            raise Failure(f"{self.where()}: reply has id {frame.get('id')!r}, want {id_}: {frame!r}")
        return frame

    async def ok_reply(self, id_):
        frame = await self.reply(id_)
        if frame.get("error") is not None:
            raise Failure(f"{self.where()}: error reply {frame!r}")
        return frame

    async def error_reply(self, id_, code):
        frame = await self.reply(id_)
        err = frame.get("error")
        if not isinstance(err, dict):
            raise Failure(f"{self.where()}: want error {code}, got {frame!r}")
        if err.get("code") != code:
            raise Failure(f"{self.where()}: error code {err.get('code')!r}, want {code}: {frame!r}")
        if not isinstance(err.get("message"), str):
            raise Failure(f"{self.where()}: error without a message string: {frame!r}")
        return frame

    async def expect_closed_with(self, code):
        """Waits for the server to close with code; any frame before the
        close (a reply, say) is a failure."""
        try:
            raw = await self.ws.recv()
        except websockets.exceptions.ConnectionClosed:
            pass
        else:
            raise Failure(f"{self.where()}: got a frame before the close: {raw!r}")
        await self.ws.wait_closed()
        # close_code is the code in the server's close frame (1005 if it had
        # none, 1006 if the server sent no close frame at all).
        if self.ws.close_code != code:
            raise Failure(
                f"{self.where()}: closed with {self.ws.close_code} (reason {self.ws.close_reason!r}), want {code}"
            )

    async def close(self):
        await self.ws.close(code=1000)


async def run(url, state):
    # --- round trip: subscribe, publish N, receive N in order ---
    sub = await Client("subscriber", state).open(url)
    pub = await Client("publisher", state).open(url)

    state["step"] = "subscribe"
    await sub.send({"id": 1, "cmd": "subscribe", "channel": CHANNEL})
    sub_reply = await sub.ok_reply(1)
    if not is_uint(sub_reply.get("offset")):
        raise Failure(f"subscribe reply: offset {sub_reply.get('offset')!r} is not an unsigned integer: {sub_reply!r}")
    if not isinstance(sub_reply.get("epoch"), str):
        raise Failure(f"subscribe reply: epoch {sub_reply.get('epoch')!r} is not a string: {sub_reply!r}")

    # Publish everything before reading: replies may come back in any order
    # (README §3), so they are matched by id.
    state["step"] = "publish"
    for i in range(N_PUBLISH):
        await pub.send({"id": 100 + i, "cmd": "publish", "channel": CHANNEL, "data": payload(i)})
    pub_replies = {}
    for _ in range(N_PUBLISH):
        frame = await pub.next()
        if frame.get("type") != "reply" or frame.get("error") is not None:
            raise Failure(f"publish: publisher got {frame!r}, want a success reply")
        fid = frame.get("id")
        if not (isinstance(fid, int) and 100 <= fid < 100 + N_PUBLISH) or fid in pub_replies:
            raise Failure(f"publish: reply with unexpected or repeated id: {frame!r}")
        pub_replies[fid] = frame

    last = sub_reply["offset"]
    for i in range(N_PUBLISH):
        state["step"] = f"receive publication {i}"
        frame = await sub.next()
        where = sub.where()
        if frame.get("type") != "message":
            raise Failure(f"{where}: got {frame!r}, want a message push")
        if frame.get("channel") != CHANNEL:
            raise Failure(f"{where}: channel {frame.get('channel')!r}, want {CHANNEL!r}")
        # The channel is new, so every publication lies above the top offset
        # the subscribe reply reported (README §10), and offsets strictly
        # increase within the epoch (§9).
        off = frame.get("offset")
        if not is_uint(off) or off <= last:
            raise Failure(f"{where}: offset {off!r} does not increase past {last}: {frame!r}")
        last = off
        # msgpack decodes bin as bytes (and str as str, which would fail here:
        # the README says servers write data as bin).
        if frame.get("data") != payload(i):
            raise Failure(f"{where}: data {frame.get('data')!r}, want {payload(i)!r} (out of order or altered)")
        # A publish reply that reports a position must agree with the push.
        pr = pub_replies[100 + i]
        if pr.get("offset") is not None and pr["offset"] != off:
            raise Failure(f"{where}: publish reply {pr!r} says offset {pr['offset']}, push says {off}")
        if pr.get("epoch") is not None and pr["epoch"] != sub_reply["epoch"]:
            raise Failure(f"{where}: publish reply epoch {pr['epoch']!r} differs from the subscribe reply's {sub_reply['epoch']!r}")

    # --- ping and error replies ---
    state["step"] = "ping"
    await sub.send({"id": 2, "cmd": "ping"})
    pong = await sub.ok_reply(2)

    state["step"] = "subscribe to an invalid channel name"
    await sub.send({"id": 3, "cmd": "subscribe", "channel": "bad channel"})
    await sub.error_reply(3, BAD_CHANNEL)

    state["step"] = "unsubscribe from a channel not subscribed"
    await sub.send({"id": 4, "cmd": "unsubscribe", "channel": CHANNEL + ".other"})
    await sub.error_reply(4, NOT_SUBSCRIBED)

    state["step"] = "unknown command"
    await sub.send({"id": 5, "cmd": "frobnicate", "channel": CHANNEL})
    await sub.error_reply(5, UNKNOWN_COMMAND)

    state["step"] = "subscribe without a channel"
    await sub.send({"id": 6, "cmd": "subscribe"})
    await sub.error_reply(6, BAD_REQUEST)

    # After all that the connection still works and is still subscribed.
    state["step"] = "unsubscribe"
    await sub.send({"id": 7, "cmd": "unsubscribe", "channel": CHANNEL})
    await sub.ok_reply(7)

    await pub.close()
    await sub.close()

    # --- frames that are not commands: the server closes ---
    bad = await Client("malformed-frame client", state).open(url)
    state["step"] = "malformed frame"
    await bad.ws.send(b"\x81")  # a map of one pair, and nothing else
    await bad.expect_closed_with(CLOSE_INVALID_PAYLOAD)

    wrong = await Client("wrong-frame-type client", state).open(url)
    state["step"] = "wrong frame type"
    # A well-formed JSON command in a text frame: the frame type alone must
    # get it closed.
    await wrong.ws.send('{"id":1,"cmd":"ping"}')
    await wrong.expect_closed_with(CLOSE_UNSUPPORTED_DATA)

    return sub_reply, last, pong


def main():
    if len(sys.argv) != 2:
        print("usage: python3 protocol_client.py ws://host:port/ws", file=sys.stderr)
        return 2
    state = {"step": "start"}
    try:
        # The whole run must finish in time: a server that swallows a
        # command would otherwise leave us waiting forever, and the Go test
        # would only see its own timeout with no hint of which step hung.
        sub_reply, last, pong = asyncio.run(asyncio.wait_for(run(sys.argv[1], state), GLOBAL_TIMEOUT))
    except asyncio.TimeoutError:
        print(f"FAIL [msgpack]: global timeout of {GLOBAL_TIMEOUT:.0f} s while {state['step']}", file=sys.stderr)
        return 1
    except Failure as e:
        print(f"FAIL [msgpack]: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # connection errors, protocol errors
        print(f"FAIL [msgpack]: {state['step']}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(
        f"ok [msgpack]: websockets {websockets.__version__} + msgpack {'.'.join(map(str, msgpack.version))}: "
        f"subscribe (offset {sub_reply['offset']}, epoch {sub_reply['epoch']!r}), "
        f"{N_PUBLISH} publications in order (last offset {last}), ping {pong!r}, "
        f"errors {BAD_CHANNEL}/{NOT_SUBSCRIBED}/{UNKNOWN_COMMAND}/{BAD_REQUEST}, "
        f"close {CLOSE_INVALID_PAYLOAD} on a malformed frame, {CLOSE_UNSUPPORTED_DATA} on the wrong frame type"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
