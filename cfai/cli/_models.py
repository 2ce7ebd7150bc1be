"""`cfai models` and `cfai models sync`: the Workers AI model catalog the project sees."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from cfai.catalog import CATALOG_FILE, ModelSpec, Task, catalog_for
from cfai.cli._common import ProjectOpt, app, err, out, user_errors
from cfai.errors import ConfigError, Problem

models_app = typer.Typer(
    invoke_without_command=True,
    help="The Workers AI models cfai knows (the project's catalog.json preferred).",
)
app.add_typer(models_app, name="models")

_UNITS = {
    "input_tokens": ("in", 1_000_000, "/M"),
    "output_tokens": ("out", 1_000_000, "/M"),
    "tiles": ("tile", 1, ""),
    "steps": ("step", 1, ""),
    "audio_minutes": ("audio min", 1, ""),
    "characters": ("1k chars", 1000, ""),
}


def _price(spec: ModelSpec) -> str:
    if not spec.prices:
        return "unknown"
    parts = []
    for p in spec.prices:
        label, per, suffix = _UNITS.get(p.unit, (p.unit, p.per, ""))
        parts.append(f"${p.usd * per / p.per:g}{suffix} {label}")
    return ", ".join(parts)


def _row(spec: ModelSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "task": spec.task.value,
        "context_window": spec.context_window,
        "dimensions": spec.dimensions,
        "rate_limit_per_minute": spec.rate_limit,
        "capabilities": list(spec.capabilities),
        "io": spec.io,
        "prices": [{"unit": p.unit, "usd": p.usd, "per": p.per} for p in spec.prices],
        "source": spec.source,
    }


@models_app.callback()
@user_errors
def models(
    ctx: typer.Context,
    task: Annotated[
        Task | None, typer.Option("--task", "-t", help="Only models of this task.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the models as JSON.")] = False,
    project: ProjectOpt = Path("."),
) -> None:
    """List the catalog: task, context window, rate limit, capabilities, prices, form."""
    if ctx.invoked_subcommand is not None:
        return
    catalog = catalog_for(project)
    specs = [catalog[n] for n in sorted(catalog) if task is None or catalog[n].task is task]
    if as_json:
        print(json.dumps([_row(s) for s in specs], indent=2))
        return
    table = Table(
        "model", "task", "context", "req/min", "capabilities", "price (USD)", "in -> out",
        title=f"Workers AI models ({escape(catalog.source)})",
    )  # fmt: skip
    for s in specs:
        context = (
            f"{s.context_window:,}"
            if s.context_window
            else (f"{s.dimensions} dims" if s.dimensions else "-")
        )
        table.add_row(
            escape(s.name), s.task.value, context, str(s.rate_limit or "-"),
            ", ".join(s.capabilities) or "-", _price(s), escape(s.io),
        )  # fmt: skip
    out.print(table)
    out.print(f"{len(specs)} model(s)")


@models_app.command("sync")
@user_errors
def sync(
    stack: Annotated[
        str | None,
        typer.Option(
            "--stack", "-s", help="Cloudflare: the stack's account (CLOUDFLARE_API_TOKEN)."
        ),
    ] = None,
    local: Annotated[
        bool, typer.Option("--local", help="The local platform's API (`cfai local up`).")
    ] = False,
    project: ProjectOpt = Path("."),
) -> None:
    """Write catalog.json from Cloudflare's model search (all pages); loading prefers it."""
    from cfai.catalog.sync import sync_catalog
    from cfai.provision.rest import DEFAULT_BASE_URL, CloudflareClient

    if local == (stack is not None) and not (local and stack):
        raise typer.BadParameter("give --stack NAME or --local [--stack NAME]")
    if local:
        from cfai.local import LocalPlatform

        outputs = LocalPlatform(project, stack or "local").outputs()
        if outputs is None or outputs.api is None:
            raise ConfigError([Problem("", "the local platform is not running; start it with `cfai local up`")])  # fmt: skip
        base_url, token, account = outputs.api.base_url, outputs.api.token, outputs.api.account_id
    else:
        from cfai.config import load_stack

        assert stack is not None
        account = load_stack(stack, project).account_id
        token = os.environ.get("CLOUDFLARE_API_TOKEN", "")
        if not token:
            raise ConfigError([Problem("CLOUDFLARE_API_TOKEN", "set it to an API token with Workers AI Read")])  # fmt: skip
        base_url = os.environ.get("CLOUDFLARE_BASE_URL") or DEFAULT_BASE_URL
    with CloudflareClient(base_url, token=token, account_id=account) as client:
        report = sync_catalog(client, project, source=base_url)
    out.print(
        f"[green]wrote[/green] {escape(str(report.written))}: {len(report.models)} model(s) "
        f"from {report.pages} page(s) of {escape(base_url)}"
    )
    if report.skipped:
        err.print(f"skipped (a task cfai does not know): {escape(', '.join(report.skipped))}")
    out.print(
        f"cfai now prefers {CATALOG_FILE} over its built-in catalog in {escape(str(project))}"
    )
