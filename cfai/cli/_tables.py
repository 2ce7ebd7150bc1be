"""How the verbs show what the library returns: rich tables of the local platform, drift and
deploy reports, and the command name printed commands use."""

from __future__ import annotations

import os
import shlex
import sys
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:  # the verbs import what they show on demand (the CLI starts fast)
    from collections.abc import Mapping
    from pathlib import Path

    from cfai.deploy import DeployReport
    from cfai.gitops.drift import DriftReport
    from cfai.local.status import LocalStatus
    from cfai.outputs import Outputs


def command_name() -> str:
    """How the user invoked cfai (``.venv/bin/cfai`` from `make local`, ``cfai`` on PATH),
    so printed commands paste as they are."""
    argv0 = sys.argv[0] if sys.argv else ""
    return shlex.quote(argv0) if os.path.basename(argv0) == "cfai" else "cfai"


def status_tables(
    status: LocalStatus, logs: Mapping[str, Path], health: Mapping[str, str], api: str | None
) -> list[Table]:
    """`cfai local status`: each process (pid, alive, log file), then each Worker (URL,
    what its /health answered), captioned with the REST API's base URL."""
    processes = Table("process", "pid", "state", title=f"cfai local platform ({status.stack})")
    processes.add_column("log", overflow="fold")  # a path in full, even at 80 columns
    for name, p in status.processes.items():
        state = "[green]alive[/]" if p.alive else "[red]DEAD[/]"
        processes.add_row(escape(name), str(p.pid), state, escape(str(logs.get(name, ""))))
    workers = Table("worker", "endpoint", "health", caption=f"API base URL: {api}" if api else None)
    for key, url in sorted(status.endpoints.items()):
        answer = health.get(key, "")
        colour = "green" if answer == "ok" else "red"
        workers.add_row(escape(key), escape(url), f"[{colour}]{escape(answer)}[/]")
    return [processes, workers]


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


def _yes_no(value: Any) -> str:
    return "" if value is None else ("yes" if value else "no")


def gateway_logs_table(entries: list[dict[str, Any]], title: str) -> Table:
    """One row per gateway log entry, as AI Gateway's logs API returns them
    (https://developers.cloudflare.com/api/resources/ai_gateway/subresources/logs/methods/list/)."""
    table = Table(
        "time", "model", "status", "cached", "tokens in/out", "ms", "feedback", title=title
    )
    # The id in full: it is what `POST /feedback` takes as log_id.
    table.add_column("log id", overflow="fold")
    for e in entries:
        tokens = f"{e.get('tokens_in') if e.get('tokens_in') is not None else '-'}/" + (
            f"{e.get('tokens_out') if e.get('tokens_out') is not None else '-'}"
        )
        feedback = {1: "+1", -1: "-1"}.get(e.get("feedback") or 0, "")
        if e.get("score") is not None:
            feedback = f"{feedback} score {e['score']}".strip()
        table.add_row(
            escape(str(e.get("created_at", ""))[11:19]),
            escape(str(e.get("model", ""))),
            str(e.get("status_code", "")),
            _yes_no(e.get("cached")),
            tokens,
            str(e.get("duration", "")),
            feedback,
            escape(str(e.get("id", ""))),
        )
    return table
