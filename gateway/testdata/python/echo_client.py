"""Interop client for wsgate's raw echo endpoint, built on Python's
`websockets` (Debian package python3-websockets): a WebSocket implementation
nobody on this project wrote, so a frame-format or handshake mistake shared
by our server and our Go test clients still shows up here.

usage: /usr/bin/python3 echo_client.py ws://host:port/echo

Exits 0 when every check passes; otherwise prints what failed and exits 1.
"""

import asyncio
import sys

import websockets

# websockets >= 13 has the new asyncio implementation; older releases (Debian
# bookworm ships 10.4) only have the legacy one. Both expose the calls used
# here (send, recv, ping -> awaitable pong, close, close_code).
try:
    from websockets.asyncio.client import connect
except ImportError:
    from websockets.client import connect

SIZES = [0, 1, 125, 126, 65535, 65536]  # 65536 = the test server's message limit
CLOSE_CODE = 4000
GLOBAL_TIMEOUT = 20.0


class Failure(Exception):
    pass


def text_payload(size):
    """Text mixing 1-, 2-, 3- and 4-byte UTF-8 sequences, exactly size bytes
    long, so a server that splits or validates text on the wrong boundary is
    caught (ASCII fills whatever the pattern leaves over)."""
    pattern = ["a", "é", "€", "😀", "z"]
    parts, n, i = [], 0, 0
    while n < size:
        ch = pattern[i % len(pattern)]
        if n + len(ch.encode()) > size:
            ch = "x"
        parts.append(ch)
        n += len(ch.encode())
        i += 1
    return "".join(parts)


def binary_payload(size):
    """Every byte value (including invalid UTF-8) in a scrambled order, so an
    unmasking off-by-one or a mix-up with the text path can't pass."""
    out = bytearray(size)
    x = (0x12345678 + size) & 0xFFFFFFFF
    for i in range(size):
        x = (x * 1103515245 + 12345) & 0xFFFFFFFF
        out[i] = x >> 24
    return bytes(out)


CASES = []
for _size in SIZES:
    CASES.append((f"text {_size}", text_payload(_size)))
    CASES.append((f"binary {_size}", binary_payload(_size)))


def verify(name, want, got):
    # websockets returns str for a text message and bytes for a binary one,
    # so the Python type is the frame type.
    if type(got) is not type(want):
        kind = "text" if isinstance(got, str) else "binary"
        raise Failure(f"{name}: got a {kind} message ({type(got).__name__}), want {type(want).__name__}")
    if got != want:
        w = want.encode() if isinstance(want, str) else want
        g = got.encode() if isinstance(got, str) else got
        at = 0
        while at < len(w) and at < len(g) and w[at] == g[at]:
            at += 1
        raise Failure(f"{name}: echo differs: got {len(g)} bytes, want {len(w)}; first difference at byte {at}")


async def run(url, state):
    # max_size above the largest case so the client, not the server, is
    # never the one that refuses a message.
    async with connect(url, max_size=1 << 20, open_timeout=10) as ws:
        # Lock-step: one message out, its echo back, so a failure names the case.
        for name, data in CASES:
            state["step"] = f"lock-step {name}"
            await ws.send(data)
            verify(name, data, await ws.recv())

        # Pipelined: all cases in flight at once; echoes must come back in
        # order (frames leave in the order they were queued).
        state["step"] = "pipelined burst"
        for _, data in CASES:
            await ws.send(data)
        for name, data in CASES:
            state["step"] = f"pipelined {name}"
            verify(name, data, await ws.recv())

        # Ping: the server must answer with a pong carrying the same payload;
        # websockets resolves the waiter only for a pong with that payload.
        state["step"] = "ping/pong"
        pong_waiter = await ws.ping(b"wsgate-ping-1234")
        await pong_waiter

        # Close handshake: close() sends our frame and waits for the server's;
        # close_code is the code the server sent back (1005 if its close frame
        # had none, 1006 if it sent no close frame at all).
        state["step"] = "closing handshake"
        await ws.close(code=CLOSE_CODE, reason="bye")
        if ws.close_code != CLOSE_CODE:
            raise Failure(f"close: server's close frame carried code {ws.close_code}, want {CLOSE_CODE}")
        return ws.close_code, ws.close_reason


def main():
    if len(sys.argv) != 2:
        print("usage: python3 echo_client.py ws://host:port/echo", file=sys.stderr)
        return 2
    state = {"step": "connecting"}
    try:
        # The whole run must finish in time: a server that swallows a frame
        # would otherwise leave us waiting forever, and the Go test would only
        # see its own timeout with no hint of which step hung.
        code, reason = asyncio.run(asyncio.wait_for(run(sys.argv[1], state), GLOBAL_TIMEOUT))
    except asyncio.TimeoutError:
        print(f"FAIL: global timeout of {GLOBAL_TIMEOUT:.0f} s while {state['step']}", file=sys.stderr)
        return 1
    except Failure as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # connection errors, protocol errors, early close
        print(f"FAIL: {state['step']}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(
        f"ok: websockets {websockets.__version__}: {len(CASES) * 2} echoes, "
        f"ping/pong, close {code} (reason {reason!r})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
