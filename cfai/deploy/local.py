"""`LocalDriver`: canary rollouts on the running local platform (`cfai deploy --local`).

Every step is a call of the Workers scripts API, the ones a cloud rollout makes: the live
version is read back from the latest deployment (``GET .../deployments``, then the
version with its modules), a new one is uploaded serving nothing
(``POST /workers/workers/{script}/versions``, as pulumi-cloudflare's ``WorkerVersion``) and
traffic moves with percentage deployments (``POST .../deployments``, ``WorkersDeployment``).
Behind the API the emulator runs each version in its own workerd process. Removing a version
waits (at least `drain` seconds) until the runtime stopped it: it drains the requests the
router already sent it first.

Example::

    driver = LocalDriver(Path("."), "local")
    report = deploy(rendered, stack="local", workers_dir=Path("workers"), driver=driver,
                    gate=gate)
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from cfai.deploy.driver import Version, worker_outputs
from cfai.errors import DeployUserError
from cfai.local.platform import LocalPlatform
from cfai.outputs import Outputs
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
        if self.platform.running() is None or not self.platform.routes().workers:
            raise DeployUserError(
                f"the local platform of stack {stack!r} is not running; "
                f"start it with `cfai local up{hint}`"
            )

    def _worker(self, worker: RenderedWorker) -> str:
        """The script name of a Worker the running platform serves."""
        entry = self.platform.routes().workers.get(worker.key)
        if entry is None:
            raise DeployUserError(
                f"Worker {worker.key!r} is not running locally (new since `cfai local up`); "
                "restart the platform with `cfai local up` to add it"
            )
        return entry.script_name

    def current(self, worker: RenderedWorker) -> Version | None:
        if worker.key not in self.platform.routes().workers:
            return None
        live = self.platform.current_version(worker.key)
        return None if live is None else Version(live.id, live.sha256, live.version_sha256)

    def upload(self, worker: RenderedWorker) -> Version:
        self._worker(worker)
        vid = self.platform.start_version(worker, timeout=self.timeout)
        return Version(vid, worker.sha256, worker.version_sha256)

    def split(self, worker: RenderedWorker, weights: Mapping[str, int]) -> None:
        if sum(weights.values()) != 100 or not 1 <= len(weights) <= 2:
            raise ValueError(f"a deployment has 1 or 2 versions summing to 100%: {weights}")
        self._worker(worker)
        self.platform.set_split(worker.key, weights)

    def outputs_for(self, worker: RenderedWorker, version: Version) -> Outputs:
        outputs = self.platform.outputs()
        if outputs is None:
            raise DeployUserError(
                f"the local platform of stack {self.platform.stack!r} has no outputs map; "
                "restart it with `cfai local up`"
            )
        return worker_outputs(outputs, worker, version)

    def remove(self, worker: RenderedWorker, version: Version) -> None:
        self._worker(worker)
        # Requests routed before the split changed finish first (`drain` seconds).
        self.platform.stop_version(worker.key, version.id, drain=self.drain)
