"""`LocalPlatform`: the local platform of one stack, and everything cfai does with it.

`up` is detached like ``docker compose up -d``: it starts the emulator and the router, then
provisions the stack through the emulator's Cloudflare REST API exactly as the cloud path
does (gateways, indexes, and every Worker as a script upload with workers.dev on); the
emulator's runtime runs each deployed version in workerd behind the router
(`cfai.local.runtime`). `up` returns once every Worker's readiness probe answers and
leaves everything running (output in log files under ``.cfai/<stack>/``); `down` stops it
all. The outputs map `up` writes to ``.cfai/<stack>/outputs.json`` is a
`cfai.outputs.Outputs`, the shape of the cloud stack's outputs, so the contract suite reads
either.

`cfai deploy --local` reads what a declaration would change (`planned`), applies it
(`apply`) and rewrites the outputs map (`publish`): those steps, like `up`'s uploads, are
`cfai.local.apply`'s. Versions go through the same API (`cfai.local.versions`):
`start_version` uploads a version that serves nothing, `set_split` deploys a split,
`stop_version` waits for a retired version to stop; `reload` (`cfai dev`) uploads the
Workers whose code changed while the emulator keeps its state.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cfai.config import PlatformConfig, load_stack
from cfai.errors import LocalPlatformError
from cfai.kinds import declared_models
from cfai.local.apply import LocalApply, emulator_url, local_outputs, request_limits
from cfai.local.ports import plan_ports, public_ports, restart_notice, run_fingerprint, serves
from cfai.local.processes import alive
from cfai.local.provisioning import provision
from cfai.local.state import Routes, RunRecord, StateFiles
from cfai.local.status import LocalStatus, ProcessStatus
from cfai.local.supervisor import Supervisor
from cfai.local.versions import DeployedScript, LiveVersion, ScriptVersions
from cfai.local.workerd import find_workerd
from cfai.outputs import Outputs
from cfai.provision.changes import Change
from cfai.render import RenderedWorker, Templates

__all__ = ["LocalPlatform", "Progress", "local_outputs"]

Progress = Callable[[str], None]


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
    # The code this object last had serving (set by `up` and `reload`): what `cfai dev`
    # restores when a reload fails, without rendering a since-broken template again.
    last_rendered: list[RenderedWorker] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self.project_dir = self.project_dir.resolve()
        self.state_dir = self.project_dir / ".cfai" / self.stack
        self._files = StateFiles(self.state_dir)
        self._supervisor = Supervisor(self.state_dir, self.project_dir)
        self._versions = ScriptVersions(self._files, self.outputs_path)

    def _steps(self) -> LocalApply:
        # Built per call: `progress` (and `source_dir`, `templates`) may be set after
        # construction, as `cfai deploy --local` does with `progress`.
        return LocalApply(
            stack=self.stack,
            files=self._files,
            supervisor=self._supervisor,
            versions=self._versions,
            base_dir=self.source_dir or self.project_dir,
            templates=self.templates,
            outputs_path=self.outputs_path,
            progress=self.progress,
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
        """The router's table: each public script's port, versions and split, by Worker
        key for the Workers of the last `up` (by script name for scripts uploaded
        otherwise, with wrangler say)."""
        table = self._files.read_routes()
        outputs = self.outputs()
        keys = {w.script_name: k for k, w in outputs.workers.items()} if outputs else {}
        return Routes(workers={keys.get(name, name): w for name, w in table.workers.items()})

    def script_urls(self) -> dict[str, str]:
        """Where every script on workers.dev answers, by script name: the Workers of the
        stack and those uploaded through the API by other clients (wrangler, an SDK)."""
        table = self._files.read_routes().workers
        return {name: f"http://127.0.0.1:{w.port}" for name, w in sorted(table.items())}

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
        steps = self._steps()
        rendered = steps.render(declaration)
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
            self.last_rendered = rendered
            return outputs
        before = self.running()
        previous = self.outputs() if before is not None else None
        kept = public_ports(previous) if port is None else {}
        if before is not None:
            changed = before.fingerprint != fingerprint
            self.progress(restart_notice(self.stack, previous, rendered, changed))
        self.down()
        workerd = find_workerd(self.project_dir)  # before anything starts: exit 2, nothing left
        worker_ports, emulator_port = plan_ports(
            (r.key for r in rendered),
            port,
            kept,
            before.emulator_port if before is not None and port is None else None,
        )
        for key, old in sorted(kept.items()):
            if key in worker_ports and worker_ports[key] != old:
                self.progress(
                    f"Worker {key}: port {old} is taken now; it moves to {worker_ports[key]}"
                )
        self.state_dir.mkdir(parents=True, exist_ok=True)
        secrets = self._files.secrets()
        self._files.write_run(
            RunRecord(
                emulator_port=emulator_port,
                fingerprint=fingerprint,
                port=port,
                request_limits=request_limits(rendered),
            )
        )
        self._files.write_routes(Routes())  # a fresh table: the runtime fills it
        try:
            # The router starts with the emulator (both are Python processes that take a
            # moment to import); the emulator's runtime starts workerd per version.
            self.progress(f"starting emulator on 127.0.0.1:{emulator_port}")
            emulator = self._supervisor.start_emulator(
                emulator_port,
                account_id=declaration.account_id,
                api_token=secrets.api_token,
                settings=self._emulator_settings(declaration),
                env=self.emulator_env,
                workerd=workerd,
                ports={r.script_name: worker_ports[r.key] for r in rendered},
            )
            self._record("emulator", emulator)
            self._record("router", self._supervisor.start_router(self._files.routes_path))
            api = emulator_url(emulator_port)
            self._supervisor.wait_ready(
                f"{api}/__cfai/health", "emulator", emulator, timeout, log="emulator"
            )
            provision(
                declaration,
                f"{api}/client/v4",
                secrets.api_token,
                self.progress,
                base_dir=self.source_dir or self.project_dir,
            )
            steps.deploy(declaration, rendered, emulator_port, secrets)
            steps.await_workers(rendered, timeout)
        except BaseException:
            self.down()
            raise
        self.last_rendered = rendered
        return steps.write_outputs(declaration, rendered, emulator_port, secrets)

    def _record(self, name: str, pid: int) -> None:
        self._files.update_run(lambda run: run.pids.__setitem__(name, pid))

    def down(self) -> bool:
        """Stop the processes of a previous `up`. True when something was running."""
        run = self._files.read_run()
        if run is None:
            return False
        was = any(alive(pid) for pid in run.pids.values())
        # The emulator first: it starts workerd processes, so nothing new starts after it
        # stopped (it stops its own on the way out); then whatever the record still holds.
        if "emulator" in run.pids:
            self._supervisor.stop(run.pids["emulator"])
        run = self._files.read_run() or run
        for name, pid in reversed(list(run.pids.items())):
            if name != "emulator":
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
        rendered: Sequence[RenderedWorker] | None = None,
        timeout: float = 60.0,
    ) -> Outputs:
        """Re-provision (when gateways, indexes, finetunes or the prefix changed since
        `previous`) and upload every Worker whose rendered code or bindings changed, as a new
        version at 100% (the emulator's runtime starts it, switches the route and stops the
        old one after a drain); the emulator keeps its state and each Worker its public port.
        `rendered`: upload this code instead of rendering `declaration` again (restoring a
        last good build whose template has since been broken: `last_rendered`).
        Returns the new outputs map."""
        run = self._files.read_run()
        if run is None:
            raise LocalPlatformError(f"the local platform of stack {self.stack!r} is not running")
        steps = self._steps()
        rendered = list(rendered) if rendered is not None else steps.render(declaration)
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
            api = f"{emulator_url(run.emulator_port)}/client/v4"
            base_dir = self.source_dir or self.project_dir
            provision(declaration, api, secrets.api_token, self.progress, base_dir=base_dir)
        limits = request_limits(rendered)
        self._files.update_run(lambda r: setattr(r, "request_limits", limits))
        steps.deploy(declaration, rendered, run.emulator_port, secrets)
        steps.await_workers(rendered, timeout)
        fingerprint = run_fingerprint(declaration, rendered, self.settings)
        self._files.update_run(lambda r: setattr(r, "fingerprint", fingerprint))
        self.last_rendered = rendered
        return steps.write_outputs(declaration, rendered, run.emulator_port, secrets)

    # -- cfai deploy --local -------------------------------------------------------------
    def planned(self, declaration: PlatformConfig) -> list[Change]:
        """What `apply` would change, read through the REST API (nothing is changed)."""
        return self._steps().planned(declaration)

    def apply(self, declaration: PlatformConfig, *, timeout: float = 60.0) -> list[Change]:
        """Apply every part of `declaration` that is not an existing Worker's new version
        (`cfai deploy --local`'s first part): gateways, indexes and their metadata indexes,
        finetunes, and the Workers with no deployment yet (their first version serves at
        once, on workers.dev). Existing Workers keep serving what they serve: their new
        versions are canaried. Returns what was changed (`planned_changes`, read first)."""
        return self._steps().apply(declaration, timeout=timeout)

    def publish(self, declaration: PlatformConfig) -> Outputs:
        """Rewrite the outputs map for `declaration` as it runs now: every declared Worker,
        each with the template hash of the version serving most of its traffic (a version
        not promoted yet, or rolled back, is not what the map promises)."""
        return self._steps().publish(declaration)

    # -- versions ------------------------------------------------------------------------
    def _script(self, key: str) -> str:
        outputs = self.outputs()
        if outputs is None or key not in outputs.workers:
            raise LocalPlatformError(
                f"Worker {key!r} is not behind the local router (new since `cfai local up`?); "
                "restart the platform with `cfai local up`"
            )
        return outputs.workers[key].script_name

    def current_version(self, key: str) -> LiveVersion | None:
        """Worker `key`'s version serving most traffic (id, template hash), read through
        the API; None when it has no deployment."""
        return self._versions.live(self._script(key))

    def deployed(self, key: str) -> DeployedScript | None:
        """What Worker `key` serves, read back through the API (content and settings)."""
        return self._versions.deployed_script(self._script(key))

    def start_version(self, rendered: RenderedWorker, *, timeout: float = 60.0) -> str:
        """Upload `rendered` as a new version of its Worker: started (a Worker that does not
        start is refused) and serving no traffic until `set_split` names it. Its id."""
        if self.running() is None:
            raise LocalPlatformError(f"the local platform of stack {self.stack!r} is not running")
        self._script(rendered.key)
        return self._versions.upload(rendered, self._files.secrets().auth_token)

    def set_split(self, key: str, weights: Mapping[str, int]) -> None:
        """Send Worker `key`'s traffic to its versions by `weights` (id -> percent): a new
        deployment; the router follows on its next request."""
        self._versions.split(self._script(key), weights)

    def stop_version(self, key: str, version_id: str, *, drain: float = 0.0) -> None:
        """Retire a version that serves no traffic: out of the deployment if it is there at
        0%, then wait (at least `drain` seconds) until its process stopped."""
        script = self._script(key)
        split = self._versions.deployed(script)
        if split.get(version_id):
            raise ValueError(f"{key}: version {version_id} still serves traffic")
        if version_id in split:
            self._versions.split(script, {v: p for v, p in split.items() if v != version_id})
        time.sleep(drain)
        self._versions.wait_stopped(version_id, timeout=30.0)
