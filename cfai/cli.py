"""The `cfai` command: thin verbs over the toolkit, no logic of their own.

User errors (`CfaiError` with ``user_fault``) print their problems and exit 2 without a
traceback; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from cfai.config import Platform, discover_stacks, load_file, load_stack
from cfai.errors import CfaiError, ConfigError, Problem

__all__ = ["app", "main"]

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Declare, render, run and prove an AI platform on Cloudflare.",
)
local_app = typer.Typer(
    no_args_is_help=True, help="The platform offline on this machine (workerd + emulator)."
)
app.add_typer(local_app, name="local")

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)
F = TypeVar("F", bound=Callable[..., Any])

StackOpt = Annotated[str | None, typer.Option("--stack", "-s", help="Use Pulumi.<STACK>.yaml.")]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="A YAML file holding the platform.")
]
ProjectOpt = Annotated[
    Path, typer.Option("--project", help="Project directory.", show_default=True)
]


def _user_errors(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except CfaiError as e:
            if not e.user_fault:
                raise
            err.print(f"[red]error:[/red] {e}", markup=True, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def _platforms(
    stack: str | None, config: Path | None, project: Path
) -> Iterator[tuple[str, Platform]]:
    """(label, platform) for the chosen source; every stack of the project by default.
    Loads all before yielding so every broken stack is reported."""
    if stack and config:
        raise typer.BadParameter("give --stack or --config, not both")
    if config:
        yield str(config), load_file(config)
        return
    stacks = [stack] if stack else discover_stacks(project)
    if not stacks:
        raise ConfigError([], source=f"no Pulumi.<stack>.yaml in {project.resolve()}")
    loaded: list[tuple[str, Platform]] = []
    problems: list[Problem] = []
    for name in stacks:
        try:
            loaded.append((name, load_stack(name, project)))
        except ConfigError as e:
            problems.extend(
                type(p)(f"{name}: {p.path}" if p.path else name, p.message) for p in e.problems
            )
    if problems:
        raise ConfigError(problems)
    yield from loaded


@app.command()
@_user_errors
def validate(
    stack: StackOpt = None, config: ConfigOpt = None, project: ProjectOpt = Path(".")
) -> None:
    """Check the platform declaration(s) and report every problem."""
    for label, platform in _platforms(stack, config, project):
        out.print(
            f"[green]ok[/green] {label}: {len(platform.workers)} worker(s), "
            f"{len(platform.gateways)} gateway(s), {len(platform.indexes)} index(es)"
        )


@app.command()
@_user_errors
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
    for label, platform in _platforms(stack, config, project):
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


def _remote_ai(enabled: bool) -> tuple[dict[str, Any], dict[str, str]]:
    if not enabled:
        return {}, {}
    import os

    from cfai.local.remote import remote_ai_options

    return remote_ai_options(os.environ)


@local_app.command("up")
@_user_errors
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
    port: Annotated[
        int | None,
        typer.Option("--port", help="Workers on PORT, PORT+1, ... (by key), emulator next."),
    ] = None,
    remote_ai: Annotated[
        bool,
        typer.Option(
            "--remote-ai",
            help="Run AI on a real account (CLOUDFLARE_API_TOKEN, CLOUDFLARE_ACCOUNT_ID); the rest stays local.",
        ),
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each process.")] = 60.0,
) -> None:
    """Start the emulator and workerd with every Worker of the stack, detached.

    With --config FILE the platform comes from that YAML file; its state still lives under
    .cfai/<STACK>. A second `up` of an unchanged platform leaves it running."""
    from cfai.local.status import curl_examples, public_outputs
    from cfai.local.supervisor import LocalPlatform

    settings, emulator_env = _remote_ai(remote_ai)
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
    if platform.reused:
        err.print(f"already running ({stack}); unchanged, left as is")
    elif demo:
        from cfai.local.demo import load_demo

        for line in load_demo(outputs):
            err.print(f"[dim]…[/dim] {line}")
    if as_json:
        print(json.dumps(public_outputs(outputs), indent=2, sort_keys=True))
        return
    if platform.reused:
        out.print("already running")
    table = Table(
        "worker", "kind", "endpoint", "template sha256", title=f"cfai local platform ({stack})"
    )
    for key, w in sorted(outputs["workers"].items()):
        table.add_row(key, w["kind"], w["url"], w["template_sha256"][:12])
    out.print(table)
    out.print(f"outputs: {platform.outputs_path}  (auth token: `cfai local token`)")
    out.print("\ntry:")
    for example in curl_examples(outputs, stack):
        out.print(example, markup=False)
    out.print("\nstop with: cfai local down" + (f" --stack {stack}" if stack != "local" else ""))


@local_app.command("down")
@_user_errors
def local_down(
    stack: Annotated[str, typer.Option("--stack", "-s")] = "local", project: ProjectOpt = Path(".")
) -> None:
    """Stop the local platform."""
    from cfai.local.supervisor import LocalPlatform

    was = LocalPlatform(project, stack).down()
    out.print("stopped" if was else "not running")


@local_app.command("status")
@_user_errors
def local_status(
    stack: Annotated[str, typer.Option("--stack", "-s")] = "local",
    project: ProjectOpt = Path("."),
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Each process of the local platform with its pid, alive or dead, and the endpoints.
    Exits 1 when it is not running or a process died."""
    from cfai.local.status import process_report
    from cfai.local.supervisor import LocalPlatform

    report = process_report(LocalPlatform(project, stack))
    if as_json:
        print(json.dumps(report, indent=2, sort_keys=True))
    elif not report["processes"]:
        out.print("not running; start with `cfai local up`")
    else:
        for name, p in report["processes"].items():
            out.print(f"{name}: pid {p['pid']} {'alive' if p['alive'] else 'DEAD'}")
        if report["dead"]:
            err.print(
                f"[red]{', '.join(report['dead'])} died[/red]; restart with `cfai local up`"
                + (f" --stack {stack}" if stack != "local" else "")
            )
        else:
            for key, url in sorted(report["endpoints"].items()):
                out.print(f"{key}: {url}")
    if not report["running"]:
        raise typer.Exit(1)


