"""Drift: does what runs still equal what the repository says?

Three hashes per Worker, all `module_sha256` of a module:

- **repo**: the committed ``workers/<key>/index.js`` (`cfai.render.module_path`);
- **rendered**: a fresh render of the declaration (differs from repo when ``workers/`` is stale);
- **live**: the ``template_sha256`` the running Worker reports on ``GET /health``;

and, for the local platform, **deployed**: the main module the platform serves, read back
through the Workers scripts API as a cloud read does (``GET .../content/v2``: the bytes
workerd loads, so an edit that kept the old hash constant shows), with its bindings
(``GET .../settings``) compared with the declaration's by type and name. For a
cloud stack, ``pulumi preview --refresh --expect-no-changes`` (when the CLI is installed)
catches what a hash cannot: a gateway, index or binding changed in the dashboard, or a
Worker's bytes edited in place.

Example::

    report = drift_local(Path("."))
    print(report.ok, [(w.worker, w.status) for w in report.workers])
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml

from cfai.config import PlatformConfig, load_stack, stack_file
from cfai.deploy.record import DeployRecord
from cfai.errors import CfaiError, ConfigError, OutputsError, Problem, ToolMissingError
from cfai.local.versions import DeployedScript as Deployed
from cfai.outputs import Outputs, TargetKind, WorkerOutput
from cfai.provision.pulumi_cli import INSTALL_HINT, find_pulumi, run_pulumi, stack_outputs
from cfai.provision.rest import NoAnswer, fetch
from cfai.render import module_path, module_sha256, render_platform

if TYPE_CHECKING:
    from cfai.local.versions import DeployedScript as Deployed

__all__ = [
    "EXIT_DRIFT",
    "EXIT_IN_SYNC",
    "EXIT_REPO_AHEAD",
    "EXIT_USAGE",
    "DriftReport",
    "PulumiCheck",
    "WorkerDrift",
    "check_workers",
    "declared_outputs",
    "drift_details",
    "drift_local",
    "drift_stack",
    "pulumi_preview",
]

Status = Literal[
    "in sync", "drifted", "unreachable", "stale repo", "not in repo", "unchecked", "repo ahead"
]
#: Statuses that leave the platform in sync with the repository.
_CLEAN = ("in sync", "unchecked")
#: Exit statuses of `cfai drift` (`DriftReport.exit_code`).
EXIT_IN_SYNC, EXIT_DRIFT, EXIT_USAGE, EXIT_REPO_AHEAD = 0, 1, 2, 3
_NO_CHANGES = "no changes were expected but changes were proposed"


@dataclass(frozen=True)
class WorkerDrift:
    """One Worker's hashes and the verdict. `detail` says what differs and the fix."""

    worker: str
    script_name: str
    status: Status
    repo: str | None = None
    rendered: str | None = None
    live: str | None = None
    deployed: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class PulumiCheck:
    """``pulumi preview --refresh --expect-no-changes``: clean, changes, failed or skipped."""

    status: Literal["clean", "changes", "failed", "skipped"]
    note: str
    output: str = ""

    @property
    def ok(self) -> bool:
        return self.status in ("clean", "skipped")


@dataclass(frozen=True)
class DriftReport:
    target: str
    workers: tuple[WorkerDrift, ...]
    pulumi: PulumiCheck | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        """True when every Worker is in sync and Pulumi saw no changes (or did not run)."""
        return all(w.status in _CLEAN for w in self.workers) and (
            self.pulumi is None or self.pulumi.ok
        )

    @property
    def drifted(self) -> list[WorkerDrift]:
        return [w for w in self.workers if w.status not in _CLEAN]

    @property
    def exit_code(self) -> int:
        """0 in sync; 3 only "repo ahead" (what runs is what the last ``cfai deploy`` left:
        the repository's newer change was rolled back, or is not deployed yet); 1 anything
        else (changed behind Git's back, unreachable, Pulumi sees changes)."""
        if self.ok:
            return EXIT_IN_SYNC
        pulumi_ok = self.pulumi is None or self.pulumi.ok
        if pulumi_ok and all(w.status == "repo ahead" for w in self.drifted):
            return EXIT_REPO_AHEAD
        return EXIT_DRIFT

    def to_json(self) -> dict[str, Any]:
        """The report as plain data (``cfai drift --json``, for CI annotations)."""
        return {
            "target": self.target,
            "ok": self.ok,
            "exit_code": self.exit_code,
            "workers": [dataclasses.asdict(w) for w in self.workers],
            "pulumi": None if self.pulumi is None else dataclasses.asdict(self.pulumi),
            "notes": list(self.notes),
        }


