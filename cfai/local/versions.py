"""Versions of the local platform's Workers, side by side behind the router.

`cfai local up` starts every Worker's first version in one workerd process (``workerd``,
config ``workerd.capnp``) on private ports and the router (`cfai.local.router`) on the
public ones. `cfai deploy --local` adds each new version in a workerd process of its own
(``workerd-<id8>``), so what serves the old version is never restarted, and moves traffic by
rewriting ``routes.json``; a process is stopped once none of its versions is routed.
Every process is recorded in ``run.json``, so `cfai local down` stops them all.

`cfai.local.platform.LocalPlatform` is the public face (`start_version`, `set_split`,
`stop_version`); this module keeps the routing table and the version processes consistent.

Example::

    versions = Versions(StateFiles(state_dir), Supervisor(state_dir, project_dir))
    version_id, route = versions.start(rendered, emulator_port=8790, auth_token=token)
    versions.set_split("assistant", {old_id: 90, version_id: 10})
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

from cfai.errors import LocalPlatformError
from cfai.kinds import kind_for
from cfai.local.ports import free_port, reserve
from cfai.local.state import FIRST_PROCESS, Routes, StateFiles, VersionRoute, WorkerRoute
from cfai.local.supervisor import Supervisor
from cfai.local.workerd import WorkerdWorker
from cfai.render import RenderedWorker

__all__ = ["Versions", "first_routes", "version_route"]


def version_route(worker: WorkerdWorker, process: str) -> VersionRoute:
    """The routing entry of `worker` served by workerd process `process`."""
    return VersionRoute(
        upstream=f"127.0.0.1:{worker.port}",
        sha256=worker.rendered.sha256,
        process=process,
        max_request_bytes=worker.rendered.max_request_bytes,
    )


def first_routes(workers: Sequence[WorkerdWorker], public: Mapping[str, int]) -> Routes:
    """The routing table of a fresh `up`: each Worker's one version (process ``workerd``) at 100%."""
    table = {}
    for w in workers:
        vid = str(uuid.uuid4())
        table[w.rendered.key] = WorkerRoute(
            script_name=w.rendered.script_name,
            port=public[w.rendered.key],
            versions={vid: version_route(w, FIRST_PROCESS)},
            split={vid: 100},
        )
    return Routes(workers=table)


class Versions:
    """The version processes and routing table of one running local platform."""

    def __init__(self, files: StateFiles, supervisor: Supervisor) -> None:
        self.files = files
        self.supervisor = supervisor

    def start(
        self,
        rendered: RenderedWorker,
        *,
        emulator_port: int,
        auth_token: str,
        timeout: float = 60.0,
    ) -> tuple[str, VersionRoute]:
        """Start `rendered` as a new version in its own workerd process, recorded in the run
        and added to the routes (serving no traffic until a split names it)."""
        run = self.files.read_run()
        if run is None:
            raise LocalPlatformError("the local platform is not running")
        _route(self.files.read_routes(), rendered.key)
        vid = str(uuid.uuid4())
        process = f"workerd-{vid[:8]}"
        listener = reserve()  # held until the new workerd takes it over
        with listener:
            port = int(listener.getsockname()[1])
            # Apart from the first version's modules (workers/), which drift compares.
            (worker,) = self.supervisor.place(
                [rendered], {rendered.key: port}, Path("versions") / vid
            )
            pid = self.supervisor.start_workerd(
                process, [worker], emulator_port, auth_token, {rendered.key: listener}
            )
        run.pids[process] = pid
        self.files.write_run(run)
        ready = kind_for(rendered.kind).readiness
        self.supervisor.wait_ready(
            f"http://127.0.0.1:{worker.port}{ready.path}",
            f"{process} (Worker {rendered.key} version {vid[:8]})",
            pid,
            timeout,
            log=process,
            ready=ready,
        )
        route = version_route(worker, process)
        routes = self.files.read_routes()
        _route(routes, rendered.key).versions[vid] = route
        self.files.write_routes(routes)
        return vid, route

    def set_split(self, key: str, weights: Mapping[str, int]) -> None:
        """Route Worker `key`'s traffic by `weights` (version id -> percent)."""
        routes = self.files.read_routes()
        worker = _route(routes, key)
        unknown = set(weights) - set(worker.versions)
        if unknown:
            raise ValueError(f"{key}: no version {sorted(unknown)}")
        worker.split = {vid: int(pct) for vid, pct in weights.items()}
        self.files.write_routes(routes)

    def remove(self, key: str, version_id: str) -> VersionRoute | None:
        """Drop a version that serves no traffic from the routes; its entry (None: unknown)."""
        routes = self.files.read_routes()
        worker = _route(routes, key)
        if worker.split.get(version_id):
            raise ValueError(f"{key}: version {version_id} still serves traffic")
        gone = worker.versions.pop(version_id, None)
        worker.split.pop(version_id, None)
        self.files.write_routes(routes)
        return gone

    def stop_unrouted(self, process: str) -> None:
        """Stop workerd process `process` unless some routed version lives in it."""
        if process in self.files.read_routes().processes():
            return
        run = self.files.read_run()
        if run is None:
            return
        pid = run.pids.pop(process, None)
        if pid is not None:
            self.supervisor.stop(pid)
        self.files.write_run(run)

    def private_ports(self, keys: Sequence[str]) -> dict[str, int]:
        """Where process ``workerd`` serves each Worker now (free ports for Workers it lacks)."""
        table = self.files.read_routes().workers
        found: dict[str, int] = {}
        for key in keys:
            versions = table[key].versions.values() if key in table else []
            ports = [v.port for v in versions if v.process == FIRST_PROCESS]
            found[key] = ports[0] if ports else free_port()
        return found

    def rebase(self, workers: Sequence[WorkerdWorker]) -> dict[str, int]:
        """After process ``workerd`` was restarted with `workers`: each Worker's one version is
        the one it serves, at 100%; other versions' processes stop. Returns the public ports."""
        routes = self.files.read_routes()
        table = routes.workers
        stale = routes.processes() - {FIRST_PROCESS}
        missing = sorted(w.rendered.key for w in workers if w.rendered.key not in table)
        if missing:
            raise LocalPlatformError(
                f"new Worker(s) {', '.join(missing)} need new public ports; "
                "restart with `cfai local up`"
            )
        for w in workers:
            vid = str(uuid.uuid4())
            table[w.rendered.key].versions = {vid: version_route(w, FIRST_PROCESS)}
            table[w.rendered.key].split = {vid: 100}
        self.files.write_routes(routes)
        for process in sorted(stale):
            self.stop_unrouted(process)
        return {w.rendered.key: table[w.rendered.key].port for w in workers}


def _route(routes: Routes, key: str) -> WorkerRoute:
    if key not in routes.workers:
        raise LocalPlatformError(
            f"Worker {key!r} is not behind the local router (new since `cfai local up`?); "
            "restart the platform with `cfai local up`"
        )
    return routes.workers[key]