@local_app.command("reset")
@_user_errors
def local_reset(
    stack: Annotated[str, typer.Option("--stack", "-s")] = "local",
    project: ProjectOpt = Path("."),
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Really stop and delete.")] = False,
) -> None:
    """Stop the local platform if it runs and delete its state (.cfai/<STACK>): indexes,
    gateway logs, tokens. Without --yes, only says what it would delete."""
    from cfai.local.status import reset
    from cfai.local.supervisor import LocalPlatform

    platform = LocalPlatform(project, stack)
    if not yes:
        err.print(
            f"would stop the local platform ({stack}) and delete {platform.state_dir}; "
            "run again with --yes"
        )
        raise typer.Exit(1)
    was = reset(platform)
    out.print(f"{'stopped and ' if was else ''}deleted {platform.state_dir}")


@app.command("dev")
@_user_errors
def dev(
    stack: Annotated[str, typer.Option("--stack", "-s")] = "local",
    config: ConfigOpt = None,
    project: ProjectOpt = Path("."),
    port: Annotated[
        int | None,
        typer.Option("--port", help="Workers on PORT, PORT+1, ... (by key), emulator next."),
    ] = None,
    remote_ai: Annotated[
        bool,
        typer.Option(
            "--remote-ai",
            help="Run AI on a real account (CLOUDFLARE_API_TOKEN, CLOUDFLARE_ACCOUNT_ID); the rest stays local.",
        ),
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each process.")] = 60.0,
) -> None:
    """Run the local platform in the foreground; re-render and reload the Workers when the
    templates, the declaration or a custom module change (the emulator keeps its state)."""
    from cfai.config import stack_file
    from cfai.local.dev import run_dev
    from cfai.local.supervisor import LocalPlatform

    def say(message: str) -> None:
        err.print(message, markup=False)

    declaration = config.resolve() if config else stack_file(stack, project).resolve()
    settings, emulator_env = _remote_ai(remote_ai)
    platform = LocalPlatform(
        project,
        stack,
        settings=settings,
        progress=say,
        source_dir=config.resolve().parent if config else None,
        emulator_env=emulator_env,
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
@_user_errors
def local_token(
    stack: Annotated[str, typer.Option("--stack", "-s")] = "local", project: ProjectOpt = Path(".")
) -> None:
    """Print the local Workers' auth token (for curl: -H "authorization: Bearer $(cfai local token)")."""
    from cfai.local.supervisor import LocalPlatform

    platform = LocalPlatform(project, stack)
    if not platform.outputs_path.is_file():
        out.print("not running; start with `cfai local up`")
        raise typer.Exit(1)
    print(json.loads(platform.outputs_path.read_text())["auth_token"])


@app.command("test")
@_user_errors
def test_cmd(
    local: Annotated[
        bool, typer.Option("--local", help="Check the local platform (.cfai/local/outputs.json).")
    ] = False,
    stack: Annotated[
        str | None,
        typer.Option("--stack", "-s", help="Check a Pulumi stack (reads its outputs)."),
    ] = None,
    outputs: Annotated[
        Path | None, typer.Option("--outputs", help="Check the platform in this outputs map.")
    ] = None,
    junit: Annotated[
        Path | None,
        typer.Option("--junit", help="JUnit XML report (default: .cfai/contract/junit.xml)."),
    ] = None,
    keyword: Annotated[
        str | None, typer.Option("-k", help="Only checks matching this pytest -k expression.")
    ] = None,
    wait: Annotated[
        float | None,
        typer.Option("--wait", help="Bound on eventual-consistency waits (0 local, 60 live)."),
    ] = None,
    rate_limit: Annotated[
        bool, typer.Option("--rate-limit", help="Also exhaust gateway rate limits on live stacks.")
    ] = False,
    project: ProjectOpt = Path("."),
) -> None:
    """Prove a deployed platform behaves as declared; exit 0 only when every check passed."""
    import tempfile

    from cfai.contract import run_contract, stack_outputs, summary_table

    if [local, stack is not None, outputs is not None].count(True) != 1:
        raise typer.BadParameter("give exactly one of --local, --stack NAME, --outputs FILE")
    junit = junit or project / ".cfai" / "contract" / "junit.xml"
    with tempfile.TemporaryDirectory(prefix="cfai-test-") as tmp:
        if local:
            from cfai.local.supervisor import LocalPlatform

            platform = LocalPlatform(project)
            if not platform.running() or not platform.outputs_path.is_file():
                err.print(
                    "[red]error:[/red] the local platform is not running; start it with `cfai local up`"
                )
                raise typer.Exit(2)
            outputs = platform.outputs_path
        elif stack is not None:
            outputs = Path(tmp) / "outputs.json"  # holds secrets: a private temp dir
            outputs.write_text(json.dumps(stack_outputs(stack, project)))
        assert outputs is not None
        run = run_contract(
            outputs,
            project=project,
            junit=junit,
            keyword=keyword,
            wait=wait,
            live=stack is not None,
            rate_limit=rate_limit,
        )
    out.print(
        summary_table(run, title=f"cfai contract: {stack or ('local' if local else outputs)}")
    )
    passed = len(run.results) - len(run.failed)
    out.print(f"{passed} passed, {len(run.failed)} not passed; JUnit XML: {junit}")
    if not run.results:
        err.print("[red]no checks ran[/red]")
    if not run.ok:
        raise typer.Exit(1)


stack_app = typer.Typer(no_args_is_help=True, help="Stacks of the project (review stacks).")
app.add_typer(stack_app, name="stack")


@app.command()
@_user_errors
def drift(
    stack: Annotated[
        str | None,
        typer.Option("--stack", "-s", help="A Pulumi stack (with --local: the local stack)."),
    ] = None,
    local: Annotated[
        bool, typer.Option("--local", help="The local platform (`cfai local up`).")
    ] = False,
    outputs: Annotated[
        Path | None, typer.Option("--outputs", help="Cloud: the stack outputs from this file.")
    ] = None,
    require_pulumi: Annotated[
        bool, typer.Option("--require-pulumi", help="Fail when the Pulumi CLI is missing.")
    ] = False,
    pulumi_timeout: Annotated[
        float, typer.Option(help="Seconds for `pulumi preview --refresh`.")
    ] = 600.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    project: ProjectOpt = Path("."),
) -> None:
    """Compare what runs with the repository; exit 1 listing every difference."""
    from cfai.contract import read_outputs
    from cfai.gitops.drift import (
        drift_details,
        drift_local,
        drift_stack,
        drift_table,
        report_json,
    )

    if (not local and stack is None) or (local and outputs is not None):
        raise typer.BadParameter("give --stack NAME [--outputs FILE], or --local [--stack NAME]")
    if local:
        report = drift_local(project, stack or "local")
    else:
        assert stack is not None
        report = drift_stack(
            stack,
            project,
            outputs=read_outputs(outputs) if outputs else None,
            require_pulumi=require_pulumi,
            pulumi_timeout=pulumi_timeout,
        )
    if as_json:
        print(report_json(report))
    else:
        out.print(drift_table(report))
        for line in drift_details(report):
            out.print(f"  {line}", markup=False)
        for note in report.notes:
            out.print(f"[yellow]note:[/yellow] {note}")
        if report.pulumi is not None:
            colour = "green" if report.pulumi.status == "clean" else "yellow"
            colour = colour if report.pulumi.ok else "red"
            out.print(f"[{colour}]{report.pulumi.note}[/]")
            if report.pulumi.output:
                out.print(report.pulumi.output, markup=False)
        if report.ok:
            out.print(f"[green]no drift[/green]: {report.target} runs what the repository says")
        else:
            names = ", ".join(w.worker for w in report.drifted) or "the Pulumi stack"
            err.print(f"[red]drift[/red] in {report.target}: {names}")
    if not report.ok:
        raise typer.Exit(1)


@stack_app.command("new")
@_user_errors
def stack_new(
    name: Annotated[str, typer.Argument(help="The new stack's name, e.g. pr-42.")],
    source: Annotated[str, typer.Option("--from", help="The stack to copy.")],
    prefix: Annotated[
        str | None,
        typer.Option("--prefix", help="Physical-name prefix (default: <project>-<NAME>)."),
    ] = None,
    project: ProjectOpt = Path("."),
) -> None:
    """Create Pulumi.NAME.yaml from another stack, with its own name prefix."""
    from cfai.gitops.stacks import new_stack

    made = new_stack(name, source, project=project, prefix=prefix)
    out.print(f"[green]created[/green] {made.path} (name_prefix {made.name_prefix})")
    if made.secrets_to_set:
        out.print(f"{source}'s encrypted values are not copied; set them for {name}:")
        for line in made.secret_commands():
            out.print(f"  {line}", markup=False)
    if made.dropped:
        out.print(f"not copied (bound to {source}'s secrets provider): {', '.join(made.dropped)}")
    out.print(f"run it offline: cfai local up --stack {name}")


@app.command()
@_user_errors
def cost(
    requests_per_day: Annotated[
        int, typer.Option("--requests-per-day", min=0, help="Requests a day to each Worker.")
    ],
    stack: StackOpt = None,
    config: ConfigOpt = None,
    tokens_in: Annotated[
        int | None, typer.Option("--tokens-in", min=0, help="Input tokens per request.")
    ] = None,
    tokens_out: Annotated[
        int | None, typer.Option("--tokens-out", min=0, help="Output tokens per request.")
    ] = None,
    images_per_request: Annotated[
        int, typer.Option("--images-per-request", min=0, help="Images per image request.")
    ] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print the estimate as JSON.")] = False,
    project: ProjectOpt = Path("."),
) -> None:
    """Estimate daily Workers AI neurons and dollars per Worker, with the assumptions."""
    from cfai.gitops.cost import Traffic, cost_table, estimate

    traffic = Traffic(requests_per_day, tokens_in, tokens_out, images_per_request)
    estimates = [
        estimate(platform, traffic, source=label)
        for label, platform in _platforms(stack, config, project)
    ]
    if as_json:
        data = [e.as_json() for e in estimates]
        print(json.dumps(data[0] if len(data) == 1 else data, indent=2))
        return
    for est in estimates:
        out.print(cost_table(est))
        out.print("assumptions:")
        for line in est.assumptions:
            out.print(f"  - {line}", markup=False)


@app.command("deploy")
@_user_errors
def deploy_cmd(
    local: Annotated[bool, typer.Option("--local", help="Roll out on the local platform.")] = False,
    stack: Annotated[
        str | None, typer.Option("--stack", "-s", help="Roll out on a Pulumi stack.")
    ] = None,
    steps: Annotated[
        str, typer.Option("--steps", help="Traffic percentages for the new version.")
    ] = "10,100",
    project: ProjectOpt = Path("."),
) -> None:
    """Canary each changed Worker, gated by the contract suite; roll back on any failure.
    Exit 0 promoted (or nothing to do), 1 rolled back, 2 user error."""
    from cfai.deploy import Driver, contract_gate, deploy, parse_steps
    from cfai.render import render_platform

    if local == (stack is not None):
        raise typer.BadParameter("give exactly one of --local, --stack NAME")
    percentages = parse_steps(steps)
    name = stack or "local"
    rendered = render_platform(load_stack(name, project), base_dir=project)
    driver: Driver
    if stack is not None:
        from cfai.deploy.cloud import open_cloud_driver

        driver = open_cloud_driver(project, stack)  # ToolMissingError first without the CLI
    else:
        from cfai.deploy.local import LocalDriver

        driver = LocalDriver(project, name)
    report = deploy(
        rendered,
        workers_dir=project / "workers",
        driver=driver,
        gate=contract_gate(project, live=stack is not None),
        steps=percentages,
        progress=lambda m: err.print(f"[dim]…[/dim] {m}"),
    )
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
    out.print(table)
    raise typer.Exit(report.exit_code)


def main() -> None:
    app()
