"""What every verb shares: the Typer apps, consoles, common options, the user-error
boundary and loading the chosen platform(s)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperOption

from cfai.config import (
    PROJECT_FILE,
    PlatformConfig,
    discover_stacks,
    find_project,
    load_file,
    load_stack,
)
from cfai.errors import CfaiError, ConfigError, Problem, ProjectNotFoundError


def _flag_type(self: TyperOption, ctx: Any) -> str | None:
    # A flag takes no value: Typer 0.2x's rich help labels it "<bool>" all the same, which
    # reads as if `--demo true` were expected. Flags show no type; every other option keeps it.
    return None if getattr(self, "is_flag", False) else _option_type(self, ctx)


_option_type = TyperOption.display_type_rich
TyperOption.display_type_rich = _flag_type  # type: ignore[method-assign]

app = typer.Typer(
    no_args_is_help=True,
    # Typer's --install-completion / --show-completion (bash, zsh, fish, PowerShell)
    add_completion=True,
    help="Declare, render, run and prove an AI platform on Cloudflare.",
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        print(f"cfai {version('cfai')}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print cfai's version and exit."
        ),
    ] = False,
) -> None:
    """Declare, render, run and prove an AI platform on Cloudflare."""


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


def _project_root(value: Path) -> Path:
    # Like git and the Pulumi CLI: the nearest folder at or above the given one (the current
    # folder by default) holding Pulumi.yaml. None found: the folder as given, and the verbs
    # that need a project say so (`need_project`); `--config FILE` works without one.
    try:
        return find_project(value)
    except ProjectNotFoundError:
        return value


ProjectOpt = Annotated[
    Path,
    typer.Option(
        "--project",
        help="Project directory (default: the nearest folder at or above this one with Pulumi.yaml).",
        callback=_project_root,
        show_default=False,
    ),
]


def need_project(project: Path, *, state: bool = False) -> Path:
    """`project` when it is a cfai project (holds Pulumi.yaml; with `state`, also a folder
    holding a local platform's state `.cfai/`), else `ProjectNotFoundError` naming it."""
    if (project / PROJECT_FILE).is_file() or (state and (project / ".cfai").is_dir()):
        return project
    raise ProjectNotFoundError(str(project.resolve()))


def user_errors(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except CfaiError as e:
            if not e.user_fault:
                raise
            # escape: messages quote values and rules ("[a-z]") that are not Rich markup
            err.print(f"[red]error:[/red] {escape(str(e))}", markup=True, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def platforms(
    stack: str | None, config: Path | None, project: Path
) -> Iterator[tuple[str, PlatformConfig]]:
    """(label, platform) for the chosen source; every stack of the project by default.
    Loads all before yielding so every broken stack is reported."""
    if stack and config:
        raise typer.BadParameter("give --stack or --config, not both")
    if config:
        yield str(config), load_file(config)
        return
    need_project(project)
    stacks = [stack] if stack else discover_stacks(project)
    if not stacks:
        raise ConfigError([], source=f"no Pulumi.<stack>.yaml in {project.resolve()}")
    loaded: list[tuple[str, PlatformConfig]] = []
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


def warn_notices(label: str, platform: PlatformConfig, base_dir: Path) -> None:
    """Print the declaration's warnings (`cfai.kinds.worker_notices`) to stderr."""
    from cfai.kinds import worker_notices

    for notice in worker_notices(platform.workers, base_dir):
        err.print(f"[yellow]warning:[/yellow] {escape(f'{label}: {notice}')}", soft_wrap=True)


stack_app = typer.Typer(no_args_is_help=True, help="Stacks of the project (review stacks).")
app.add_typer(stack_app, name="stack")
