"""What the permessage-deflate interop clients share: websockets' connect
(either API generation), the subprotocol, the timeout, the failure type and
reading the negotiated extensions."""

try:
    from websockets.asyncio.client import connect
except ImportError:
    from websockets.client import connect

PROTO = "wsgate.v1.json"
TIMEOUT = 20.0


class Failure(Exception):
    pass


def response_extensions(ws):
    headers = getattr(ws, "response_headers", None)
    if headers is None:
        headers = ws.response.headers
    return headers.get("Sec-WebSocket-Extensions", "")
