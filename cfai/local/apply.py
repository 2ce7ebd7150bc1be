"""What the local platform does to a running stack through the emulator's REST API.

`LocalApply` holds the steps `LocalPlatform` takes once the emulator answers: render the
Workers, upload them through the Workers scripts API (`cfai.local.provisioning`), wait for
them behind the router, and write the outputs map (`local_outputs`). `up` and `reload` chain
them; so do the three steps of `cfai deploy --local` (`cfai.deploy.local`), which live here:
what a declaration would change (`planned`), applying the part of it that is not a new
version of an existing Worker (`apply`), and rewriting the outputs map for the versions that
serve (`publish`).

Example::

    steps = LocalApply(stack, files, supervisor, versions, base_dir, None, outputs_path, print)
    steps.planned(declaration)  # [Change(resource="index", ...), ...]
    steps.apply(declaration, timeout=60.0)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cfai.config import PlatformConfig
from cfai.errors import LocalPlatformError
from cfai.kinds import kind_for
from cfai.local.processes import alive
from cfai.local.provisioning import deploy_workers, provision
from cfai.local.state import RunRecord, Secrets, StateFiles
from cfai.local.supervisor import Supervisor
from cfai.local.versions import ScriptVersions
from cfai.outputs import ApiOutput, GatewayOutput, IndexOutput, Outputs, TargetKind
from cfai.provision.changes import Change, planned_changes
from cfai.provision.rest import CloudflareClient
from cfai.render import RenderedWorker, Templates, render_platform

__all__ = ["LocalApply", "emulator_url", "local_outputs", "request_limits"]


@dataclass(frozen=True)
class LocalApply:
    """The steps against the running stack `stack` whose state `files` hold; Workers are
    rendered from `base_dir` with `templates` (None: cfai's own)."""

    stack: str
    files: StateFiles
    supervisor: Supervisor
    versions: ScriptVersions
    base_dir: Path
    templates: Templates | None
    outputs_path: Path
    progress: Callable[[str], None]

    def render(self, declaration: PlatformConfig) -> list[RenderedWorker]:
        """The Workers of `declaration`, rendered."""
        return render_platform(declaration, base_dir=self.base_dir, templates=self.templates)

    def deploy(
        self,
        declaration: PlatformConfig,
        rendered: Sequence[RenderedWorker],
        emulator_port: int,
        secrets: Secrets,
    ) -> None:
        """Upload `rendered` through the emulator's Workers scripts API."""
        self.progress(f"uploading {len(rendered)} Worker(s) through the Workers scripts API")
        deploy_workers(
            declaration,
            rendered,
            f"{emulator_url(emulator_port)}/client/v4",
            secrets.api_token,
            secrets.auth_token,
            self.progress,
        )

    def await_workers(self, rendered: Sequence[RenderedWorker], timeout: float) -> None:
        """Wait until every Worker of `rendered` answers its readiness probe."""
        self.supervisor.wait_workers(
            [(r.key, r.script_name, r.ready) for r in rendered],
            self.files,
            timeout,
        )

    def write_outputs(
        self,
        declaration: PlatformConfig,
        rendered: Sequence[RenderedWorker],
        port: int,
        secrets: Secrets,
    ) -> Outputs:
        """Write (and return) the outputs map of `rendered` on the router's ports, with the
        emulator on `port`."""
        table = self.files.read_routes().workers
        outputs = local_outputs(
            declaration,
            rendered,
            stack=self.stack,
            ports={r.key: table[r.script_name].port for r in rendered},
            emulator_url=emulator_url(port),
            secrets=secrets,
        )
        outputs.write(self.outputs_path)
        return outputs

    def running(self) -> RunRecord:
        """The run record when every process of the run is alive; else the error saying the
        platform is not running."""
        run = self.files.read_run()
        if run is None or not all(alive(pid) for pid in run.pids.values()):
            raise LocalPlatformError(f"the local platform of stack {self.stack!r} is not running")
        return run

    # -- cfai deploy --local -------------------------------------------------------------
    def planned(self, declaration: PlatformConfig) -> list[Change]:
        """See `LocalPlatform.planned`."""
        run = self.running()
        with CloudflareClient(
            f"{emulator_url(run.emulator_port)}/client/v4",
            token=self.files.secrets().api_token,
            account_id=declaration.account_id,
            max_retries=2,
        ) as cf:
            return planned_changes(
                declaration, self.render(declaration), cf, base_dir=self.base_dir
            )

    def apply(self, declaration: PlatformConfig, *, timeout: float = 60.0) -> list[Change]:
        """See `LocalPlatform.apply`."""
        run = self.running()
        rendered = self.render(declaration)
        secrets = self.files.secrets()
        api = f"{emulator_url(run.emulator_port)}/client/v4"
        changes = self.planned(declaration)
        if any(c.resource != "worker" for c in changes):
            provision(declaration, api, secrets.api_token, self.progress, base_dir=self.base_dir)
        new = {c.name for c in changes if c.resource == "worker"}
        created = [r for r in rendered if r.script_name in new]
        if created:
            limits = {**run.request_limits, **request_limits(created)}
            self.files.update_run(lambda r: setattr(r, "request_limits", limits))
            self.deploy(declaration, created, run.emulator_port, secrets)
            self.await_workers(created, timeout)
        self.publish(declaration)
        return changes

    def publish(self, declaration: PlatformConfig) -> Outputs:
        """See `LocalPlatform.publish`."""
        run = self.files.read_run()
        if run is None:
            raise LocalPlatformError(f"the local platform of stack {self.stack!r} is not running")
        rendered = self.render(declaration)
        outputs = self.write_outputs(declaration, rendered, run.emulator_port, self.files.secrets())
        workers = {}
        for key, w in outputs.workers.items():
            live = self.versions.live(w.script_name)
            sha = live.sha256 if live is not None else w.template_sha256
            workers[key] = w.model_copy(update={"template_sha256": sha})
        outputs = outputs.model_copy(update={"workers": workers})
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
                fields=kind_for(r.kind).output_fields(declaration.workers[r.key]),
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


def emulator_url(port: int) -> str:
    """Where the emulator on `port` answers."""
    return f"http://127.0.0.1:{port}"


def request_limits(rendered: Sequence[RenderedWorker]) -> dict[str, int]:
    """The router's request body limit of each script of `rendered`, by script name."""
    return {r.script_name: r.max_request_bytes for r in rendered}
