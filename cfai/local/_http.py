"""uvicorn's HTTP/1.1 protocols with the platform's own error body for requests they cannot
parse.

uvicorn answers a request its parser refuses (two Content-Length headers, a malformed
request line, headers too large) before any app sees it, with ``text/plain`` "Invalid HTTP
request received." The router and the emulator answer every error as JSON in their own
shape, so they serve with `fast_json_errors(body)`: uvicorn's httptools protocol (llhttp's
parser, about a third less CPU a request than h11) with that one answer replaced.

llhttp refuses a method it does not know (``FOO``, ``get``, and kj's ``MSEARCH``, which it
spells ``M-SEARCH``), where h11 takes any token and lets the app decide (the router
forwards every method workerd parses and answers a JSON 501 to the rest). So a connection
whose request starts with such a method is handed to h11 from that request on: nothing is
lost, and the app sees the method as h11 would have given it. So is one whose request is a
CONNECT or asks for an Upgrade (not a WebSocket): llhttp stops reading there. (Not when
such a request comes pipelined behind another in the same read: its bytes cannot be told
apart, so it gets the 400, as any request llhttp refuses does.)

Example::

    config = uvicorn.Config(app, http=fast_json_errors(b'{"error": "bad request"}'))
"""

from __future__ import annotations

import asyncio

import h11
import httptools
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["fast_json_errors"]


def _head(body: bytes) -> list[tuple[bytes, bytes]]:
    return [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]


class _Coalescing:
    """A transport whose writes of one turn of the event loop go out in one send: a
    response's head and its body (written one after the other by uvicorn) are one TCP
    segment, not two (each send on loopback costs as much as parsing the request)."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.pending: list[bytes] = []
        self.loop = asyncio.get_running_loop()

    def write(self, data: bytes) -> None:
        if not self.pending:
            self.loop.call_soon(self.flush)
        self.pending.append(data)

    def flush(self) -> None:
        if self.pending:
            data = b"".join(self.pending)
            self.pending.clear()
            if not self.transport.is_closing():
                self.transport.write(data)

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def __getattr__(self, name: str) -> object:
        return getattr(self.transport, name)


def _h11_json_errors(body: bytes) -> type[H11Protocol]:
    """An H11Protocol answering an unparsable request with 400 and `body` as JSON."""

    class JsonErrorProtocol(H11Protocol):
        def send_400_response(self, msg: str) -> None:
            for event in (
                h11.Response(status_code=400, headers=_head(body), reason=b"Bad Request"),
                h11.Data(data=body),
                h11.EndOfMessage(),
            ):
                self.transport.write(self.conn.send(event) or b"")
            self.transport.close()

    return JsonErrorProtocol


def fast_json_errors(body: bytes) -> type[HttpToolsProtocol]:
    """An HttpToolsProtocol answering an unparsable request with 400 and `body` as JSON, and
    handing a connection to `_h11_json_errors`' protocol at a method llhttp does not know."""
    fallback = _h11_json_errors(body)

    class FastJsonErrorProtocol(HttpToolsProtocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(_Coalescing(transport))  # type: ignore[arg-type]

        # Whether the parser is between messages (no byte of the next one fed yet), and how
        # many messages the bytes being fed began.
        _between = True
        _begun = 0

        def on_message_begin(self) -> None:
            self._between = False
            self._begun += 1
            super().on_message_begin()

        def on_message_complete(self) -> None:
            self._between = True
            super().on_message_complete()

        def data_received(self, data: bytes) -> None:
            self._unset_keepalive_if_required()
            fresh, self._begun = self._between, 0
            scheduled = set(self.tasks)
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserInvalidMethodError:
                if fresh and self._begun == 1:  # `data` is this request from its first byte
                    self._to_h11(data)
                else:
                    self.send_400_response("")
            except httptools.HttpParserError:
                self.send_400_response("")
            except httptools.HttpParserUpgrade:
                if self._should_upgrade():
                    self.handle_websocket_upgrade()
                elif fresh and self._begun == 1:
                    # llhttp stops at the head of a CONNECT or Upgrade request and reads
                    # nothing after it (a body would parse as the next request); h11 reads the
                    # message whole. The app, scheduled for this request, has not run yet.
                    for task in set(self.tasks) - scheduled:
                        task.cancel()
                    self._to_h11(data)
                else:
                    self.send_400_response("")

        def _to_h11(self, data: bytes) -> None:
            transport = self.transport
            if isinstance(transport, _Coalescing):
                transport.flush()
                transport = transport.transport
            assert isinstance(transport, asyncio.Transport)
            self.connections.discard(self)
            h11_protocol = fallback(
                config=self.config, server_state=self.server_state, app_state=self.app_state
            )
            transport.set_protocol(h11_protocol)
            h11_protocol.connection_made(transport)
            h11_protocol.data_received(data)

        def send_400_response(self, msg: str) -> None:
            head = b"".join(k + b": " + v + b"\r\n" for k, v in _head(body))
            self.transport.write(b"HTTP/1.1 400 Bad Request\r\n" + head + b"\r\n" + body)
            self.transport.close()

    return FastJsonErrorProtocol
