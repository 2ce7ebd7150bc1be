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

import json
from collections.abc import Callable, Mapping
from pathlib import Path

from cfai.config import PlatformConfig
from cfai.deploy.driver import Version, worker_outputs
from cfai.deploy.record import DeployRecord
from cfai.errors import DeployUserError
from cfai.local.platform import LocalPlatform
from cfai.outputs import Outputs
from cfai.provision.changes import Change
from cfai.render import RenderedWorker

__all__ = ["LocalDriver", "LocalTarget", "read_record", "record_path", "write_record"]


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


class LocalTarget:
    """The `cfai.deploy.stack.Target` of a local platform: applies through its REST API
    (`LocalPlatform.apply`), keeps the record in ``.cfai/<stack>/last-deploy.json``."""

    def __init__(
        self, project_dir: Path, stack: str, declaration: PlatformConfig, *, drain: float = 1.0
    ) -> None:
        self.declaration = declaration
        self.drain = drain
        self._driver = LocalDriver(project_dir, stack, drain=drain)
        self.platform = self._driver.platform

    def planned(self) -> list[Change]:
        return self.platform.planned(self.declaration)

    def apply(self, progress: Callable[[str], None]) -> list[Change]:
        self.platform.progress = progress
        return self.platform.apply(self.declaration)

    def driver(self) -> LocalDriver:
        return self._driver

    def save_record(self, record: DeployRecord) -> None:
        write_record(self.platform.state_dir, record)

    def settle(self) -> None:
        self.platform.publish(self.declaration)


def record_path(state_dir: Path) -> Path:
    """Where the local platform keeps its last `DeployRecord`."""
    return state_dir / "last-deploy.json"


def write_record(state_dir: Path, record: DeployRecord) -> None:
    path = record_path(state_dir)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record.as_json(), indent=2), encoding="utf-8")
    tmp.replace(path)


def read_record(state_dir: Path) -> DeployRecord | None:
    """The last deploy of the local platform in `state_dir`, None when none ran."""
    try:
        data = json.loads(record_path(state_dir).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        raise DeployUserError(f"{record_path(state_dir)} is not readable JSON: {err}") from None
    return DeployRecord.from_json(data)
