"""The volatile half of a gateway: response cache and rate-limit counters, in memory.

Cloudflare's gateway cache is volatile as well (entries may vanish before their TTL; two
simultaneous identical requests may both miss), so losing it on an emulator restart is
faithful. Rate-limit counters only matter within one interval.

Example::

    limiter = RateLimiter()
    limiter.admit("gw", limit=2, interval=60, technique="fixed", now=clock())  # True
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CacheEntry:
    """A cached successful, non-streamed result."""

    content_type: str
    body: bytes
    usage: Mapping[str, int] | None
    result: Any
    expires_at: float


class ResponseCache:
    """Per-gateway cache of results by key, with expiry checked against the caller's clock."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], CacheEntry] = {}
        self._lock = threading.Lock()

    def get(self, gateway_id: str, key: str, *, now: float) -> CacheEntry | None:
        with self._lock:
            entry = self._entries.get((gateway_id, key))
            if entry is not None and entry.expires_at <= now:
                del self._entries[(gateway_id, key)]
                return None
            return entry

    def put(self, gateway_id: str, key: str, entry: CacheEntry) -> None:
        with self._lock:
            self._entries[(gateway_id, key)] = entry

    def drop_gateway(self, gateway_id: str) -> None:
        with self._lock:
            for k in [k for k in self._entries if k[0] == gateway_id]:
                del self._entries[k]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class RateLimiter:
    """`fixed`: at most `limit` requests per clock-aligned window of `interval` seconds
    (windows start at multiples of `interval` since the epoch). `sliding`: at most `limit`
    requests in the last `interval` seconds. Rejected requests do not count."""

    def __init__(self) -> None:
        self._fixed: dict[str, tuple[float, int]] = {}
        self._sliding: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def admit(
        self, gateway_id: str, *, limit: int, interval: int, technique: str, now: float
    ) -> bool:
        with self._lock:
            if technique == "sliding":
                recent = self._sliding.setdefault(gateway_id, deque())
                while recent and recent[0] <= now - interval:
                    recent.popleft()
                if len(recent) >= limit:
                    return False
                recent.append(now)
                return True
            window = math.floor(now / interval) * interval
            start, count = self._fixed.get(gateway_id, (window, 0))
            if start != window:
                count = 0
            if count >= limit:
                return False
            self._fixed[gateway_id] = (window, count + 1)
            return True

    def drop_gateway(self, gateway_id: str) -> None:
        with self._lock:
            self._fixed.pop(gateway_id, None)
            self._sliding.pop(gateway_id, None)

    def clear(self) -> None:
        with self._lock:
            self._fixed.clear()
            self._sliding.clear()
