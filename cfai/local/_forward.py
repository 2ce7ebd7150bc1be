"""One proxied HTTP/1.1 exchange with a workerd upstream, streaming both ways, over a
kept-alive connection from a `Pool` when one is idle. The request is written as it came
(the client side's parser already checked it); the response is read with httptools
(llhttp, the parser of Node.js), which costs a fraction of h11's state machine a request.

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

import httptools

__all__ = ["BodyTooLarge", "ClientGone", "Pool", "Upstream", "forward"]

_CHUNK = 65536
_Address = tuple[str, int]
_END = object()  # the response is complete


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
        self._idle: dict[_Address, list[tuple[float, socket.socket]]] = {}

    def take(self, address: _Address) -> socket.socket | None:
        """An idle connection to `address` still open, or None."""
        stack = self._idle.get(address)
        now = time.monotonic()
        while stack:
            since, sock = stack.pop()
            if now - since < self.idle and _still_open(sock):
                return sock
            sock.close()
        return None

    def give(self, address: _Address, sock: socket.socket) -> None:
        """Keep `sock` (its exchange complete) for the next request to `address`."""
        stack = self._idle.setdefault(address, [])
        if len(stack) >= self.keep:
            sock.close()
        else:
            stack.append((time.monotonic(), sock))

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
    return once the response head is in. Raises `BodyTooLarge`, `ClientGone` or OSError
    (also for a response that is not HTTP/1.1). `client_gone`, awaited once the body is
    sent, returns when the client disconnects: the exchange is then cut, so an endless
    stream does not outlive its reader.
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
        else:
            sock = reused
        exchange = _Exchange(sock, (host, port), pool, reader, limit, client_gone)
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


class _Response:
    """llhttp's callbacks, as events: the head (status, headers), body chunks, the end."""

    def __init__(self, head_only: bool) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.head_only = head_only  # a response to HEAD: its Content-Length frames no body
        self.events: list[object] = []
        self.headers: list[tuple[bytes, bytes]] = []
        self.begun = 0
        self.complete = False
        self.until_close = False  # no Content-Length, not chunked: the body ends at EOF
        self.keep_alive = False

    def on_message_begin(self) -> None:
        self.begun += 1
        self.headers = []

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            return  # informational (100 Continue): the answer is still to come
        self.events.append((status, self.headers))
        framed = any(
            k.lower() in (b"content-length", b"transfer-encoding") for k, _ in self.headers
        )
        self.until_close = not framed and status not in (204, 304)
        if self.head_only:
            self.complete = True
            self.events.append(_END)

    def on_body(self, body: bytes) -> None:
        self.events.append(body)

    def on_message_complete(self) -> None:
        if self.parser.get_status_code() >= 200 and not self.complete:
            # Asked here: llhttp forgets it once the callback returns.
            self.keep_alive = self.parser.should_keep_alive()
            self.complete = True
            self.events.append(_END)

    def feed(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as err:
            raise OSError(f"the upstream's response is not HTTP/1.1: {err}") from None


def _request_head(method: str, target: bytes, headers: Sequence[tuple[bytes, bytes]]) -> bytes:
    lines = [method.encode(), b" ", target, b" HTTP/1.1\r\n"]
    for name, value in headers:
        lines += [name, b": ", value, b"\r\n"]
    lines.append(b"\r\n")
    return b"".join(lines)


class _Exchange:
    """One request and its response on one connection."""

    def __init__(
        self,
        sock: socket.socket,
        address: _Address,
        pool: Pool | None,
        body: _Body,
        limit: int,
        client_gone: Callable[[], Awaitable[None]] | None,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.sock, self.address, self.pool = sock, address, pool
        self.body, self.limit, self.client_gone = body, limit, client_gone
        self.sent_all = self.released = False
        self.answered = False

    def cut(self) -> None:
        # shutdown, not close: a task waiting in sock_recv wakes up with end of file.
        if not self.released:
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)

    async def send(self, head: bytes, chunked: bool) -> None:
        sock, loop = self.sock, self.loop
        try:
            await loop.sock_sendall(sock, head)
            size = 0
            async for chunk in self.body:
                size += len(chunk)
                if size > self.limit:
                    raise BodyTooLarge(self.limit)
                if chunked:
                    chunk = b"%x\r\n%b\r\n" % (len(chunk), chunk)
                await loop.sock_sendall(sock, chunk)
            if chunked:
                await loop.sock_sendall(sock, b"0\r\n\r\n")
            self.sent_all = True
            if self.client_gone is not None:
                await self.client_gone()
                self.cut()
        except OSError:
            # A failed write is not the answer: the upstream may have replied and closed early.
            return
        except (BodyTooLarge, ClientGone):
            self.cut()
            raise

    async def next_event(self) -> object:
        response = self.response
        while not response.events:
            data = await self.loop.sock_recv(self.sock, _CHUNK)
            if not data:
                if response.until_close and not response.complete:
                    response.complete = True
                    return _END
                raise OSError("the upstream closed the connection mid-response")
            self.answered = True
            response.feed(data)
        return response.events.pop(0)

    async def read_head(self, reused: bool) -> tuple[int, list[tuple[bytes, bytes]]]:
        try:
            event = await self.next_event()
        except OSError:
            if reused and not self.answered:
                raise _Stale() from None
            if not self.answered:
                raise OSError("the upstream closed the connection without answering") from None
            raise
        assert isinstance(event, tuple)
        return event

    async def start(
        self, method: str, target: bytes, headers: Sequence[tuple[bytes, bytes]], reused: bool
    ) -> Upstream:
        host, port = self.address
        head = [(b"host", f"{host}:{port}".encode()), *headers]
        if self.pool is None:
            head.insert(1, (b"connection", b"close"))
        chunked = any(k == b"transfer-encoding" for k, _ in headers)
        self.response = _Response(head_only=method == "HEAD")
        sending = asyncio.create_task(self.send(_request_head(method, target, head), chunked))
        receiving = asyncio.create_task(self.read_head(reused))
        # A body cut off after the answer came is nobody's business: retrieve the exception.
        sending.add_done_callback(lambda t: t.cancelled() or t.exception())
        self.sending, self.receiving = sending, receiving
        try:
            await asyncio.wait({sending, receiving}, return_when=asyncio.FIRST_COMPLETED)
            cut_off = sending.exception() if sending.done() else None
            if cut_off is not None and (not receiving.done() or receiving.exception() is not None):
                raise cut_off  # no answer yet: the body cut off (too large, client gone) is it
            status, response_headers = await receiving
        except BaseException:
            self.close()
            raise
        return Upstream(status=status, headers=response_headers, body=self.stream())

    def close(self) -> None:
        self.sending.cancel()
        self.receiving.cancel()
        if not self.released:
            self.sock.close()

    def release(self) -> None:
        """Back to the pool if the exchange is complete and the connection can go on."""
        response = self.response
        reusable = (
            self.pool is not None
            and self.sent_all
            and not response.head_only  # llhttp would read the next answer as its body
            and response.begun == 1
            and not response.events
            and response.keep_alive
        )
        if reusable and self.pool is not None:
            self.released = True
            self.sending.cancel()  # it was waiting for the client to leave
            self.pool.give(self.address, self.sock)

    async def stream(self) -> AsyncIterator[bytes]:
        try:
            while True:
                event = await self.next_event()
                if event is _END:
                    self.release()
                    return
                assert isinstance(event, bytes)
                yield event
        finally:
            self.close()
