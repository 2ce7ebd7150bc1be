"""Where the local platform listens, and what makes two `up`s the same run.

Ports are free ones by default. ``cfai local up --port N`` gives the Workers N, N+1, ...
in the order of their keys and the emulator the next port; a taken port is the user's to
free, so it is a `PortInUseError` naming it.

Example::

    workers, emulator = plan_ports(["assistant", "kb"], 8700)  # {"assistant": 8700, "kb": 8701}, 8702
"""

from __future__ import annotations

import hashlib
import json
import socket
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from cfai.config import PlatformConfig
from cfai.errors import PortInUseError
from cfai.local.state import RunRecord
from cfai.outputs import Outputs
from cfai.render import RenderedWorker

__all__ = [
    "free_port",
    "plan_ports",
    "public_ports",
    "reserve",
    "restart_notice",
    "run_fingerprint",
    "serves",
]


def free_port() -> int:
    """A port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def reserve() -> socket.socket:
    """A listening socket on a free 127.0.0.1 port, held until handed to workerd with
    ``--socket-fd``: a port chosen and closed could be taken (e.g. by an outgoing
    connection's ephemeral port) before workerd binds it."""
    s = socket.socket()
    # As workerd does for its own sockets: without it, connections left in TIME_WAIT on this
    # port keep a restarted workerd (cfai dev) from binding it again.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    # workerd serves the socket with the backlog given here. With 128, a burst of a few
    # hundred connections overflows it, and the kernel drops handshakes the clients then
    # retry after TCP's initial retransmission timeout, 1 s (RFC 6298, section 2). The
    # kernel caps it at net.core.somaxconn (https://man7.org/linux/man-pages/man2/listen.2.html).
    s.listen(socket.SOMAXCONN)
    return s


def _check_free(port: int, what: str) -> None:
    with socket.socket() as s:
        # As the servers that will bind it do (uvicorn, workerd): connections of a previous
        # run left in TIME_WAIT do not make the port taken, a listener still does.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            raise PortInUseError(
                f"port {port} ({what}) is already in use on 127.0.0.1; free it or choose another --port"
            ) from None


def _is_free(port: int) -> bool:
    try:
        _check_free(port, "")
    except PortInUseError:
        return False
    return True


def plan_ports(
    keys: Iterable[str],
    base: int | None,
    kept: Mapping[str, int] | None = None,
    kept_emulator: int | None = None,
) -> tuple[dict[str, int], int]:
    """Ports of the Workers (by key) and of the emulator. `base` None: free ones, and a
    Worker's port of the previous run (`kept`, by key; `kept_emulator`) again while it is
    free, so that a restart leaves the URLs users have working."""
    ordered = sorted(keys)
    if base is None:
        kept = dict(kept or {})
        wanted = {key: kept[key] for key in ordered if key in kept}
        if kept_emulator is not None:
            wanted[""] = kept_emulator  # "" is no Worker key (keys are names)
        taken = {port for port in wanted.values() if _is_free(port)}
        chosen = {key: port for key, port in wanted.items() if port in taken}
        for key in [*ordered, ""]:
            while key not in chosen:
                port = free_port()
                if port not in taken:  # not another's port of the previous run
                    chosen[key] = port
                    taken.add(port)
        emulator = chosen.pop("")
        return chosen, emulator
    if not 1 <= base <= 65535 - len(ordered):
        raise PortInUseError(
            f"--port {base}: need {len(ordered) + 1} ports from there, up to 65535"
        )
    workers = {key: base + i for i, key in enumerate(ordered)}
    emulator = base + len(ordered)
    for key, port in workers.items():
        _check_free(port, f"Worker {key}")
    _check_free(emulator, "emulator")
    return workers, emulator


def run_fingerprint(
    platform: PlatformConfig, rendered: Iterable[RenderedWorker], settings: Mapping[str, Any]
) -> str:
    """Same declaration, same rendered code and same emulator settings: same fingerprint."""
    data = {
        "platform": json.loads(platform.model_dump_json()),
        "rendered": sorted((r.key, r.sha256) for r in rendered),
        "settings": dict(settings),
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def serves(run: RunRecord, outputs: Outputs) -> bool:
    """Whether `outputs` is what `run` serves: the run recorded all of its processes (an
    `up` killed midway may not have), the outputs name its emulator, and every endpoint in
    them accepts a connection (an `up` killed before writing them leaves the last run's)."""
    # The runtime records a ``workerd-<id8>`` process per running version (`cfai.local.runtime`).
    versions = [name for name in run.pids if name.startswith("workerd-")]
    if not {"emulator", "router"} <= run.pids.keys() or len(versions) < len(outputs.workers):
        return False
    if outputs.api is None or urlsplit(outputs.api.base_url).port != run.emulator_port:
        return False
    urls = [outputs.api.base_url, *(w.url for w in outputs.workers.values())]
    return all(_answers(url) for url in urls)


def _answers(url: str) -> bool:
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), 2).close()
    except OSError:
        return False
    return True


def public_ports(outputs: Outputs | None) -> dict[str, int]:
    """Each Worker's public port in `outputs` (by key)."""
    if outputs is None:
        return {}
    ports = {key: urlsplit(w.url).port for key, w in outputs.workers.items()}
    return {key: p for key, p in ports.items() if p is not None}


def restart_notice(
    stack: str, previous: Outputs | None, rendered: Sequence[RenderedWorker], changed: bool
) -> str:
    """What a restart of a running platform restarts, said before it stops anything."""
    why = " with another declaration, code or settings" if changed else ""
    old = set(previous.workers) if previous is not None else set()
    keys = [r.key for r in rendered]
    kept = [k for k in keys if k in old]
    parts = [f"stack {stack} is running{why}: restarting the emulator and workerd"]
    if kept:
        parts.append(f"Workers {', '.join(kept)} keep their ports where free")
    if added := [k for k in keys if k not in old]:
        parts.append(f"new: {', '.join(added)}")
    if removed := sorted(old - set(keys)):
        parts.append(f"removed: {', '.join(removed)}")
    return "; ".join(parts)
