"""What a deploy target must do for a canary rollout: the `Driver` protocol, `Version`,
the override header, and the contract gate that judges a version.

A driver holds at most two versions of a Worker in its deployment (Cloudflare's limit) and
moves traffic between them by percentage; the orchestrator (`cfai.deploy.orchestrator`)
decides when. Both the local platform (`cfai.deploy.local`) and a Pulumi stack
(`cfai.deploy.cloud`) implement it.

Example::

    version = driver.upload(rendered)                       # beside the current one, no traffic
    driver.split(rendered, {current.id: 90, version.id: 10})
    failed = gate(driver.outputs_for(rendered, version), "assistant at 10%")
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from cfai.errors import DeployUserError  # re-exported: cfai.deploy.DeployUserError
from cfai.outputs import Outputs
from cfai.render import RenderedWorker

__all__ = [
    "OVERRIDE_HEADER",
    "DeployUserError",
    "Driver",
    "Failure",
    "Gate",
    "Version",
    "contract_gate",
    "override_header",
    "worker_outputs",
]

#: Cloudflare's header sending one request to a named version of a Worker in its deployment.
OVERRIDE_HEADER = "Cloudflare-Workers-Version-Overrides"


@dataclass(frozen=True)
class Version:
    """One uploaded version of a Worker: its id, the template hash its `/health` reports and,
    when the driver knows it, its `RenderedWorker.version_sha256` (code and settings: a
    settings-only change keeps the template hash). "" = not known (a version cfai did not
    upload), judged by the template hash alone."""

    id: str
    sha256: str
    version_sha256: str = ""

    def differs_from(self, worker: RenderedWorker) -> bool:
        """True when `worker` is not what this version runs."""
        if self.sha256 != worker.sha256:
            return True
        return bool(self.version_sha256) and self.version_sha256 != worker.version_sha256


@dataclass(frozen=True)
class Failure:
    """One check that did not pass on the new version (``worker`` is the check's test id)."""

    check: str
    worker: str = "-"
    message: str = ""


class Driver(Protocol):
    """A deploy target's versions and traffic split, one Worker at a time."""

    def current(self, worker: RenderedWorker) -> Version | None:
        """The version serving most traffic now, or None for a Worker never deployed."""

    def upload(self, worker: RenderedWorker) -> Version:
        """Upload `worker` as a new version beside the current one, serving no traffic."""

    def split(self, worker: RenderedWorker, weights: Mapping[str, int]) -> None:
        """Deploy the versions in `weights` (1 or 2 ids, percentages summing to 100)."""

    def outputs_for(self, worker: RenderedWorker, version: Version) -> Outputs:
        """An outputs map holding only `worker`, whose requests reach `version` alone."""

    def remove(self, worker: RenderedWorker, version: Version) -> None:
        """Forget `version` (it serves no traffic any more)."""


#: Runs the contract on an outputs map; returns what failed (empty: the version passed).
Gate = Callable[[Outputs, str], list[Failure]]


def override_header(script_name: str, version_id: str) -> dict[str, str]:
    """The request header pinning `script_name` to `version_id`.

    >>> override_header("acme-chat", "8f0c")
    {'Cloudflare-Workers-Version-Overrides': 'acme-chat="8f0c"'}
    """
    return {OVERRIDE_HEADER: f'{script_name}="{version_id}"'}


def worker_outputs(outputs: Outputs, worker: RenderedWorker, version: Version) -> Outputs:
    """`outputs` narrowed to `worker`, its entry carrying the override for `version`."""
    return outputs.narrowed(
        worker.key,
        request_headers=override_header(worker.script_name, version.id),
        template_sha256=version.sha256,
    )


@dataclass
class _ContractGate:
    project: Path
    live: bool = False
    wait: float | None = None
    extra_args: list[str] = field(default_factory=lambda: ["-m", "not cfai_rate_limit"])

    def __call__(self, outputs: Outputs, label: str) -> list[Failure]:
        from cfai.contract import run_contract

        with tempfile.TemporaryDirectory(prefix="cfai-deploy-") as tmp:
            path = Path(tmp) / "outputs.json"  # holds secrets: a private temp dir, mode 600
            outputs.write(path)
            # pytest's own report would interleave with the rollout's progress; the
            # failures it holds are returned instead.
            with contextlib.redirect_stdout(io.StringIO()):
                run = run_contract(
                    path,
                    project=self.project,
                    wait=self.wait,
                    live=self.live,
                    extra_args=self.extra_args,
                )
        if not run.results:
            return [Failure("contract", message=f"no checks ran (pytest exit {run.exit_code})")]
        return [Failure(r.check, r.worker, r.message or r.outcome) for r in run.failed]


def contract_gate(project: Path, *, live: bool = False, wait: float | None = None) -> Gate:
    """The contract suite as a gate. The gateway rate-limit check never runs: exhausting a
    gateway's limit mid-rollout would throttle the traffic the rollout protects."""
    return _ContractGate(project.resolve(), live=live, wait=wait)
