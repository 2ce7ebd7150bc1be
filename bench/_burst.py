"""A thin HTTP/1.1 client for bursts of streaming requests (asyncio streams, no pool).

httpx's async client costs about a millisecond of Python per request in the bench process,
on the same two CPUs as the platform; at 200 streams at once that is most of what a TTFB
percentile would show. This client writes one request per connection
(``Connection: close``), reads the head, times the first body bytes and reads to EOF, so
what it measures is the server's.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import urlsplit


def _dechunk(raw: bytes) -> bytes:
    """The body of a ``Transfer-Encoding: chunked`` response (trailers ignored)."""
    out, at = bytearray(), 0
    while True:
        end = raw.find(b"\r\n", at)
        if end < 0:
            return bytes(out)
        size = int(raw[at:end].split(b";")[0] or b"0", 16)
        if size == 0:
            return bytes(out)
        out += raw[end + 2 : end + 2 + size]
        at = end + 2 + size + 2


async def stream(url: str, body: bytes, headers: dict[str, str], timeout: float) -> dict[str, Any]:
    """POST `body` to `url`; ``{ok, status, ttfb, total, done, error}`` where `ttfb` is the
    time from connecting to the first body bytes and `done` says the body held
    ``data: [DONE]``."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    head = [
        f"POST {parts.path or '/'} HTTP/1.1",
        f"Host: {host}:{port}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Connection: close",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    t0 = time.perf_counter()
    ttfb: float | None = None
    writer = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
            response_head = await reader.readuntil(b"\r\n\r\n")
            status = int(response_head.split(b" ", 2)[1])
            first = await reader.read(65536)
            ttfb = time.perf_counter() - t0
            rest = first + await reader.read()
    except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as err:
        return {"ok": False, "error": f"{type(err).__name__}: {err}", "ttfb": ttfb}
    finally:
        if writer is not None:
            writer.close()
    total = time.perf_counter() - t0
    chunked = b"transfer-encoding: chunked" in response_head.lower()
    text = _dechunk(rest) if chunked else rest
    done = b"data: [DONE]" in text
    ok = status == 200 and done and bool(first)
    return {
        "ok": ok,
        "status": status,
        "done": done,
        "ttfb": ttfb if first else None,
        "total": total,
        "error": None if ok else f"HTTP {status}: {text[:200]!r}",
    }


async def burst(
    url: str, bodies: list[bytes], headers: dict[str, str], timeout: float
) -> tuple[float, list[dict[str, Any]]]:
    """Every body at once, one connection each; (wall seconds, results in order)."""
    t0 = time.perf_counter()
    out = await asyncio.gather(*(stream(url, b, headers, timeout) for b in bodies))
    return time.perf_counter() - t0, list(out)
