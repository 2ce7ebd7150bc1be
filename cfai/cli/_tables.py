"""How the verbs show what the library returns: rich tables of the local platform, drift,
deploy, contract and cost reports, and the command name printed commands use.

`show` draws a table on a terminal and writes it as plain aligned lines elsewhere (CI logs,
pipes, files): there rich would fit it to 80 columns (it cannot know the reader's width) and
cut check names and fold details a word per line."""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Collection, Iterator
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:  # the verbs import what they show on demand (the CLI starts fast)
    from collections.abc import Mapping
    from pathlib import Path

    from cfai.contract import ContractRun
    from cfai.deploy import DeployReport
    from cfai.gitops.cost import CostEstimate
    from cfai.gitops.drift import DriftReport
    from cfai.local.status import LocalStatus
    from cfai.outputs import Outputs


def command_name() -> str:
    """How the user invoked cfai (``.venv/bin/cfai`` from `make local`, ``cfai`` on PATH),
    so printed commands paste as they are."""
    argv0 = sys.argv[0] if sys.argv else ""
    return shlex.quote(argv0) if os.path.basename(argv0) == "cfai" else "cfai"


def _plain(cell: Any) -> str:
    if isinstance(cell, Text):
        return cell.plain
    return Text.from_markup(cell).plain if isinstance(cell, str) else str(cell)


def plain_lines(table: Table) -> list[str]:
    """`table` as unwrapped lines: its title, the header, one line per row with the
    columns aligned by two spaces, its caption; no borders, no markup."""
    columns = [[_plain(c.header), *map(_plain, c.cells)] for c in table.columns]
    widths = [max(map(len, column)) for column in columns]
    rows = zip(*columns, strict=True) if columns else iter(())
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    title = [_plain(table.title)] if table.title else []
    caption = [_plain(table.caption)] if table.caption else []
    return [*title, *lines, *caption]


def show(console: Console, *tables: Table) -> None:
    """Draw `tables` on a terminal; elsewhere write them as `plain_lines`."""
    for table in tables:
        if console.is_terminal:
            console.print(table)
            continue
        for line in plain_lines(table):
            console.print(line, markup=False, highlight=False, soft_wrap=True, crop=False)


def _check_name(check: str, worker: str) -> str:
    """`check` without the module part its Worker's id already says (``chat::test_x`` on
    ``chat[assistant]`` reads ``test_x``)."""
    kind = worker.partition("[")[0]
    return check.removeprefix(f"{kind}::") if worker.endswith("]") else check


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
    style = {"in sync": "green", "unchecked": "yellow", "repo ahead": "yellow"}
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


def deploy_table(report: DeployReport, created: Collection[str] = ()) -> Table:
    """One row per Worker (and per failed check): outcome, where it passed and failed.
    A Worker `created` by the deploy's apply part (by key) reads ``created``."""
    table = Table("worker", "outcome", "passed at", "failed at", "check", "detail")
    for r in report.rollouts:
        rows: list[Any] = list(r.failures) or [None]
        outcome = "created" if r.worker in created and r.outcome == "unchanged" else r.outcome
        for f in rows:
            table.add_row(
                r.worker,
                outcome + (f" ({r.note})" if r.note else ""),
                ",".join(f"{p}%" for p in r.passed),
                f"{r.failed_at}%" if r.failed_at is not None else "",
                f.check if f else "",  # the row's Worker is the first column
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
            escape(_check_name(r.check, r.worker)),
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
