"""Versions of the local platform's Workers, side by side behind the router.

`cfai local up` starts every Worker's first version in one workerd process (``workerd``,
config ``workerd.capnp``) on private ports and the router (`cfai.local.router`) on the
public ones. `cfai deploy --local` adds each new version in a workerd process of its own
(``workerd-<id8>``), so what serves the old version is never restarted, and moves traffic by
rewriting ``routes.json``; a process is stopped once none of its versions is routed.
Every process is recorded in ``run.json``, so `cfai local down` stops them all.

Example::

    platform = LocalPlatform(Path("."))
    version = start_version(platform, rendered)         # {"id", "upstream", "sha256", "process"}
    routes = read_routes(platform.state_dir / ROUTES)
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cfai.kinds import kind_for
from cfai.local.ports import free_port, reserve
from cfai.local.processes import forget, stop
from cfai.local.router import read_routes, write_routes
from cfai.local.workerd import WorkerdWorker, launch
from cfai.render import RenderedWorker

if TYPE_CHECKING:
    from cfai.local.supervisor import LocalPlatform

__all__ = [
    "ROUTES",
    "first_routes",
    "private_ports",
    "rebase_routes",
    "start_router",
    "start_version",
    "stop_process",
    "update_run",
]

ROUTES = "routes.json"


def first_routes(workers: Sequence[WorkerdWorker], public: Mapping[str, int]) -> dict[str, Any]:
    """The routing table of a fresh `up`: each Worker's one version (process ``workerd``) at 100%."""
    table: dict[str, Any] = {}
    for w in workers:
        vid = str(uuid.uuid4())
        table[w.rendered.key] = {
            "script_name": w.rendered.script_name,
            "port": public[w.rendered.key],
            "versions": {vid: _entry(w, "workerd")},
            "split": {vid: 100},
        }
    return {"workers": table}


def _entry(w: WorkerdWorker, process: str) -> dict[str, Any]:
    return {"upstream": f"127.0.0.1:{w.port}", "sha256": w.rendered.sha256, "process": process}


def start_router(platform: LocalPlatform, routes: Mapping[str, Any]) -> int:
    """Write ``routes.json`` and start the router on its public ports; its pid."""
    path = platform.state_dir / ROUTES
    write_routes(path, routes)
    argv = [sys.executable, "-m", "cfai.local.router", "--routes", str(path)]
    return platform._spawn(argv, "router", {})


def update_run(platform: LocalPlatform, pids: Mapping[str, int | None]) -> None:
    """Add (pid) or drop (None) processes of the run record."""
    path = platform.state_dir / "run.json"
    run = json.loads(path.read_text())
    for name, pid in pids.items():
        if pid is None:
            run["pids"].pop(name, None)
        else:
            run["pids"][name] = pid
    path.write_text(json.dumps(run))


def start_version(
    platform: LocalPlatform, rendered: RenderedWorker, *, timeout: float = 60.0
) -> dict[str, Any]:
    """Start `rendered` as a new version in its own workerd process, recorded in run.json
    and added to routes.json (serving no traffic until a split names it)."""
    run = platform.running()
    if run is None:
        raise RuntimeError("the local platform is not running")
    vid = str(uuid.uuid4())
    process = f"workerd-{vid[:8]}"
    module = Path("versions") / vid / rendered.main_module
    (platform.state_dir / module).parent.mkdir(parents=True, exist_ok=True)
    (platform.state_dir / module).write_text(rendered.source, encoding="utf-8")
    listener = reserve()  # held until the new workerd takes it over
    port = int(listener.getsockname()[1])
    worker = WorkerdWorker(rendered=rendered, port=port, module_path=module.as_posix())
    token = platform._secrets()["auth_token"]
    with listener:
        argv, env, fds = launch(
            platform.state_dir,
            process,
            [worker],
            run["emulator_port"],
            token,
            platform.project_dir,
            {rendered.key: listener},
        )
        pid = platform._spawn(argv, process, env, fds)
    update_run(platform, {process: pid})
    ready = kind_for(rendered.kind).readiness
    url = f"http://127.0.0.1:{worker.port}{ready.path}"
    what = f"{process} (Worker {rendered.key} version {vid[:8]})"
    platform._wait(url, what, pid, timeout, ready=ready)
    path = platform.state_dir / ROUTES
    routes = read_routes(path)
    routes["workers"][rendered.key]["versions"][vid] = _entry(worker, process)
    write_routes(path, routes)
    return {"id": vid, **_entry(worker, process)}


def stop_process(platform: LocalPlatform, process: str) -> None:
    """Stop a workerd process once no routed version lives in it."""
    routes = read_routes(platform.state_dir / ROUTES)
    for w in routes["workers"].values():
        if any(v["process"] == process for v in w["versions"].values()):
            return
    run = platform.running() or json.loads((platform.state_dir / "run.json").read_text())
    pid = run["pids"].get(process)
    if pid is not None:
        stop(int(pid))
        forget(int(pid))
    update_run(platform, {process: None})


def private_ports(platform: LocalPlatform, keys: Sequence[str]) -> dict[str, int]:
    """Where process ``workerd`` serves each Worker now (free ports for Workers it lacks)."""
    routes = read_routes(platform.state_dir / ROUTES)["workers"]
    found: dict[str, int] = {}
    for key in keys:
        versions = routes.get(key, {}).get("versions", {}).values()
        ports = [
            int(v["upstream"].rsplit(":", 1)[1]) for v in versions if v["process"] == "workerd"
        ]
        found[key] = ports[0] if ports else free_port()
    return found


def rebase_routes(platform: LocalPlatform, workers: Sequence[WorkerdWorker]) -> dict[str, int]:
    """After process ``workerd`` was restarted with `workers`: each Worker's one version is
    the one it serves, at 100%; other versions' processes stop. Returns the public ports."""
    from cfai.errors import LocalPlatformError

    path = platform.state_dir / ROUTES
    routes = read_routes(path)
    table = routes["workers"]
    stale = {v["process"] for w in table.values() for v in w["versions"].values()} - {"workerd"}
    missing = sorted(w.rendered.key for w in workers if w.rendered.key not in table)
    if missing:
        raise LocalPlatformError(
            f"new Worker(s) {', '.join(missing)} need new public ports; restart with `cfai local up`"
        )
    for w in workers:
        vid = str(uuid.uuid4())
        table[w.rendered.key]["versions"] = {vid: _entry(w, "workerd")}
        table[w.rendered.key]["split"] = {vid: 100}
    write_routes(path, routes)
    for process in sorted(stale):
        stop_process(platform, process)
    return {w.rendered.key: int(table[w.rendered.key]["port"]) for w in workers}
