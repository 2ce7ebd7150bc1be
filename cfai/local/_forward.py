"""One proxied HTTP/1.1 exchange with a workerd upstream, written on h11, streaming both ways,
over a kept-alive connection from a `Pool` when one is idle.

Why not httpx: workerd answers a request it rejects early (401, 413 on Content-Length) before
reading the body, then closes the connection with the body unread, which resets it; a
client that reads only after writing the whole body (httpx, httpcore) loses the answer.
Here the body is written by one task while the response is read as it arrives, so the
answer is in hand before the reset.

The body is relayed chunk by chunk as the client sends it, never held whole: the router's
memory stays bounded by a chunk whatever the body's size, and a body past `limit` bytes is
cut off with `BodyTooLarge` (unless the upstream has already answered).

A connection goes back to the pool only after a complete exchange: the whole request
written, the whole response read, neither side asking to close, nothing left over. Any
other ending (an early answer, a cut-off body, a client gone mid-stream, an error) closes
it. An idle connection is kept `Pool.idle` seconds, well inside workerd's own wait for the
next request on a connection (kj ``HttpServerSettings.pipelineTimeout``, 5 s, in
capnproto ``c++/src/kj/compat/http.h``), and checked for an end of file before reuse; a
request without a body that finds a reused connection closed anyway is sent once more on
a new one (nothing of it was consumed).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

import h11

__all__ = ["BodyTooLarge", "ClientGone", "Pool", "Upstream", "forward"]

_CHUNK = 65536
_Address = tuple[str, int]


class BodyTooLarge(Exception):
    """The request body passed the limit before the upstream answered."""


class ClientGone(Exception):
    """The client disconnected before its request body was complete."""


class _Stale(Exception):
    """A reused connection closed before any answer (the upstream let it go idle)."""


@dataclass
class Upstream:
    """The upstream's answer: status, headers, and its body as it streams in."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: AsyncIterator[bytes]


class Pool:
    """Idle keep-alive connections to the upstreams, by address, newest reused first."""

    def __init__(self, idle: float = 2.0, keep: int = 64) -> None:
        self.idle = idle
        self.keep = keep
        self._idle: dict[_Address, list[tuple[float, socket.socket, h11.Connection]]] = {}

    def take(self, address: _Address) -> tuple[socket.socket, h11.Connection] | None:
        """An idle connection to `address` still open, or None."""
        stack = self._idle.get(address)
        now = time.monotonic()
        while stack:
            since, sock, conn = stack.pop()
            if now - since < self.idle and _still_open(sock):
                return sock, conn
            sock.close()
        return None

    def give(self, address: _Address, sock: socket.socket, conn: h11.Connection) -> None:
        """Keep `sock` (its exchange complete) for the next request to `address`."""
        conn.start_next_cycle()
        stack = self._idle.setdefault(address, [])
        if len(stack) >= self.keep:
            sock.close()
        else:
            stack.append((time.monotonic(), sock, conn))

    def sweep(self) -> None:
        """Close the connections idle for longer than `idle` seconds."""
        horizon = time.monotonic() - self.idle
        for stack in self._idle.values():
            while stack and stack[0][0] < horizon:
                stack.pop(0)[1].close()


def _still_open(sock: socket.socket) -> bool:
    # An idle HTTP/1.1 connection has nothing to read: an end of file (the peer closed) or
    # stray bytes both mean it cannot carry another exchange.
    try:
        return not sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False


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
    pool: Pool | None = None,
) -> Upstream:
    """Send the request (`headers` carry the client's framing: Content-Length or chunked) and
    return once the response head is in. Raises `BodyTooLarge`, `ClientGone`, OSError or an
    h11 error. `client_gone`, awaited once the body is sent, returns when the client
    disconnects: the exchange is then cut, so an endless stream does not outlive its reader.
    With a `pool`, the connection comes from it when one is idle and returns to it once
    the exchange is complete."""
    loop = asyncio.get_running_loop()
    reader = _Body(body)
    reused = pool.take((host, port)) if pool is not None else None
    while True:
        if reused is None:
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
        else:
            sock, conn = reused
        exchange = _Exchange(sock, conn, (host, port), pool, reader, limit, client_gone)
        try:
            return await exchange.start(method, target, headers, reused is not None)
        except _Stale:
            if not reader.untouched:
                raise OSError("the upstream closed a kept-alive connection mid-request") from None
            reused = None  # once more, on a new connection


