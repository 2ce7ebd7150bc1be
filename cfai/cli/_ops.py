"""`cfai test`, `deploy`, `drift`, `stack new` and `cost`: working with deployed stacks."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from cfai.cli._common import (
    ConfigOpt,
    ProjectOpt,
    StackOpt,
    app,
    err,
    need_project,
    out,
    platforms,
    stack_app,
    user_errors,
)
from cfai.cli._tables import cost_table, deploy_table, drift_table, show, summary_table
from cfai.config import load_stack


@app.command("test")
@user_errors
def test_cmd(
    local: Annotated[
        bool,
        typer.Option(
            "--local",
            help="Check the local platform (.cfai/local/outputs.json; with --stack S, stack S's).",
        ),
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

    from cfai.contract import load_outputs, run_contract

    if [local, stack is not None and not local, outputs is not None].count(True) != 1:
        raise typer.BadParameter(
            "give exactly one of --local, --stack NAME, --outputs FILE "
            "(with --local, --stack NAME names a local stack other than `local`)"
        )
    junit = junit or project / ".cfai" / "contract" / "junit.xml"
    live = stack is not None and not local
    with tempfile.TemporaryDirectory(prefix="cfai-test-") as tmp:
        if local:
            from cfai.local import LocalPlatform

            platform = LocalPlatform(project, stack or "local")
            if not platform.running() or platform.outputs() is None:
                up = "cfai local up" + (f" --stack {stack}" if stack else "")
                err.print(
                    f"[red]error:[/red] the local platform is not running (stack {stack or 'local'}); "
                    f"start it with `{up}`"
                )
                raise typer.Exit(2)
            outputs = platform.outputs_path
        elif stack is not None:
            from cfai.provision.pulumi_cli import stack_outputs

            outputs = Path(tmp) / "outputs.json"  # holds secrets: a private temp dir, mode 600
            stack_outputs(stack, project).write(outputs)
        assert outputs is not None
        load_outputs(outputs)  # a missing or malformed map: OutputsError, exit 2, no empty run
        run = run_contract(
            outputs,
            project=project,
            junit=junit,
            keyword=keyword,
            wait=wait,
            live=live,
            rate_limit=rate_limit,
        )
    show(
        out, summary_table(run, title=f"cfai contract: {stack or ('local' if local else outputs)}")
    )
    passed = len(run.results) - len(run.failed)
    out.print(f"{passed} passed, {len(run.failed)} not passed; JUnit XML: {junit}")
    if run.not_run:
        out.print(f"{len(run.not_run)} check(s) not run, nothing in this platform to run them on:")
        for r in run.not_run:
            out.print(f"  {r.check} ({r.worker}): {r.message}", markup=False)
    if not run.results:
        err.print("[red]no checks ran[/red]")
    if not run.ok:
        raise typer.Exit(1)


@app.command()
@user_errors
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
    """Compare what runs with the repository. Exit 0 in sync, 1 changed behind Git's back
    (or unreachable, or Pulumi sees changes), 3 only the repository ahead (its change was
    rolled back or is not deployed yet), 2 a usage or setup problem."""
    from cfai.gitops.drift import drift_details, drift_local, drift_stack
    from cfai.outputs import Outputs

    if (not local and stack is None) or (local and outputs is not None):
        raise typer.BadParameter("give --stack NAME [--outputs FILE], or --local [--stack NAME]")
    project = need_project(project)
    if local:
        report = drift_local(project, stack or "local")
    else:
        assert stack is not None
        report = drift_stack(
            stack,
            project,
            outputs=Outputs.read(outputs) if outputs else None,
            require_pulumi=require_pulumi,
            pulumi_timeout=pulumi_timeout,
        )
    if as_json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        show(out, drift_table(report))
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
        elif report.exit_code == 3:
            names = ", ".join(w.worker for w in report.drifted)
            err.print(f"[yellow]repository ahead[/yellow] of {report.target}: {names}")
        else:
            names = ", ".join(w.worker for w in report.drifted) or "the Pulumi stack"
            err.print(f"[red]drift[/red] in {report.target}: {names}")
    raise typer.Exit(report.exit_code)


@stack_app.command("new")
@user_errors
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

    made = new_stack(name, source, project=need_project(project), prefix=prefix)
    out.print(f"[green]created[/green] {made.path} (name_prefix {made.name_prefix})")
    if made.secrets_to_set:
        out.print(f"{source}'s encrypted values are not copied; set them for {name}:")
        for line in made.secret_commands():
            out.print(f"  {line}", markup=False)
    if made.dropped:
        out.print(f"not copied (bound to {source}'s secrets provider): {', '.join(made.dropped)}")
    out.print(f"run it offline: cfai local up --stack {name}")


@app.command()
@user_errors
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
    from cfai.catalog import catalog_for
    from cfai.gitops.cost import Traffic, estimate

    traffic = Traffic(requests_per_day, tokens_in, tokens_out, images_per_request)
    catalog = catalog_for(config.parent if config else project)
    estimates = [
        estimate(platform, traffic, source=label, catalog=catalog)
        for label, platform in platforms(stack, config, project)
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
@user_errors
def deploy_cmd(
    local: Annotated[bool, typer.Option("--local", help="Deploy to the local platform.")] = False,
    stack: Annotated[
        str | None, typer.Option("--stack", "-s", help="Deploy to a Pulumi stack.")
    ] = None,
    steps: Annotated[
        str, typer.Option("--steps", help="Traffic percentages for the new version.")
    ] = "10,100",
    preview_only: Annotated[
        bool, typer.Option("--preview", help="Show both parts of the deploy; change nothing.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="With --preview: as JSON.")] = False,
    markdown: Annotated[
        bool, typer.Option("--markdown", help="With --preview: as a pull request comment.")
    ] = False,
    project: ProjectOpt = Path("."),
) -> None:
    """Apply the stack's declaration: gateways, indexes, new Workers at once, then canary
    each changed Worker, gated by the contract suite; roll back on any failure.
    Exit 0 applied and promoted (or nothing to do), 1 rolled back, 2 user error."""
    from cfai.deploy import contract_gate, parse_steps
    from cfai.deploy.stack import Target, apply_and_canary, preview
    from cfai.render import render_platform

    if local == (stack is not None):
        raise typer.BadParameter("give exactly one of --local, --stack NAME")
    percentages = parse_steps(steps)
    name = stack or "local"
    project = need_project(project)
    declaration = load_stack(name, project)
    rendered = render_platform(declaration, base_dir=project)
    target: Target
    if stack is not None:
        from cfai.provision.pulumi_cli import require_pulumi

        require_pulumi()  # before the Pulumi SDK and provider are imported (seconds)
        from cfai.deploy.cloud_target import open_cloud_target

        # ToolMissingError first without the CLI; Pulumi's own output goes to stderr.
        target = open_cloud_target(
            project, stack, on_output=lambda line: print(line, file=sys.stderr)
        )
    else:
        from cfai.deploy.local import LocalTarget

        target = LocalTarget(project, name, declaration)
    if preview_only:
        planned = preview(rendered, target, stack=name, workers_dir=project / "workers")
        if as_json:
            print(json.dumps(planned.as_json(), indent=2))
        elif markdown:
            print(f"#### `cfai deploy --stack {name}` on merge\n\n```text")
            print("\n".join(planned.lines()) + "\n```")
        else:
            out.print(f"cfai deploy --preview: {name}", markup=False)
            for line in planned.lines():
                out.print(line, markup=False)
        return
    report = apply_and_canary(
        rendered,
        target,
        stack=name,
        workers_dir=project / "workers",
        gate=contract_gate(project, live=stack is not None),
        steps=percentages,
        progress=lambda m: err.print(f"[dim]…[/dim] {m}"),
    )
    keys = {w.script_name: w.key for w in rendered}
    show(out, deploy_table(report.canary, {keys.get(n, n) for n in report.created}))
    raise typer.Exit(report.exit_code)
