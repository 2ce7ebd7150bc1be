"""The local platform's logs, as `cfai logs` shows them.

Every process of a run writes its output to ``<state_dir>/<process>.log``:

- ``emulator``: Workers AI, Vectorize, AI Gateway and the REST API (one line per request);
- ``router``: the Workers' public ports, version splits and the override header;
- ``workerd-<id8>``: one version of one Worker (the emulator's runtime starts a workerd per
  deployed version, whether `local up`, `cfai deploy --local` or wrangler uploaded it): its
  ``console.log`` / ``console.error`` output and uncaught exceptions.

The routing table (``routes.json``) says which process serves each Worker's versions, so a
Worker's logs are the files of its processes.

Example::

    sources = log_sources(platform.state_dir, platform.routes(), worker="assistant")
    for source in sources:
        print(source.name, tail(source.path, 20))
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cfai.errors import ConfigError, Problem
from cfai.local.state import Routes

__all__ = ["LogSource", "follow", "log_sources", "tail"]

_ORDER = {"emulator": 0, "router": 1}
_TAIL_BYTES = 1 << 20  # enough for any sensible --lines; the files are appended forever


@dataclass(frozen=True)
class LogSource:
    """One process's log file and the Workers whose console output it holds."""

    name: str
    path: Path
    workers: tuple[str, ...] = ()


def _workers_by_process(routes: Routes) -> dict[str, tuple[str, ...]]:
    found: dict[str, list[str]] = {}
    for key, worker in sorted(routes.workers.items()):
        for version in worker.versions.values():
            if key not in found.setdefault(version.process, []):
                found[version.process].append(key)
    return {process: tuple(keys) for process, keys in found.items()}


def log_sources(state_dir: Path, routes: Routes, worker: str | None = None) -> list[LogSource]:
    """Every log file of the platform (emulator, router, workerd, version processes), or
    with `worker` the files of the processes serving that Worker's versions. An unknown
    `worker` is a `ConfigError` listing the known ones."""
    by_process = _workers_by_process(routes)
    if worker is None:
        names = sorted(
            (p.stem for p in state_dir.glob("*.log")), key=lambda n: (_ORDER.get(n, 2), n)
        )
        return [LogSource(n, state_dir / f"{n}.log", by_process.get(n, ())) for n in names]
    if worker not in routes.workers:
        known = ", ".join(sorted(routes.workers)) or "none: the platform has not run here"
        raise ConfigError([Problem("worker", f"no Worker {worker!r} (Workers: {known})")])
    processes = sorted({v.process for v in routes.workers[worker].versions.values()})
    return [LogSource(p, state_dir / f"{p}.log", by_process.get(p, ())) for p in processes]


def tail(path: Path, lines: int) -> list[str]:
    """The last `lines` lines of `path` ([] when it does not exist)."""
    if lines <= 0 or not path.is_file():
        return []
    with path.open("rb") as f:
        size = f.seek(0, 2)
        f.seek(max(0, size - _TAIL_BYTES))
        data = f.read()
    text = data.decode("utf-8", "replace").splitlines()
    if size > _TAIL_BYTES:
        text = text[1:]  # the first line read is probably cut
    return text[-lines:]


def follow(
    sources: Sequence[LogSource],
    emit: Callable[[LogSource, str], None],
    *,
    stop: Callable[[], bool] = lambda: False,
    ready: Callable[[], None] = lambda: None,
    interval: float = 0.2,
) -> None:
    """Emit each line appended to the sources from now on (`ready` is called once "now" is
    taken), as `tail -f` does, until `stop` says so (or the caller's Ctrl-C). A partial last
    line waits for its newline."""
    offsets = {s.path: s.path.stat().st_size if s.path.is_file() else 0 for s in sources}
    ready()
    pending = {s.path: b"" for s in sources}
    while not stop():
        for source in sources:
            path = source.path
            if not path.is_file():
                continue
            size = path.stat().st_size
            if size < offsets[path]:  # truncated (a reset): read it from the start again
                offsets[path], pending[path] = 0, b""
            if size == offsets[path]:
                continue
            with path.open("rb") as f:
                f.seek(offsets[path])
                chunk = f.read(size - offsets[path])
            offsets[path] = size
            *complete, pending[path] = (pending[path] + chunk).split(b"\n")
            for line in complete:
                emit(source, line.decode("utf-8", "replace"))
        time.sleep(interval)
