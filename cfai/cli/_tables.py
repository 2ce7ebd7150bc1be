"""How the verbs show what the library returns: rich tables of the local platform, drift,
deploy, contract and cost reports, and the command name printed commands use."""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:  # the verbs import what they show on demand (the CLI starts fast)
    from cfai.contract import ContractRun
    from cfai.deploy import DeployReport
    from cfai.gitops.cost import CostEstimate
    from cfai.gitops.drift import DriftReport
    from cfai.outputs import Outputs


def command_name() -> str:
    """How the user invoked cfai (``.venv/bin/cfai`` from `make local`, ``cfai`` on PATH),
    so printed commands paste as they are."""
    argv0 = sys.argv[0] if sys.argv else ""
    return shlex.quote(argv0) if os.path.basename(argv0) == "cfai" else "cfai"


def local_table(outputs: Outputs, stack: str) -> Table:
    """worker, kind, endpoint, template hash of a local platform."""
    table = Table(
        "worker", "kind", "endpoint", "template sha256", title=f"cfai local platform ({stack})"
    )
    for key, w in sorted(outputs.workers.items()):
        table.add_row(key, w.kind, w.url, (w.template_sha256 or "")[:12])
    return table


def _short(sha: str | None) -> str:
    return sha[:12] if sha else "-"


def drift_table(report: DriftReport) -> Table:
    """worker, repo hash, live hash, status; what differs and the fix come after it."""
    table = Table(
        "worker",
        "script",
        "repo sha256",
        "live sha256",
        "status",
        title=f"cfai drift: {escape(report.target)}",
    )
    style = {"in sync": "green", "unchecked": "yellow"}
    for w in report.workers:
        colour = style.get(w.status, "red")
        table.add_row(
            escape(w.worker),
            escape(w.script_name),
            _short(w.repo),
            _short(w.live),
            f"[{colour}]{w.status}[/]",
        )
    return table


def deploy_table(report: DeployReport) -> Table:
    """One row per Worker (and per failed check): outcome, where it passed and failed."""
    table = Table("worker", "outcome", "passed at", "failed at", "check", "detail")
    for r in report.rollouts:
        rows: list[Any] = list(r.failures) or [None]
        for f in rows:
            table.add_row(
                r.worker,
                r.outcome + (f" ({r.note})" if r.note else ""),
                ",".join(f"{p}%" for p in r.passed),
                f"{r.failed_at}%" if r.failed_at is not None else "",
                f"{f.worker} {f.check}" if f else "",
                f.message if f else "",
            )
    return table


def summary_table(run: ContractRun, title: str = "cfai contract") -> Table:
    """One row per check and Worker: worker, check, result, why it failed."""
    table = Table("worker", "check", "result", "detail", title=title)
    style = {"passed": "green", "failed": "red", "error": "red", "skipped": "yellow"}
    for r in sorted(run.results, key=lambda r: (r.worker, r.check)):
        table.add_row(
            escape(r.worker),
            escape(r.check),
            f"[{style[r.outcome]}]{r.outcome}[/]",
            escape(r.message),
        )
    return table


def _money(usd: float | None) -> str:
    return "price unknown" if usd is None else f"${usd:,.4f}"


def _neurons(n: float | None) -> str:
    return "price unknown" if n is None else f"{n:,.1f}"


def _rows(est: CostEstimate) -> Iterator[tuple[str, ...]]:
    for w in est.workers:
        models = sorted({i.model for i in w.items}) or ["-"]
        yield (
            w.worker,
            w.kind,
            ", ".join(models),
            _neurons(w.neurons_per_day),
            _money(w.usd_per_day),
        )


def cost_table(est: CostEstimate) -> Table:
    """One row per Worker plus the totals before and after the free allocation."""
    from cfai.catalog import FREE_NEURONS_PER_DAY, NEURON_PRICE_USD

    table = Table(
        "worker",
        "kind",
        "model(s)",
        "neurons/day",
        "USD/day",
        title=f"cfai cost: {escape(est.source)}" if est.source else "cfai cost",
    )
    for row in _rows(est):
        table.add_row(*(escape(c) for c in row))
    table.add_section()
    gross = est.total_neurons_per_day
    table.add_row("total", "", "", _neurons(gross), _money(gross * NEURON_PRICE_USD))
    table.add_row("free allocation", "", "", f"-{min(gross, FREE_NEURONS_PER_DAY):,.1f}", "")
    suffix = f" + unknown ({', '.join(est.unknown)})" if est.unknown else ""
    table.add_row(
        "billable",
        "",
        "",
        _neurons(est.billable_neurons_per_day),
        _money(est.total_usd_per_day) + suffix,
    )
    return table
