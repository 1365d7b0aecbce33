"""Checks permessage-deflate messages against a client's LZ77 window with
zlib, strictly.

usage: /usr/bin/python3 window_inflate.py WBITS EXPECT Z PLAIN [EXPECT Z PLAIN ...]

Each Z is a file holding one compressed message as sent (RFC 7692: the
sync-flush tail 00 00 ff ff removed), PLAIN the message it must inflate
to, EXPECT "ok" or "reject" (a negative control: a message whose
back-references reach past the window must be refused).

zlib.decompressobj(wbits=-WBITS).decompress(z) alone proves little: zlib
only checks a back-reference against its window when it reaches before the
output of the current call, so a small message inflated in one call is
accepted whatever its distances. Inflating one byte per call makes every
reference go through the window, so "invalid distance too far back" is
raised for any distance over 2**WBITS. Exits 0 when every message met its
expectation, else prints why and exits 1.
"""

import sys
import zlib

TAIL = b"\x00\x00\xff\xff"


def inflate_stepped(z, wbits):
    d = zlib.decompressobj(wbits=-wbits)
    out = bytearray()
    data = z + TAIL
    while True:
        chunk = d.decompress(data, 1)
        data = d.unconsumed_tail
        out += chunk
        if not chunk and not data:
            return bytes(out)


def main():
    wbits = int(sys.argv[1])
    args = sys.argv[2:]
    failed = False
    for i in range(0, len(args), 3):
        expect, zpath, ppath = args[i:i + 3]
        with open(zpath, "rb") as f:
            z = f.read()
        with open(ppath, "rb") as f:
            plain = f.read()
        try:
            got = inflate_stepped(z, wbits)
            ok = got == plain
            verdict = "ok" if ok else f"inflated to {len(got)} bytes, not the {len(plain)} sent"
        except zlib.error as e:
            ok, verdict = False, f"rejected: {e}"
        if ok != (expect == "ok"):
            failed = True
        print(f"{'FAIL' if ok != (expect == 'ok') else 'pass'}: {zpath} ({len(z)} bytes, {len(plain)} inflated), "
              f"window 2**{wbits}, want {expect}: {verdict}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
