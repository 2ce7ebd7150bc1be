"""One proxied HTTP/1.1 exchange with a workerd upstream, written on h11, streaming both ways.

Why not httpx: workerd answers a request it rejects early (401, 413 on Content-Length) before
reading the body, then closes the connection with the body unread, which resets it; a
client that reads only after writing the whole body (httpx, httpcore) loses the answer.
Here the body is written by one task while the response is read as it arrives, so the
answer is in hand before the reset.

The body is relayed chunk by chunk as the client sends it, never held whole: the router's
memory stays bounded by a chunk whatever the body's size, and a body past `limit` bytes is
cut off with `BodyTooLarge` (unless the upstream has already answered).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

import h11

__all__ = ["BodyTooLarge", "ClientGone", "Upstream", "forward"]

_CHUNK = 65536


class BodyTooLarge(Exception):
    """The request body passed the limit before the upstream answered."""


class ClientGone(Exception):
    """The client disconnected before its request body was complete."""


@dataclass
class Upstream:
    """The upstream's answer: status, headers, and its body as it streams in."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: AsyncIterator[bytes]


async def forward(
    host: str,
    port: int,
    method: str,
    target: bytes,
    headers: Sequence[tuple[bytes, bytes]],
    body: AsyncIterator[bytes],
    *,
    limit: int,
    client_gone: Callable[[], Awaitable[None]] | None = None,
) -> Upstream:
    """Send the request (`headers` carry the client's framing: Content-Length or chunked) and
    return once the response head is in. Raises `BodyTooLarge`, `ClientGone`, OSError or an
    h11 error. `client_gone`, awaited once the body is sent, returns when the client
    disconnects: the exchange is then cut, so an endless stream does not outlive its reader."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    # No Nagle delay (a 40 ms stall per request with the peer's delayed ACK).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        await loop.sock_connect(sock, (host, port))
    except BaseException:
        sock.close()
        raise
    conn = h11.Connection(our_role=h11.CLIENT)
    head = [(b"host", f"{host}:{port}".encode()), (b"connection", b"close"), *headers]

    def cut() -> None:
        # shutdown, not close: a task waiting in sock_recv wakes up with end of file.
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)

    async def send() -> None:
        try:
            request = h11.Request(method=method, target=target, headers=head)
            await loop.sock_sendall(sock, conn.send(request) or b"")
            size = 0
            async for chunk in body:
                size += len(chunk)
                if size > limit:
                    raise BodyTooLarge(limit)
                await loop.sock_sendall(sock, conn.send(h11.Data(data=chunk)) or b"")
            await loop.sock_sendall(sock, conn.send(h11.EndOfMessage()) or b"")
            if client_gone is not None:
                await client_gone()
                cut()
        except (OSError, h11.LocalProtocolError):
            # A failed write is not the answer: the upstream may have replied and closed early.
            return
        except (BodyTooLarge, ClientGone):
            cut()
            raise

    async def next_event() -> object:
        while True:
            event = conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            conn.receive_data(await loop.sock_recv(sock, _CHUNK))

    async def read_head() -> h11.Response:
        event = await next_event()
        while isinstance(event, h11.InformationalResponse):
            event = await next_event()
        if not isinstance(event, h11.Response):
            raise OSError("the upstream closed the connection without answering")
        return event

    sending = asyncio.create_task(send())
    receiving = asyncio.create_task(read_head())
    # A body cut off after the answer came is nobody's business: retrieve the exception.
    sending.add_done_callback(lambda t: t.cancelled() or t.exception())

    def close() -> None:
        sending.cancel()
        receiving.cancel()
        sock.close()

    try:
        await asyncio.wait({sending, receiving}, return_when=asyncio.FIRST_COMPLETED)
        cut_off = sending.exception() if sending.done() else None
        if cut_off is not None and (not receiving.done() or receiving.exception() is not None):
            raise cut_off  # no answer yet: the body cut off (too large, client gone) is the outcome
        response = await receiving
    except BaseException:
        close()
        raise

    async def stream() -> AsyncIterator[bytes]:
        try:
            while True:
                ev = await next_event()
                if isinstance(ev, h11.Data):
                    yield bytes(ev.data)
                elif isinstance(ev, h11.EndOfMessage | h11.ConnectionClosed):
                    return
        finally:
            close()

    return Upstream(status=response.status_code, headers=list(response.headers), body=stream())