def _sha(path: Path) -> str | None:
    try:
        return module_sha256(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def _health(url: str, timeout: float) -> tuple[str | None, str]:
    """(template_sha256 or None, why not)."""
    r = fetch("GET", f"{url}/health", timeout=timeout)
    if isinstance(r, NoAnswer):
        return None, f"unreachable: {r.error} on {url}/health"
    if r.status_code != 200:
        return None, f"unreachable: {url}/health answered HTTP {r.status_code}"
    try:
        body = r.json()
    except ValueError:
        return None, f"unreachable: {url}/health did not answer JSON"
    sha = body.get("template_sha256") if isinstance(body, dict) else None
    return (str(sha), "") if sha else (None, "/health reports no template_sha256")


def check_workers(
    outputs: Outputs,
    *,
    project: Path,
    platform: PlatformConfig | None = None,
    deployed: Mapping[str, Deployed] | None = None,
    record: DeployRecord | None = None,
    timeout: float = 10.0,
) -> list[WorkerDrift]:
    """Compare every Worker of `outputs` with ``<project>/workers``, a fresh render of
    `platform` (when given) and, by Worker key in `deployed`, what the platform says it
    serves: the hash of its main module and its bindings. With the stack's last deploy
    `record`, a Worker running what that deploy left while the repository holds newer code
    is "repo ahead", not "drifted"."""
    renders = render_platform(platform, base_dir=project) if platform is not None else []
    rendered = {r.key: r.sha256 for r in renders}
    versions = {r.key: r.version_sha256 for r in renders}
    declared = {r.key: frozenset((b.type, b.name) for b in r.bindings) for r in renders}
    found = []
    for name, w in sorted(outputs.workers.items()):
        module = module_path(Path("workers"), name)
        repo = _sha(project / module)
        fresh = rendered.get(name)
        live, why = _health(w.url, timeout)
        served = deployed.get(name) if deployed is not None else None
        status, detail = _verdict(module, repo, fresh, live, why, deployed is not None, served)
        if record is not None and (status == "drifted" or status in _CLEAN):
            status, detail = _ahead(
                record, name, (repo, versions.get(name, "")), live, served, status, detail
            )
        if status in _CLEAN and served is not None and name in declared:
            status, detail = _bindings(declared[name], served.bindings, status, detail)
        sha = served.sha256 if served else None
        found.append(WorkerDrift(name, w.script_name, status, repo, fresh, live, sha, detail))
    return found


def _ahead(
    record: DeployRecord,
    key: str,
    repo: tuple[str | None, str],
    live: str | None,
    served: Deployed | None,
    status: Status,
    detail: str,
) -> tuple[Status, str]:
    """ "repo ahead" when what runs is what the last deploy left serving and the repository
    holds another version — other code, or (`repo` = (module hash, the fresh render's
    `RenderedWorker.version_sha256`)) the same code with other settings; the record says why
    (rolled back, interrupted, not deployed yet)."""
    module, version = repo
    kept = record.workers.get(key)
    running = {sha for sha in (live, served.sha256 if served else None) if sha is not None}
    if kept is None or kept.serving is None or running != {kept.serving}:
        return status, detail
    other_code = module is not None and module != kept.serving
    other_settings = bool(version and kept.serving_version and version != kept.serving_version)
    if not (other_code or other_settings):
        return status, detail
    when = f"last deploy {record.at}"
    tried = (
        kept.candidate_version == version
        if version and kept.candidate_version
        else kept.candidate == module
    )
    if kept.outcome == "rolled_back" and tried:
        why = f"{when} {kept.summary()}"
    elif record.outcome == "in progress":
        why = f"{when} did not finish (interrupted); run `cfai deploy` again"
    else:
        why = f"not deployed yet ({when}: {record.outcome}); `cfai deploy` rolls it out"
    return "repo ahead", f"the repository is ahead of what runs: {why}"


def _bindings(
    want: frozenset[tuple[str, str]],
    have: frozenset[tuple[str, str]],
    status: Status,
    detail: str,
) -> tuple[Status, str]:
    if want == have:
        return status, detail
    return "drifted", (
        f"bindings differ from the declaration: missing {_pairs(want - have)}, "
        f"extra {_pairs(have - want)}"
    )


def _pairs(pairs: frozenset[tuple[str, str]]) -> str:
    return ", ".join(f"{name} ({kind})" for kind, name in sorted(pairs)) or "none"


def _verdict(
    module: Path,
    repo: str | None,
    fresh: str | None,
    live: str | None,
    why: str,
    compare_deployed: bool,
    served: Deployed | None,
) -> tuple[Status, str]:
    if repo is None:
        return "not in repo", f"{module} does not exist: run `cfai render` and commit"
    if why.startswith("unreachable"):
        return "unreachable", why
    if live is not None and live != repo:
        if fresh == live:
            return "drifted", (
                f"live runs a fresh render that {module} does not hold: run `cfai render` "
                "and commit"
            )
        return "drifted", f"live runs a module that is not {module} (changed out of band)"
    if compare_deployed and (served is None or served.sha256 != repo):
        return "drifted", (
            f"the deployed module (GET .../content/v2, what workerd loads) differs from {module}"
        )
    if fresh is not None and fresh != repo:
        return "stale repo", (
            f"{module} differs from a fresh render of the declaration: run `cfai render` and commit"
        )
    if live is None:
        return "unchecked", why
    return "in sync", ""


def pulumi_preview(
    stack: str, project: Path, *, timeout: float = 600.0, require: bool = False
) -> PulumiCheck:
    """``pulumi preview --refresh --expect-no-changes --stack STACK``; the exit status decides."""
    pulumi = find_pulumi()
    if pulumi is None:
        if require:
            raise ToolMissingError(f"--require-pulumi: {INSTALL_HINT}")
        return PulumiCheck(
            "skipped", "Pulumi check skipped: the Pulumi CLI is missing (only hashes compared)"
        )
    argv = ["preview", "--refresh", "--expect-no-changes", "--non-interactive"]
    argv += ["--diff", "--stack", stack]
    done = run_pulumi(pulumi, argv, project, timeout)
    if done is None:
        return PulumiCheck("failed", f"`pulumi preview --refresh` did not finish in {timeout:.0f}s")
    tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-40:])
    if done.returncode == 0:
        return PulumiCheck("clean", "pulumi preview --refresh: no changes")
    if _NO_CHANGES in done.stdout + done.stderr:
        return PulumiCheck("changes", "pulumi preview --refresh: the stack differs", tail)
    return PulumiCheck("failed", f"pulumi preview --refresh failed (exit {done.returncode})", tail)


