"""uvicorn's HTTP/1.1 protocol with the platform's own error body for requests it cannot parse.

uvicorn answers a request h11 refuses (two Content-Length headers, a malformed request line,
headers too large) before any app sees it, with ``text/plain`` "Invalid HTTP request
received." The router and the emulator answer every error as JSON in their own shape, so
they serve with `json_errors(body)`: the same protocol, that one answer replaced.

Example::

    config = uvicorn.Config(app, http=json_errors(b'{"error": "bad request"}'))
"""

from __future__ import annotations

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["json_errors"]


def json_errors(body: bytes) -> type[H11Protocol]:
    """An H11Protocol answering an unparsable request with 400 and `body` as JSON."""

    class JsonErrorProtocol(H11Protocol):
        def send_400_response(self, msg: str) -> None:
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ]
            for event in (
                h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
                h11.Data(data=body),
                h11.EndOfMessage(),
            ):
                self.transport.write(self.conn.send(event) or b"")
            self.transport.close()

    return JsonErrorProtocol
