"""`cfai validate` and `cfai render`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cfai.cli._common import (
    ConfigOpt,
    ProjectOpt,
    StackOpt,
    app,
    err,
    out,
    platforms,
    user_errors,
    warn_notices,
)


@app.command()
@user_errors
def validate(
    stack: StackOpt = None, config: ConfigOpt = None, project: ProjectOpt = Path(".")
) -> None:
    """Check the platform declaration(s) and report every problem."""
    for label, platform in platforms(stack, config, project):
        warn_notices(label, platform, config.parent if config else project)
        finetunes = f", {len(platform.finetunes)} finetune(s)" if platform.finetunes else ""
        out.print(
            f"[green]ok[/green] {label}: {len(platform.workers)} worker(s), "
            f"{len(platform.gateways)} gateway(s), {len(platform.indexes)} index(es){finetunes}"
        )


@app.command()
@user_errors
def render(
    stack: StackOpt = None,
    config: ConfigOpt = None,
    project: ProjectOpt = Path("."),
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Output directory (default: <project>/workers).")
    ] = None,
    check: Annotated[
        bool,
        typer.Option("--check", help="Only check the tree is fresh; exit 1 listing stale paths."),
    ] = False,
) -> None:
    """Render every Worker to workers/<script>/index.js and wrangler.jsonc."""
    from cfai.render import render_platform, stale_paths, write_rendered

    target = out_dir or project / "workers"
    stale: list[str] = []
    for label, platform in platforms(stack, config, project):
        warn_notices(label, platform, config.parent if config else project)
        workers = render_platform(platform, base_dir=config.parent if config else project)
        if check:
            stale += stale_paths(workers, target)
            continue
        changed = write_rendered(workers, target)
        for w in workers:
            out.print(
                f"{label}: {w.key} ({w.kind}) -> {target / w.script_name}  sha256 {w.sha256[:12]}"
            )
        out.print(f"{label}: {len(changed)} file(s) changed")
    if check:
        if stale:
            err.print("rendered Workers are out of date; run `cfai render`:")
            for path in stale:
                err.print(f"  {path}")
            raise typer.Exit(1)
        out.print(f"[green]ok[/green] {target} is up to date")
