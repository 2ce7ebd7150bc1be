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
    """Render every Worker to workers/<key>/index.js and wrangler.jsonc (an env per stack)."""
    from cfai.render import render_platform, stale_paths, write_rendered

    target = out_dir or project / "workers"
    base_dir = config.parent if config else project
    stacks = {}
    for label, platform in platforms(stack, config, project):
        warn_notices(label, platform, base_dir)
        stacks[_env_name(label, config)] = render_platform(platform, base_dir=base_dir)
    # Without --stack/--config the tree is every stack's: each wrangler.jsonc gets exactly
    # their envs. With one, that stack's envs are updated and the others' kept.
    every = stack is None and config is None
    if check:
        stale = stale_paths(stacks, target, every_stack=every)
        if stale:
            err.print("rendered Workers are out of date; run `cfai render`:")
            for path in stale:
                err.print(f"  {path}")
            raise typer.Exit(1)
        out.print(f"[green]ok[/green] {target} is up to date")
        return
    changed = write_rendered(stacks, target, every_stack=every)
    for name, workers in stacks.items():
        for w in workers:
            out.print(f"{name}: {w.key} ({w.kind}) -> {target / w.key}  sha256 {w.sha256[:12]}")
    out.print(f"{len(changed)} file(s) changed")


def _env_name(label: str, config: Path | None) -> str:
    """The wrangler env of a declaration: its stack, or for ``--config F`` the stack of a
    ``Pulumi.<stack>.yaml`` or else the file's stem."""
    if config is None:
        return label
    name = config.name
    if name.startswith("Pulumi.") and name.endswith((".yaml", ".yml")):
        return name.removeprefix("Pulumi.").rsplit(".", 1)[0]
    return config.stem
