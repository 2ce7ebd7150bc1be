"""`cfai logs`: the local platform's process logs, and a gateway's request logs."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from cfai.cli._common import ProjectOpt, app, err, need_project, out, user_errors
from cfai.cli._tables import gateway_logs_table

if TYPE_CHECKING:
    from cfai.local import LocalPlatform


@app.command("logs")
@user_errors
def logs(
    worker: Annotated[
        str | None,
        typer.Argument(help="Only the logs of this Worker's processes (default: every process)."),
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines until Ctrl-C.")
    ] = False,
    lines: Annotated[
        int,
        typer.Option("--lines", "-n", min=0, help="Lines of each log (entries with --gateway)."),
    ] = 20,
    gateway: Annotated[
        str | None,
        typer.Option(
            "--gateway",
            "-g",
            help="Instead: this gateway's request logs, newest first, as a table.",
        ),
    ] = None,
    stack: Annotated[str, typer.Option("--stack", "-s")] = "local",
    project: ProjectOpt = Path("."),
) -> None:
    """Worker console output (workerd) and the emulator's and router's logs of the local
    platform, each line prefixed with its process; or with --gateway NAME the gateway's logs
    (model, status, cached, tokens, duration, feedback) read through its REST API."""
    from cfai.local import LocalPlatform
    from cfai.local.logs import LogSource, log_sources, tail
    from cfai.local.logs import follow as follow_logs

    platform = LocalPlatform(need_project(project, state=True), stack)
    if gateway is not None:
        _gateway_logs(platform, gateway, min(lines or 20, 50))
        return
    routes = platform.routes()
    if worker is not None and worker not in routes.workers:
        known = ", ".join(sorted(routes.workers)) or "none: the platform has not run here"
        raise typer.BadParameter(f"no Worker {worker!r} (Workers: {known})", param_hint="WORKER")
    sources = log_sources(platform.state_dir, routes, worker)
    if not sources:
        err.print(f"no logs: the local platform ({stack}) has not run in {platform.project_dir}")
        raise typer.Exit(1)
    width = max(len(s.name) for s in sources)

    def emit(source: LogSource, line: str) -> None:
        out.print(f"[dim]{source.name:<{width}} |[/dim] {escape(line)}")
        if follow:
            out.file.flush()  # each line as it comes, into a pipe (`| grep`) too

    for source in sources:
        for line in tail(source.path, lines):
            emit(source, line)
    if follow:
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends --follow: not an error
            names = ", ".join(s.path.name for s in sources)
            follow_logs(sources, emit, ready=lambda: err.print(f"following {names}; Ctrl-C stops"))


def _gateway_logs(platform: LocalPlatform, gateway: str, per_page: int) -> None:
    from cfai.provision.rest import CloudflareClient

    outputs = platform.outputs()
    if outputs is None or platform.running() is None or outputs.api is None:
        err.print("not running; start with `cfai local up`")
        raise typer.Exit(1)
    found = outputs.gateways.get(gateway)
    if found is None:
        known = ", ".join(sorted(outputs.gateways)) or "none"
        raise typer.BadParameter(
            f"no gateway {gateway!r} (gateways: {known})", param_hint="--gateway"
        )
    api = outputs.api
    with CloudflareClient(api.base_url, token=api.token, account_id=api.account_id) as client:
        entries = client.ai_gateway.logs(found.id, per_page=per_page)
    out.print(gateway_logs_table(entries, title=f"gateway {gateway} ({found.id}): newest first"))
    if not entries:
        out.print("no requests logged yet")
