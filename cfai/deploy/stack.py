"""`cfai deploy`: one command applies a stack's whole declaration, in two parts.

1. **apply**: every change that is not an existing Worker's new version — gateways, indexes
   and metadata indexes, finetunes, new Workers (their first version, on workers.dev) — is
   applied at once (`Target.apply`: the local platform's REST API, or ``pulumi up`` of the
   platform stack, whose program never changes an existing Worker's version);
2. **canary**: every existing Worker whose version differs from the rendered one (code,
   bindings, vars, compatibility settings) is canaried by `cfai.deploy.orchestrator.deploy`,
   contract-gated, rolled back on any failure. A rollback leaves part 1 in place: a new
   gateway stays, it changes no Worker's behaviour by itself.

Before the canary a `DeployRecord` marked ``in progress`` is saved; after it, the outcome
(`Target.save_record`), which `cfai drift` reads. `preview` shows both parts without
changing anything (the pull request's comment).

Example::

    target = LocalTarget(Path("."), "local")
    report = apply_and_canary(rendered, target, stack="local", workers_dir=Path("workers"),
                              gate=contract_gate(Path(".")))
    raise SystemExit(report.exit_code)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cfai.deploy.driver import Driver, Gate, Version
from cfai.deploy.orchestrator import DEFAULT_STEPS, DeployReport, deploy
from cfai.deploy.record import DeployRecord
from cfai.errors import StaleRenderError
from cfai.provision.changes import Change
from cfai.render import RenderedWorker, stale_paths

__all__ = ["Canary", "DeployPreview", "StackReport", "Target", "apply_and_canary", "preview"]

Progress = Callable[[str], None]


class Target(Protocol):
    """Where a stack runs: the local platform (`cfai.deploy.local.LocalTarget`) or a Pulumi
    stack (`cfai.deploy.cloud.CloudTarget`)."""

    def planned(self) -> list[Change]:
        """What `apply` would change now (nothing is changed)."""

    def apply(self, progress: Progress) -> list[Change]:
        """Apply everything but existing Workers' new versions; return what changed."""

    def driver(self) -> Driver:
        """The canary driver, once `apply` ran (new Workers now exist)."""

    def save_record(self, record: DeployRecord) -> None:
        """Keep `record` where `cfai drift` and the next deploy find it."""

    def settle(self) -> None:
        """After the canary: make the stack's outputs say what runs."""


@dataclass(frozen=True)
class Canary:
    """A Worker the canary part will roll out: from the version serving now to `sha256`."""

    worker: str
    serving: Version | None
    sha256: str
    #: `RenderedWorker.version_sha256` of the candidate (code and settings).
    version_sha256: str = ""

    def line(self) -> str:
        was = f"{self.serving.sha256[:12]} (version {self.serving.id[:8]})" if self.serving else "-"
        settings = (
            " (same code, other settings)"
            if self.serving is not None and self.serving.sha256 == self.sha256
            else ""
        )
        return f"canary worker {self.worker}: {was} -> {self.sha256[:12]}{settings}"


@dataclass(frozen=True)
class DeployPreview:
    """Both parts of a deploy, as `preview` finds them."""

    changes: tuple[Change, ...]
    canaries: tuple[Canary, ...]

    def lines(self) -> list[str]:
        apply = [f"  {c.line()}" for c in self.changes] or ["  nothing"]
        canary = [f"  {c.line()}" for c in self.canaries] or ["  nothing"]
        return ["apply (at once):", *apply, "canary (contract-gated):", *canary]

    def as_json(self) -> dict[str, Any]:
        return {
            "apply": [c.as_json() for c in self.changes],
            "canary": [
                {
                    "worker": c.worker,
                    "from": c.serving.sha256 if c.serving else None,
                    "to": c.sha256,
                }
                for c in self.canaries
            ],
        }


@dataclass
class StackReport:
    """What `apply_and_canary` did: the applied changes and the canary's report."""

    changes: list[Change]
    canary: DeployReport
    created: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0 applied and promoted (or nothing to do), 1 a canary rolled back."""
        return self.canary.exit_code


def _check_stale(stack: str, rendered: Sequence[RenderedWorker], workers_dir: Path) -> None:
    stale = stale_paths({stack: rendered}, workers_dir, every_stack=False)
    if stale:
        raise StaleRenderError(stale)


def preview(
    rendered: Sequence[RenderedWorker], target: Target, *, stack: str, workers_dir: Path
) -> DeployPreview:
    """Both parts of ``cfai deploy`` for `rendered`, changing nothing."""
    _check_stale(stack, rendered, workers_dir)
    changes = target.planned()
    new = {c.name for c in changes if c.resource == "worker"}
    driver = target.driver()
    canaries = []
    for w in rendered:
        if w.script_name in new:
            continue
        current = driver.current(w)
        if current is None or current.differs_from(w):
            canaries.append(Canary(w.key, current, w.sha256, w.version_sha256))
    return DeployPreview(tuple(changes), tuple(canaries))


def apply_and_canary(
    rendered: Sequence[RenderedWorker],
    target: Target,
    *,
    stack: str,
    workers_dir: Path,
    gate: Gate,
    steps: Sequence[int] = DEFAULT_STEPS,
    progress: Progress = lambda message: None,
) -> StackReport:
    """Apply part 1, then canary part 2; see the module docstring."""
    _check_stale(stack, rendered, workers_dir)
    changes = target.apply(progress)
    for change in changes:
        progress(f"applied: {change.line()}")
    created = [c.name for c in changes if c.resource == "worker"]
    driver = target.driver()
    serving: dict[str, Version | None] = {}
    candidates = {}
    for w in rendered:
        current = serving[w.key] = driver.current(w)
        if current is None or current.differs_from(w):
            candidates[w.key] = w
    target.save_record(DeployRecord.started(stack, serving, candidates))
    report = deploy(
        rendered,
        stack=stack,
        workers_dir=workers_dir,
        driver=driver,
        gate=gate,
        steps=steps,
        progress=progress,
    )
    target.save_record(DeployRecord.of(stack, report))
    target.settle()
    return StackReport(changes, report, created)