def drift_local(project: Path, stack: str = "local", *, timeout: float = 10.0) -> DriftReport:
    """Drift of the local platform of `stack` (``cfai local up --stack STACK``)."""
    from cfai.local import LocalPlatform

    local = LocalPlatform(project, stack)
    outputs = local.outputs() if local.running() else None
    if outputs is None:
        raise OutputsError(
            f"the local platform of stack {stack!r} is not running; "
            f"start it with `cfai local up --stack {stack}`"
        )
    from cfai.deploy.local import read_record

    platform, notes = _declaration(stack, project)
    deployed = {key: local.deployed(key) for key in outputs.workers}
    workers = check_workers(
        outputs,
        project=local.project_dir,
        platform=platform,
        deployed={k: d for k, d in deployed.items() if d is not None},
        record=read_record(local.state_dir),
        timeout=timeout,
    )
    return DriftReport(f"local ({stack})", tuple(workers), None, tuple(notes))


def drift_stack(
    stack: str,
    project: Path,
    *,
    outputs: Outputs | None = None,
    record: DeployRecord | None = None,
    require_pulumi: bool = False,
    pulumi_timeout: float = 600.0,
    timeout: float = 10.0,
) -> DriftReport:
    """Drift of cloud stack `stack`: live hashes, then Pulumi's refresh-preview.

    Endpoints come from `outputs`, else ``pulumi stack output`` (the CLI), else the
    declaration (``https://<script>.<cfai:workersSubdomain>.workers.dev``). The last
    deploy's `record` comes from the rollout stack's ``last_deploy`` output unless given
    (without the CLI there is none: every difference is then "drifted")."""
    notes: list[str] = []
    if outputs is None:
        if find_pulumi() is not None:
            outputs = stack_outputs(stack, project)
        else:
            outputs = declared_outputs(stack, project)
            notes.append(
                "endpoints derived from the declaration (cfai:workersSubdomain): "
                "the Pulumi CLI is missing"
            )
    if record is None and find_pulumi() is not None:
        record, why = _rollout_record(stack, project)
        notes += [why] if why else []
    platform, said = _declaration(stack, project)
    notes += said
    workers = check_workers(
        outputs, project=project, platform=platform, record=record, timeout=timeout
    )
    check = pulumi_preview(stack, project, timeout=pulumi_timeout, require=require_pulumi)
    return DriftReport(stack, tuple(workers), check, tuple(notes))


