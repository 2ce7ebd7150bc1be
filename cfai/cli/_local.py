"""`cfai local ...` and `cfai dev`: the platform offline on this machine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from cfai.cli._common import (
    ConfigOpt,
    ProjectOpt,
    app,
    err,
    local_app,
    need_project,
    out,
    user_errors,
)
from cfai.cli._tables import command_name, local_table, status_tables
from cfai.config import load_file, load_stack

PortOpt = Annotated[
    int | None,
    typer.Option("--port", help="Workers on PORT, PORT+1, ... (by key), emulator next."),
]
RemoteAiOpt = Annotated[
    bool,
    typer.Option(
        "--remote-ai",
        help="Run AI on a real account (CLOUDFLARE_API_TOKEN, CLOUDFLARE_ACCOUNT_ID); the rest stays local.",
    ),
]
TimeoutOpt = Annotated[float, typer.Option("--timeout", help="Seconds to wait for each process.")]


def _remote_ai(enabled: bool) -> tuple[dict[str, Any], dict[str, str]]:
    if not enabled:
        return {}, {}
    import os

    from cfai.local.remote import remote_ai_options

    return remote_ai_options(os.environ)


@local_app.command("up")
@user_errors
def local_up(
    stack: Annotated[str, typer.Option("--stack", "-s")] = "local",
    config: ConfigOpt = None,
    project: ProjectOpt = Path("."),
    demo: Annotated[
        bool, typer.Option("--demo", help="Load demo documents into every rag Worker.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the outputs map (secrets masked) as JSON.")
    ] = False,
    port: PortOpt = None,
    remote_ai: RemoteAiOpt = False,
    timeout: TimeoutOpt = 60.0,
) -> None:
    """Start the emulator and workerd with every Worker of the stack, detached.

    With --config FILE the platform comes from that YAML file; its state still lives under
    .cfai/<STACK>. A second `up` of an unchanged platform leaves it running."""
    from cfai.local import LocalPlatform
    from cfai.local.status import SECRET, curl_examples

    settings, emulator_env = _remote_ai(remote_ai)
    if config is None:
        need_project(project)
    platform = LocalPlatform(
        project,
        stack,
        settings=settings,
        progress=lambda m: err.print(f"[dim]…[/dim] {m}"),
        source_dir=config.resolve().parent if config else None,
        emulator_env=emulator_env,
    )
    outputs = platform.up(
        load_file(config) if config else None, timeout=timeout, port=port, reuse=True
    )
    if demo and not platform.reused:
        from cfai.local.demo import load_demo

        for line in load_demo(outputs):
            err.print(f"[dim]…[/dim] {line}")
    if as_json:
        print(json.dumps(outputs.redacted(SECRET).to_json(), indent=2, sort_keys=True))
        return
    if platform.reused:
        out.print(f"already running ({stack}); unchanged, left as is")
    out.print(local_table(outputs, stack))
    cfai = command_name()
    out.print(f"outputs: {platform.outputs_path}  (auth token: `{cfai} local token`)")
    out.print("\ntry:")
    for example in curl_examples(outputs, stack, cfai):
        out.print(example, markup=False)
    pages = [f"  {key}: {w.url}/" for key, w in sorted(outputs.workers.items()) if w.playground]
    if pages:
        out.print(f"\nplayground pages (paste the token from `{cfai} local token`):")
        for line in pages:
            out.print(line, markup=False)
    out.print(f"\nstop with: {cfai} local down" + (f" --stack {stack}" if stack != "local" else ""))


@local_app.command("down")
@user_errors
def local_down(
    stack: Annotated[str, typer.Option("--stack", "-s")] = "local", project: ProjectOpt = Path(".")
) -> None:
    """Stop the local platform."""
    from cfai.local import LocalPlatform

    was = LocalPlatform(need_project(project, state=True), stack).down()
    out.print("stopped" if was else "not running")


@local_app.command("status")
@user_errors
def local_status(
    stack: Annotated[str, typer.Option("--stack", "-s")] = "local",
    project: ProjectOpt = Path("."),
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Each process of the local platform with its pid, alive or dead, and the endpoints.
    Exits 1 when it is not running or a process died."""
    from cfai.local import LocalPlatform

    platform = LocalPlatform(need_project(project, state=True), stack)
    status = platform.status()
    if as_json:
        print(json.dumps(status.to_json(), indent=2, sort_keys=True))
    elif not status.processes:
        out.print("not running; start with `cfai local up`")
    else:
        outputs = platform.outputs()
        logs = {name: platform.state_dir / f"{name}.log" for name in status.processes}
        health = {key: _health(url) for key, url in status.endpoints.items()}
        api = outputs.api.base_url if outputs and outputs.api else None
        for table in status_tables(status, logs, health, api):
            out.print(table)
        if status.dead:
            err.print(
                f"[red]{', '.join(status.dead)} died[/red]; restart with `cfai local up`"
                + (f" --stack {stack}" if stack != "local" else "")
            )
        else:
            # Scripts uploaded through the API by other clients (wrangler, an SDK).
            declared = set(status.endpoints.values())
            for name, url in platform.script_urls().items():
                if url not in declared:
                    out.print(f"script {name}: {url}")
    if not status.running:
        raise typer.Exit(1)