class _Body:
    """The request body, counted: whether any of it was consumed (a retry needs none)."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self.chunks = chunks
        self.started = self.finished = False
        self.size = 0

    @property
    def untouched(self) -> bool:
        return not self.started or (self.finished and self.size == 0)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        self.started = True
        async for chunk in self.chunks:
            self.size += len(chunk)
            yield chunk
        self.finished = True


class _Exchange:
    """One request and its response on one connection."""

    def __init__(
        self,
        sock: socket.socket,
        conn: h11.Connection,
        address: _Address,
        pool: Pool | None,
        body: _Body,
        limit: int,
        client_gone: Callable[[], Awaitable[None]] | None,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.sock, self.conn, self.address, self.pool = sock, conn, address, pool
        self.body, self.limit, self.client_gone = body, limit, client_gone
        self.sent_all = self.released = False
        self.answered = False

    def cut(self) -> None:
        # shutdown, not close: a task waiting in sock_recv wakes up with end of file.
        if not self.released:
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)

    async def send(self, request: h11.Request) -> None:
        conn, sock, loop = self.conn, self.sock, self.loop
        try:
            await loop.sock_sendall(sock, conn.send(request) or b"")
            size = 0
            async for chunk in self.body:
                size += len(chunk)
                if size > self.limit:
                    raise BodyTooLarge(self.limit)
                await loop.sock_sendall(sock, conn.send(h11.Data(data=chunk)) or b"")
            end = conn.send(h11.EndOfMessage())
            if end:  # chunked framing's last chunk (with Content-Length there is nothing)
                await loop.sock_sendall(sock, end)
            self.sent_all = True
            if self.client_gone is not None:
                await self.client_gone()
                self.cut()
        except (OSError, h11.LocalProtocolError):
            # A failed write is not the answer: the upstream may have replied and closed early.
            return
        except (BodyTooLarge, ClientGone):
            self.cut()
            raise

    async def next_event(self) -> object:
        while True:
            event = self.conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            data = await self.loop.sock_recv(self.sock, _CHUNK)
            self.answered = self.answered or bool(data)
            self.conn.receive_data(data)

    async def read_head(self, reused: bool) -> h11.Response:
        try:
            event = await self.next_event()
            while isinstance(event, h11.InformationalResponse):
                event = await self.next_event()
        except (OSError, h11.RemoteProtocolError):
            if reused and not self.answered:
                raise _Stale() from None
            raise
        if not isinstance(event, h11.Response):
            if reused and not self.answered:
                raise _Stale()
            raise OSError("the upstream closed the connection without answering")
        return event

    async def start(
        self, method: str, target: bytes, headers: Sequence[tuple[bytes, bytes]], reused: bool
    ) -> Upstream:
        host, port = self.address
        head = [(b"host", f"{host}:{port}".encode()), *headers]
        if self.pool is None:
            head.insert(1, (b"connection", b"close"))
        request = h11.Request(method=method, target=target, headers=head)
        sending = asyncio.create_task(self.send(request))
        receiving = asyncio.create_task(self.read_head(reused))
        # A body cut off after the answer came is nobody's business: retrieve the exception.
        sending.add_done_callback(lambda t: t.cancelled() or t.exception())
        self.sending, self.receiving = sending, receiving
        try:
            await asyncio.wait({sending, receiving}, return_when=asyncio.FIRST_COMPLETED)
            cut_off = sending.exception() if sending.done() else None
            if cut_off is not None and (not receiving.done() or receiving.exception() is not None):
                raise cut_off  # no answer yet: the body cut off (too large, client gone) is it
            response = await receiving
        except BaseException:
            self.close()
            raise
        return Upstream(
            status=response.status_code, headers=list(response.headers), body=self.stream()
        )

    def close(self) -> None:
        self.sending.cancel()
        self.receiving.cancel()
        if not self.released:
            self.sock.close()

    def release(self) -> None:
        """Back to the pool if the exchange is complete and the connection can go on."""
        conn = self.conn
        reusable = (
            self.pool is not None
            and self.sent_all
            and conn.our_state is h11.DONE
            and conn.their_state is h11.DONE
            and not conn.trailing_data[0]
        )
        if reusable and self.pool is not None:
            self.released = True
            self.sending.cancel()  # it was waiting for the client to leave
            self.pool.give(self.address, self.sock, conn)

    async def stream(self) -> AsyncIterator[bytes]:
        try:
            while True:
                ev = await self.next_event()
                if isinstance(ev, h11.Data):
                    yield bytes(ev.data)
                elif isinstance(ev, h11.EndOfMessage):
                    self.release()
                    return
                elif isinstance(ev, h11.ConnectionClosed):
                    return
        finally:
            self.close()
