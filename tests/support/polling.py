"""Waiting for something with a bound: the one poll-until-deadline loop of the tests.

Example::

    wait_for("the emulator to start", lambda: server.started, timeout=10)
    sha = wait_for("the new hash", lambda: health(url) == sha, ignore=(httpx.HTTPError,))
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["wait_for"]

T = TypeVar("T")


def wait_for(
    what: str,
    check: Callable[[], T],
    *,
    timeout: float = 30.0,
    interval: float = 0.05,
    ignore: tuple[type[BaseException], ...] = (),
    alive: Callable[[], bool] | None = None,
) -> T:
    """Call `check` until it returns something truthy and return that. Errors of the types
    in `ignore` count as "not yet". After `timeout` seconds, or as soon as `alive()` turns
    False (the thread or process that should get there has died), `AssertionError` names
    `what` and the last answer or error."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            last = check()
            if last:
                return last  # type: ignore[return-value]
        except ignore as err:
            last = err
        if alive is not None and not alive():
            raise AssertionError(f"gave up waiting for {what}: it died (last: {last!r})")
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"timed out after {timeout:g}s waiting for {what} (last: {last!r})"
            )
        time.sleep(interval)
