"""`LocalPlatform`: the local platform of one stack, and everything cfai does with it.

`up` is detached like ``docker compose up -d``: it starts the emulator, the router and
workerd with every Worker, returns once every Worker's ``/health`` answers and leaves them
running (their output goes to log files under ``.cfai/<stack>/``); `down` stops them. The
outputs map `up` writes to ``.cfai/<stack>/outputs.json`` is a `cfai.outputs.Outputs`, the
shape of the cloud stack's outputs, so the contract suite reads either.

Versions (`cfai deploy --local`): `start_version` runs a new version beside the serving one,
`set_split` moves traffic, `stop_version` retires one; `reload` (`cfai dev`) restarts the
Workers from a new declaration while the emulator keeps its state.

Example::

    platform = LocalPlatform(Path("."))
    outputs = platform.up()
    outputs.workers["assistant"].url
    platform.status().running
    platform.down()
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cfai.config import PlatformConfig, load_stack
from cfai.errors import LocalPlatformError
from cfai.kinds import declared_models, kind_for
from cfai.local.ports import plan_ports, reserve, run_fingerprint, serves
from cfai.local.processes import alive
from cfai.local.provisioning import provision
from cfai.local.state import FIRST_PROCESS, Routes, RunRecord, Secrets, StateFiles, VersionRoute
from cfai.local.status import LocalStatus, ProcessStatus
from cfai.local.supervisor import Supervisor
from cfai.local.versions import Versions, first_routes
from cfai.local.workerd import WorkerdWorker
from cfai.outputs import (
    ApiOutput,
    GatewayOutput,
    IndexOutput,
    Outputs,
    TargetKind,
)
from cfai.render import RenderedWorker, Templates, render_platform

__all__ = ["LocalPlatform", "Progress", "local_outputs"]

Progress = Callable[[str], None]
_WORKERS = Path("workers")  # the first version's modules, under the state directory


@dataclass
class LocalPlatform:
    """The local platform of one stack in `project_dir` (state under ``.cfai/<stack>``)."""

    project_dir: Path
    stack: str = "local"
    settings: Mapping[str, Any] = field(default_factory=dict)
    progress: Progress = lambda message: None
    # Where custom Worker modules are resolved (a `--config` file's directory); default project_dir.
    source_dir: Path | None = None
    # Extra environment of the emulator only (secrets such as the remote AI token: never argv).
    emulator_env: Mapping[str, str] = field(default_factory=dict)
    # The Worker templates (default: cfai's own); another directory tries a template edit.
    templates: Templates | None = None
    state_dir: Path = field(init=False)
    # Set by `up`: True when it found the same run already serving and left it alone.
    reused: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self.project_dir = self.project_dir.resolve()
        self.state_dir = self.project_dir / ".cfai" / self.stack
        self._files = StateFiles(self.state_dir)
        self._supervisor = Supervisor(self.state_dir, self.project_dir)
        self._versions = Versions(self._files, self._supervisor)

    def _render(self, declaration: PlatformConfig) -> list[RenderedWorker]:
        return render_platform(
            declaration, base_dir=self.source_dir or self.project_dir, templates=self.templates
        )

    def _emulator_settings(self, declaration: PlatformConfig) -> dict[str, Any]:
        # The emulator also answers the models the catalog does not list that the Workers
        # use: by their declared task or the project's catalog.json (`declared_models`).
        dims = {k: i.resolved_dimensions for k, i in declaration.indexes.items()}
        models = declared_models(declaration.workers, self.source_dir or self.project_dir, dims)
        if not models:
            return dict(self.settings)
        return {**self.settings, "models": {**models, **self.settings.get("models", {})}}

    # -- what runs -----------------------------------------------------------------------
    @property
    def outputs_path(self) -> Path:
        return self.state_dir / "outputs.json"

    def running(self) -> RunRecord | None:
        """The run record when every process of the run is alive, else None."""
        run = self._files.read_run()
        if run is not None and all(alive(pid) for pid in run.pids.values()):
            return run
        return None

    def status(self) -> LocalStatus:
        """Each recorded process, alive or not, and the endpoints of the last `up`."""
        run = self._files.read_run()
        if run is None:
            return LocalStatus(self.stack)
        processes = {name: ProcessStatus(pid, alive(pid)) for name, pid in run.pids.items()}
        outputs = self.outputs()
        return LocalStatus(self.stack, processes, dict(outputs.endpoints) if outputs else {})

    def outputs(self) -> Outputs | None:
        """The outputs map of the last `up` or `reload`, None when there is none."""
        return Outputs.read(self.outputs_path) if self.outputs_path.is_file() else None

    def routes(self) -> Routes:
        """The router's table: each Worker's public port, versions and split."""
        return self._files.read_routes()

    # -- lifecycle -----------------------------------------------------------------------
    def up(
        self,
        declaration: PlatformConfig | None = None,
        *,
        timeout: float = 60.0,
        port: int | None = None,
        reuse: bool = False,
    ) -> Outputs:
        """Start everything and return the outputs map. `declaration` defaults to the stack's
        (``Pulumi.<stack>.yaml``). Restarts a running platform, unless `reuse` and it runs the
        same declaration, rendered code and settings (then `reused`).
        `port`: Workers on port, port+1, ... by key, the emulator next; default free ports."""
        declaration = declaration or load_stack(self.stack, self.project_dir)
        rendered = self._render(declaration)
        fingerprint = run_fingerprint(declaration, rendered, self.settings)
        current = self.running() if reuse else None
        outputs = self.outputs() if current is not None else None
        self.reused = bool(
            current
            and current.fingerprint == fingerprint
            and (port is None or current.port == port)
            and outputs is not None
            and serves(current, outputs)
        )
        if self.reused and outputs is not None:
            return outputs
        self.down()
        worker_ports, emulator_port = plan_ports((r.key for r in rendered), port)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        secrets = self._files.secrets()
        run = RunRecord(emulator_port=emulator_port, fingerprint=fingerprint, port=port)
        # workerd's private ports are held open from now until workerd takes them over.
        listeners = {key: reserve() for key in worker_ports}
        try:
            private = {key: int(sock.getsockname()[1]) for key, sock in listeners.items()}
            workers = self._supervisor.place(rendered, private, _WORKERS)
            # The router starts with the emulator (both are Python processes that take a
            # moment to import); workerd listens on private ports behind it.
            self.progress(f"starting emulator on 127.0.0.1:{emulator_port}")
            run.pids["emulator"] = self._supervisor.start_emulator(
                emulator_port,
                account_id=declaration.account_id,
                api_token=secrets.api_token,
                settings=self._emulator_settings(declaration),
                env=self.emulator_env,
            )
            self._files.write_routes(first_routes(workers, worker_ports))
            run.pids["router"] = self._supervisor.start_router(self._files.routes_path)
            self._files.write_run(run)
            api = _emulator_url(emulator_port)
            self._supervisor.wait_ready(
                f"{api}/__cfai/health", "emulator", run.pids["emulator"], timeout, log="emulator"
            )
            provision(
                declaration,
                f"{api}/client/v4",
                secrets.api_token,
                self.progress,
                base_dir=self.source_dir or self.project_dir,
            )
            self.progress(f"starting workerd with {len(workers)} Worker(s)")
            run.pids[FIRST_PROCESS] = self._supervisor.start_workerd(
                FIRST_PROCESS, workers, emulator_port, secrets.auth_token, listeners
            )
            self._files.write_run(run)
            for w in workers:
                ready = kind_for(w.rendered.kind).readiness
                self._supervisor.wait_ready(
                    f"http://127.0.0.1:{worker_ports[w.rendered.key]}{ready.path}",
                    f"Worker {w.rendered.key}",
                    run.pids[FIRST_PROCESS],
                    timeout,
                    log=FIRST_PROCESS,
                    router=run.pids["router"],
                    ready=ready,
                )
        except BaseException:
            for pid in run.pids.values():
                self._supervisor.stop(pid)
            self._files.forget_run()
            raise
        finally:
            for sock in listeners.values():
                sock.close()  # workerd has its own copies
        front = [replace(w, port=worker_ports[w.rendered.key]) for w in workers]
        return self._publish(declaration, front, emulator_port, secrets)

    def down(self) -> bool:
        """Stop the processes of a previous `up`. True when something was running."""
        run = self._files.read_run()
        if run is None:
            return False
        was = False
        for pid in reversed(list(run.pids.values())):
            was = alive(pid) or was
            self._supervisor.stop(pid)
        self._files.forget_run()
        return was

    def reset(self) -> bool:
        """Stop the platform if it runs and delete its state directory (indexes, gateway
        logs, tokens). True when it ran."""
        try:
            was = self.down()
        except LocalPlatformError:
            was = False  # a damaged run record: deleting the state is the fix
        shutil.rmtree(self.state_dir, ignore_errors=True)
        return was

    def reload(
        self,
        declaration: PlatformConfig,
        *,
        previous: PlatformConfig | None = None,
        timeout: float = 60.0,
    ) -> Outputs:
        """Re-provision (when gateways, indexes, finetunes or the prefix changed since `previous`),
        re-render and restart workerd of the running platform; the emulator keeps its state
        and each Worker its public port. Returns the new outputs map."""
        run = self._files.read_run()
        if run is None:
            raise LocalPlatformError(f"the local platform of stack {self.stack!r} is not running")
        rendered = self._render(declaration)
        secrets = self._files.secrets()
        if previous is None or (
            previous.name_prefix,
            previous.gateways,
            previous.indexes,
            previous.finetunes,
        ) != (
            declaration.name_prefix,
            declaration.gateways,
            declaration.indexes,
            declaration.finetunes,
        ):
            api = f"{_emulator_url(run.emulator_port)}/client/v4"
            base_dir = self.source_dir or self.project_dir
            provision(declaration, api, secrets.api_token, self.progress, base_dir=base_dir)
        # workerd serves on private ports behind the router, which keeps the public ones.
        private = self._versions.private_ports([r.key for r in rendered])
        self._supervisor.stop(run.pids[FIRST_PROCESS])
        workers = self._supervisor.place(rendered, private, _WORKERS)
        run.pids[FIRST_PROCESS] = self._supervisor.start_workerd(
            FIRST_PROCESS, workers, run.emulator_port, secrets.auth_token
        )
        run.fingerprint = run_fingerprint(declaration, rendered, self.settings)
        self._files.write_run(run)
        for w in workers:
            ready = kind_for(w.rendered.kind).readiness
            self._supervisor.wait_ready(
                f"http://127.0.0.1:{w.port}{ready.path}",
                f"Worker {w.rendered.key}",
                run.pids[FIRST_PROCESS],
                timeout,
                log=FIRST_PROCESS,
                ready=ready,
            )
        public = self._versions.rebase(workers)
        front = [replace(w, port=public[w.rendered.key]) for w in workers]
        return self._publish(declaration, front, run.emulator_port, secrets)

    # -- versions ------------------------------------------------------------------------
    def start_version(
        self, rendered: RenderedWorker, *, timeout: float = 60.0
    ) -> tuple[str, VersionRoute]:
        """Run `rendered` as a new version of its Worker in a workerd process of its own,
        serving no traffic until `set_split` names it. Returns its id and route."""
        run = self.running()
        if run is None:
            raise LocalPlatformError(f"the local platform of stack {self.stack!r} is not running")
        return self._versions.start(
            rendered,
            emulator_port=run.emulator_port,
            auth_token=self._files.secrets().auth_token,
            timeout=timeout,
        )

    def set_split(self, key: str, weights: Mapping[str, int]) -> None:
        """Send Worker `key`'s traffic to its versions by `weights` (id -> percent); the
        router follows on its next request."""
        self._versions.set_split(key, weights)

    def stop_version(self, key: str, version_id: str, *, drain: float = 0.0) -> None:
        """Retire a version that serves no traffic: out of the routes, then, after `drain`
        seconds for the requests it is still answering, its process stops once no routed
        version lives in it."""
        gone = self._versions.remove(key, version_id)
        if gone is not None:
            time.sleep(drain)
            self._versions.stop_unrouted(gone.process)

    # -- outputs -------------------------------------------------------------------------
    def _publish(
        self,
        declaration: PlatformConfig,
        workers: Sequence[WorkerdWorker],
        port: int,
        secrets: Secrets,
    ) -> Outputs:
        outputs = local_outputs(
            declaration,
            [w.rendered for w in workers],
            stack=self.stack,
            ports={w.rendered.key: w.port for w in workers},
            emulator_url=_emulator_url(port),
            secrets=secrets,
        )
        outputs.write(self.outputs_path)
        return outputs


def local_outputs(
    declaration: PlatformConfig,
    rendered: Sequence[RenderedWorker],
    *,
    stack: str,
    ports: Mapping[str, int],
    emulator_url: str,
    secrets: Secrets,
) -> Outputs:
    """The outputs map of `declaration` served locally: Workers on 127.0.0.1:`ports[key]`,
    the REST API (and gateway logs) at `emulator_url`."""
    api = ApiOutput(
        base_url=f"{emulator_url}/client/v4",
        account_id=declaration.account_id,
        token=secrets.api_token,
    )
    return Outputs(
        target=TargetKind.LOCAL,
        stack=stack,
        workers={
            r.key: r.output(
                url=f"http://127.0.0.1:{ports[r.key]}",
                contract=declaration.workers[r.key].contract,
            )
            for r in rendered
        },
        gateways={
            key: GatewayOutput(
                id=declaration.physical_name(key),
                logs_url=f"{api.gateway_url(declaration.physical_name(key))}/logs",
            )
            for key in declaration.gateways
        },
        indexes={
            key: IndexOutput(
                name=declaration.physical_name(key),
                dimensions=idx.resolved_dimensions,
                metric=idx.resolved_metric,
            )
            for key, idx in declaration.indexes.items()
        },
        auth_token=secrets.auth_token,
        api=api,
    )


def _emulator_url(port: int) -> str:
    return f"http://127.0.0.1:{port}"
