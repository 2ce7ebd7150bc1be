"""One proxied HTTP/1.1 exchange with a workerd upstream, written on h11.

Why not httpx: workerd answers a request it rejects early (413 on Content-Length) before
reading the body, then closes the connection with the body unread, which resets it; a
client that reads only after writing the whole body (httpx, httpcore) loses the answer.
Here the body is written by one task while the response is read as it arrives, so the
answer is in hand before the reset.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import h11

__all__ = ["Upstream", "forward"]

_CHUNK = 65536


@dataclass
class Upstream:
    """The upstream's answer: status, headers, and its body as it streams in."""

    status: int
    headers: list[tuple[str, str]]
    body: AsyncIterator[bytes]


async def forward(
    host: str,
    port: int,
    method: str,
    target: str,
    headers: Sequence[tuple[str, str]],
    body: bytes,
) -> Upstream:
    """Send the request; return once the response head is in. Raises OSError/h11 errors."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    # One write per request, but no Nagle delay either way (a 40 ms stall per request).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        await loop.sock_connect(sock, (host, port))
    except BaseException:
        sock.close()
        raise
    conn = h11.Connection(our_role=h11.CLIENT)
    head = [("host", f"{host}:{port}"), ("connection", "close"), *headers]
    head = [(k, v) for k, v in head if k.lower() not in ("content-length", "transfer-encoding")]
    head.append(("content-length", str(len(body))))

    async def send() -> None:
        # A failed write is not the answer: the upstream may have replied and closed early.
        with contextlib.suppress(OSError):
            out = conn.send(h11.Request(method=method, target=target, headers=head)) or b""
            out += conn.send(h11.Data(data=body)) or b"" if body else b""
            out += conn.send(h11.EndOfMessage()) or b""
            await loop.sock_sendall(sock, out)

    sending = asyncio.create_task(send())

    async def next_event() -> object:
        while True:
            event = conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            data = await loop.sock_recv(sock, _CHUNK)
            conn.receive_data(data)

    def close() -> None:
        sending.cancel()
        sock.close()

    try:
        event = await next_event()
        while isinstance(event, h11.InformationalResponse):
            event = await next_event()
        if not isinstance(event, h11.Response):
            raise OSError(f"upstream sent {type(event).__name__} instead of a response")
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

    return Upstream(
        status=event.status_code,
        headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in event.headers],
        body=stream(),
    )
