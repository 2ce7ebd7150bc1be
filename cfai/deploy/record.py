"""The last deploy of a stack, as `cfai deploy` leaves it for `cfai drift` and the next deploy.

A `DeployRecord` says, per Worker, which template hash `cfai deploy` left serving and, when
its canary failed, the candidate it rolled back, the percentage it failed at and the checks
that failed. It is written twice per deploy: ``in progress`` before the first canary (so an
interrupted run is recognisable) and the outcome at the end. Drift reads it to tell "the
repository is ahead" (what runs is what the last deploy left; the repository's change was
rolled back, or is not deployed yet) from "changed behind Git's back" (what runs is not what
the last deploy left).

Where it lives: ``.cfai/<stack>/last-deploy.json`` on the local platform; the ``last_deploy``
output of the rollout stack ``<stack>-rollout`` on Cloudflare (`cfai.deploy.cloud`).

Example::

    record = DeployRecord.of("staging", report)
    record.workers["assistant"].summary()   # "rolled back at 10% on chat::test_chat_json_answer"
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from cfai.deploy.driver import Version
from cfai.deploy.orchestrator import DeployReport
from cfai.render import RenderedWorker

__all__ = ["DeployRecord", "WorkerRecord"]

RecordOutcome = Literal["in progress", "promoted", "rolled back", "unchanged"]


@dataclass(frozen=True)
class WorkerRecord:
    """One Worker after a deploy: ``serving`` the template hash left serving; ``candidate``
    the hash the deploy tried (None: nothing to canary)."""

    serving: str | None
    candidate: str | None = None
    outcome: str = "unchanged"
    failed_at: int | None = None
    checks: tuple[str, ...] = ()
    #: `RenderedWorker.version_sha256` of each (code and settings; "" when not known).
    serving_version: str = ""
    candidate_version: str = ""

    def summary(self) -> str:
        """``rolled back at 10% on check, check`` / ``promoted`` / ``in progress``."""
        if self.outcome == "rolled_back" and self.failed_at is not None:
            return f"rolled back at {self.failed_at}% on {', '.join(self.checks) or 'an error'}"
        if self.outcome == "rolled_back":
            return "rolled back (another Worker of the deploy failed)"
        return self.outcome.replace("_", " ")

    def as_json(self) -> dict[str, Any]:
        return {
            "serving": self.serving,
            "candidate": self.candidate,
            "outcome": self.outcome,
            "failed_at": self.failed_at,
            "checks": list(self.checks),
            "serving_version": self.serving_version,
            "candidate_version": self.candidate_version,
        }


@dataclass(frozen=True)
class DeployRecord:
    """The last deploy of `stack`: when, its outcome, and each Worker's `WorkerRecord`."""

    stack: str
    outcome: RecordOutcome
    at: str
    workers: Mapping[str, WorkerRecord] = field(default_factory=dict)

    @classmethod
    def started(
        cls,
        stack: str,
        serving: Mapping[str, Version | None],
        candidates: Mapping[str, RenderedWorker],
    ) -> DeployRecord:
        """The record written before the first canary: each Worker's serving version, and
        the candidate of each one about to be canaried."""
        workers = {}
        for key, version in sorted(serving.items()):
            new = candidates.get(key)
            workers[key] = WorkerRecord(
                version.sha256 if version else None,
                new.sha256 if new else None,
                "in progress" if new else "unchanged",
                serving_version=version.version_sha256 if version else "",
                candidate_version=new.version_sha256 if new else "",
            )
        return cls(stack, "in progress", _now(), workers)

    @classmethod
    def of(cls, stack: str, report: DeployReport) -> DeployRecord:
        """The record of a finished deploy."""
        workers = {}
        for r in report.rollouts:
            promoted = r.outcome == "promoted"
            kept = r.new if promoted else r.old
            workers[r.worker] = WorkerRecord(
                kept.sha256 if kept else None,
                r.new.sha256 if r.new else None,
                r.outcome,
                r.failed_at,
                tuple(sorted({f.check.rsplit("::", 1)[-1] for f in r.failures})),
                serving_version=kept.version_sha256 if kept else "",
                candidate_version=r.new.version_sha256 if r.new else "",
            )
        outcome: RecordOutcome = (
            "rolled back"
            if report.rolled_back
            else "promoted"
            if any(r.outcome == "promoted" for r in report.rollouts)
            else "unchanged"
        )
        return cls(stack, outcome, _now(), workers)

    def as_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "outcome": self.outcome,
            "at": self.at,
            "workers": {k: w.as_json() for k, w in sorted(self.workers.items())},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DeployRecord:
        workers = {
            str(k): WorkerRecord(
                w.get("serving"),
                w.get("candidate"),
                str(w.get("outcome", "unchanged")),
                w.get("failed_at"),
                tuple(w.get("checks") or ()),
                str(w.get("serving_version") or ""),
                str(w.get("candidate_version") or ""),
            )
            for k, w in (data.get("workers") or {}).items()
        }
        outcome = data.get("outcome", "unchanged")
        return cls(str(data.get("stack", "")), outcome, str(data.get("at", "")), workers)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