def _rollout_record(stack: str, project: Path) -> tuple[DeployRecord | None, str]:
    """The ``last_deploy`` output of stack `stack`'s rollout stack (`cfai.deploy.cloud`), or
    None and why not (every difference is then reported as drift)."""
    import subprocess

    from cfai.deploy.cloud import read_last_deploy, rollout_stack_name

    try:
        return read_last_deploy(stack, project), ""
    except (CfaiError, OSError, subprocess.CalledProcessError) as err:
        name = rollout_stack_name(stack)
        return None, f"the last deploy's record (stack {name}) was not read: {err}"


def _declaration(stack: str, project: Path) -> tuple[PlatformConfig | None, list[str]]:
    if not stack_file(stack, project).is_file():
        return None, [f"no Pulumi.{stack}.yaml here: workers/ not compared with a fresh render"]
    return load_stack(stack, project), []


def declared_outputs(stack: str, project: Path) -> Outputs:
    """Where the Workers of cloud stack `stack` answer, from its declaration alone
    (``https://<script>.<cfai:workersSubdomain>.workers.dev``): drift without the Pulumi CLI."""
    platform = load_stack(stack, project)
    data = yaml.safe_load(stack_file(stack, project).read_text(encoding="utf-8")) or {}
    subdomain = (data.get("config") or {}).get("cfai:workersSubdomain")
    if not isinstance(subdomain, str) or not subdomain:
        raise ConfigError(
            [
                Problem(
                    "config.cfai:workersSubdomain",
                    "needed to find the Workers without the Pulumi CLI; set it, install the "
                    "CLI, or pass the stack outputs with --outputs FILE",
                )
            ]
        )
    workers = {}
    for key, w in platform.workers.items():
        script = platform.physical_name(key)
        workers[key] = WorkerOutput(
            kind=w.kind, script_name=script, url=f"https://{script}.{subdomain}.workers.dev"
        )
    return Outputs(target=TargetKind.CLOUDFLARE, stack=stack, workers=workers)


def drift_details(report: DriftReport) -> list[str]:
    """One line per Worker that is not plainly in sync: ``worker: what differs``."""
    return [f"{w.worker}: {w.detail}" for w in report.workers if w.detail]