def _health(url: str) -> str:
    from cfai.provision.rest import NoAnswer, fetch

    answer = fetch("GET", f"{url}/health", timeout=5)
    if isinstance(answer, NoAnswer):
        return f"no answer ({answer.error})"
    return "ok" if answer.status_code == 200 else f"HTTP {answer.status_code}"


@local_app.command("reset")
@user_errors
def local_reset(
    stack: Annotated[str, typer.Option("--stack", "-s")] = "local",
    project: ProjectOpt = Path("."),
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Really stop and delete.")] = False,
) -> None:
    """Stop the local platform if it runs and delete its state (.cfai/<STACK>): indexes,
    gateway logs, tokens. Without --yes, only says what it would delete."""
    from cfai.local import LocalPlatform

    platform = LocalPlatform(need_project(project, state=True), stack)
    if not yes:
        err.print(
            f"would stop the local platform ({stack}) and delete {platform.state_dir}; "
            "run again with --yes"
        )
        raise typer.Exit(1)
    was = platform.reset()
    out.print(f"{'stopped and ' if was else ''}deleted {platform.state_dir}")


@app.command("dev")
@user_errors
def dev(
    stack: Annotated[str, typer.Option("--stack", "-s")] = "local",
    config: ConfigOpt = None,
    project: ProjectOpt = Path("."),
    port: PortOpt = None,
    remote_ai: RemoteAiOpt = False,
    timeout: TimeoutOpt = 60.0,
    templates: Annotated[
        Path | None,
        typer.Option(
            "--templates",
            exists=True,
            file_okay=False,
            help="Render from the Worker templates in DIR (default: cfai's own), to try an edit.",
        ),
    ] = None,
) -> None:
    """Run the local platform in the foreground; re-render and reload the Workers when the
    templates, the declaration or a custom module change (the emulator keeps its state)."""
    from cfai.config import stack_file
    from cfai.local import LocalPlatform
    from cfai.local.dev import run_dev
    from cfai.render import Templates

    def say(message: str) -> None:
        err.print(message, markup=False)

    declaration = config.resolve() if config else stack_file(stack, need_project(project)).resolve()
    settings, emulator_env = _remote_ai(remote_ai)
    platform = LocalPlatform(
        project,
        stack,
        settings=settings,
        progress=say,
        source_dir=config.resolve().parent if config else None,
        emulator_env=emulator_env,
        templates=Templates(templates.resolve()) if templates else None,
    )
    run_dev(
        platform,
        (lambda: load_file(declaration)) if config else (lambda: load_stack(stack, project)),
        [declaration],
        say,
        port=port,
        timeout=timeout,
    )


@local_app.command("token")
@user_errors
def local_token(
    stack: Annotated[str, typer.Option("--stack", "-s")] = "local", project: ProjectOpt = Path(".")
) -> None:
    """Print the local Workers' auth token (for curl: -H "authorization: Bearer $(cfai local token)")."""
    from cfai.local import LocalPlatform

    outputs = LocalPlatform(need_project(project, state=True), stack).outputs()
    if outputs is None:
        out.print("not running; start with `cfai local up`")
        raise typer.Exit(1)
    print(outputs.auth_token)
