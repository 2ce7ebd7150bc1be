"""`LocalDriver`: canary rollouts on the running local platform (`cfai deploy --local`).

Versions are workerd processes behind the router (`cfai.local.versions`); a split is a
rewrite of ``routes.json``, which the router reads on its next request. Removing a version
waits `drain` seconds for requests it is still answering, then stops its process once no
routed version lives in it.

Example::

    driver = LocalDriver(Path("."), "local")
    report = deploy(rendered, workers_dir=Path("workers"), driver=driver, gate=gate)
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cfai.contract import read_outputs
from cfai.deploy.driver import Version, worker_outputs
from cfai.errors import DeployUserError
from cfai.local.router import read_routes, write_routes
from cfai.local.supervisor import LocalPlatform
from cfai.local.versions import ROUTES, start_version, stop_process
from cfai.render import RenderedWorker

__all__ = ["LocalDriver"]


class LocalDriver:
    """The `Driver` of a local platform started by `cfai local up --stack STACK`."""

    def __init__(
        self, project_dir: Path, stack: str = "local", *, drain: float = 1.0, timeout: float = 60.0
    ) -> None:
        self.platform = LocalPlatform(project_dir, stack)
        self.drain = drain
        self.timeout = timeout
        hint = "" if stack == "local" else f" --stack {stack}"
        if self.platform.running() is None or not self._routes_path.is_file():
            raise DeployUserError(
                f"the local platform of stack {stack!r} is not running; "
                f"start it with `cfai local up{hint}`"
            )

    @property
    def _routes_path(self) -> Path:
        return self.platform.state_dir / ROUTES

    def _worker(self, routes: Mapping[str, Any], worker: RenderedWorker) -> dict[str, Any]:
        entry = routes["workers"].get(worker.key)
        if entry is None:
            raise DeployUserError(
                f"Worker {worker.key!r} is not running locally (new since `cfai local up`); "
                "restart the platform with `cfai local up` to add it"
            )
        return dict(entry)

    def current(self, worker: RenderedWorker) -> Version | None:
        routes = read_routes(self._routes_path)
        if worker.key not in routes["workers"]:
            return None
        split = self._worker(routes, worker)["split"]
        if not split:
            return None
        vid = max(split, key=lambda v: (split[v], v))
        return Version(vid, routes["workers"][worker.key]["versions"][vid]["sha256"])

    def upload(self, worker: RenderedWorker) -> Version:
        self._worker(read_routes(self._routes_path), worker)
        started = start_version(self.platform, worker, timeout=self.timeout)
        return Version(str(started["id"]), worker.sha256)

    def split(self, worker: RenderedWorker, weights: Mapping[str, int]) -> None:
        if sum(weights.values()) != 100 or not 1 <= len(weights) <= 2:
            raise ValueError(f"a deployment has 1 or 2 versions summing to 100%: {weights}")
        routes = read_routes(self._routes_path)
        entry = self._worker(routes, worker)
        unknown = set(weights) - set(entry["versions"])
        if unknown:
            raise ValueError(f"{worker.key}: no version {sorted(unknown)}")
        entry["split"] = {vid: int(pct) for vid, pct in weights.items()}
        routes["workers"][worker.key] = entry
        write_routes(self._routes_path, routes)

    def outputs_for(self, worker: RenderedWorker, version: Version) -> dict[str, Any]:
        return worker_outputs(read_outputs(self.platform.outputs_path), worker, version)

    def remove(self, worker: RenderedWorker, version: Version) -> None:
        routes = read_routes(self._routes_path)
        entry = self._worker(routes, worker)
        if entry["split"].get(version.id):
            raise ValueError(f"{worker.key}: version {version.id} still serves traffic")
        gone = entry["versions"].pop(version.id, None)
        entry["split"].pop(version.id, None)
        routes["workers"][worker.key] = entry
        write_routes(self._routes_path, routes)
        if gone is not None:
            time.sleep(self.drain)  # requests routed before the split changed finish first
            stop_process(self.platform, str(gone["process"]))
