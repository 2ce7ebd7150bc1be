"""Shared bench helpers: timing statistics, result records, child processes, RSS."""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx


class Skipped(Exception):
    """A bench that cannot run here (a tool missing); its message goes to the report."""


@dataclass
class Result:
    """One row of ``latest.json``; `extra` (spreads, percentiles, notes) goes to the README.

    `check` is how `met` is judged: ``"ratio<="``, ``"ratio>="`` or ``"value>="`` against
    `limit`, or ``"passed"`` for a pass/fail target decided by the bench (`passed`; a
    `limit` then is the bound in the value's unit the bench judged by, for the picture);
    None for report-only figures.
    """

    name: str
    value: float | None
    baseline: float | None
    unit: str
    target: str
    check: str | None = None
    limit: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    passed: bool | None = None

    @property
    def ratio(self) -> float | None:
        if self.value is None or not self.baseline:
            return None
        return self.value / self.baseline

    @property
    def met(self) -> bool | None:
        if self.check == "passed":
            return self.passed
        if self.check is None or self.limit is None:
            return None
        measured = self.value if self.check.startswith("value") else self.ratio
        if measured is None:
            return None
        return measured <= self.limit if self.check.endswith("<=") else measured >= self.limit

    def row(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": _round(self.value),
            "baseline": _round(self.baseline),
            "ratio": _round(self.ratio),
            "target": self.target,
            "unit": self.unit,
            "met": self.met,
        }


def _round(x: float | None) -> float | None:
    return None if x is None else float(f"{x:.4g}")


def stats(samples: Sequence[float]) -> dict[str, float]:
    """Median, min, max, p99 and relative spread (IQR / median) of `samples`."""
    s = sorted(samples)
    med = statistics.median(s)
    q = statistics.quantiles(s, n=4) if len(s) >= 2 else [s[0], s[0], s[0]]
    p99 = s[min(len(s) - 1, round(0.99 * (len(s) - 1)))]
    return {
        "n": len(s),
        "median": med,
        "min": s[0],
        "max": s[-1],
        "p99": p99,
        "iqr_pct": 100.0 * (q[2] - q[0]) / med if med else 0.0,
    }


def timed(fn: Callable[[], Any], repeat: int, warmup: int = 1) -> list[float]:
    """Wall-clock seconds of `repeat` calls of `fn`, after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def spawn(argv: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None):
    """Start a child in its own session, output to `log`."""
    with open(log, "ab") as f:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=f,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the child's process group, SIGKILL after 5 s, and reap it."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
    except ProcessLookupError:
        proc.wait(timeout=5)


def wait_http(url: str, proc: subprocess.Popen[bytes] | None, timeout: float) -> bool:
    """Poll `url` every 10 ms until it answers 200 (True) or `timeout` passes (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.01)
    return False


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux ``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int, key: str = "VmRSS") -> int:
    """VmRSS / VmHWM of a process, in KiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0
