"""Load a platform declaration from a stack file, a YAML file or Python objects.

The only module that reads files for config, and the one boundary where pydantic's
`ValidationError` becomes a `ConfigError` listing every problem with its path. Never needs
the Pulumi CLI.

Example::

    platform = load_stack("staging")                 # Pulumi.staging.yaml, key cfai:platform
    platform = load_file("platform.yaml")            # a YAML file that is the platform itself
    platform = load_platform({"account_id": "...", "workers": {...}})
    # The value of cfai:platform as Pulumi gives it to the program (stack file, ESC,
    # `pulumi config set --path`, the Automation API): physical names default to <project>-<stack>.
    platform = load_declaration(data, project="cfai", stack="staging", base_dir=Path("."))
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError

from cfai.config.checks import check_platform
from cfai.config.finetunes import FinetuneConfig
from cfai.config.models import AnyWorkerConfig, GatewayConfig, IndexConfig, PlatformConfig
from cfai.errors import ConfigError, Problem, ProjectNotFoundError
from cfai.kinds import kind_names
from cfai.kinds.base import PATTERN_RULES

__all__ = [
    "CONFIG_KEY",
    "PROJECT_FILE",
    "discover_stacks",
    "find_project",
    "load_declaration",
    "load_file",
    "load_platform",
    "load_stack",
    "project_name",
    "stack_file",
]

CONFIG_KEY = "cfai:platform"
PROJECT_FILE = "Pulumi.yaml"  # marks the project folder, as for the Pulumi CLI
_SECTIONS: dict[str, Any] = {
    "gateways": TypeAdapter(GatewayConfig),
    "indexes": TypeAdapter(IndexConfig),
    "workers": TypeAdapter(AnyWorkerConfig),
    "finetunes": TypeAdapter(FinetuneConfig),
}


def _path(prefix: str, loc: tuple[int | str, ...]) -> str:
    # pydantic puts the discriminator's value in the location of a union member; users never
    # wrote it, so drop it: ("rag", "top_k") -> "top_k".
    kinds = kind_names()
    parts = [str(p) for p in loc if not (isinstance(p, str) and p in kinds and loc.index(p) == 0)]
    return ".".join([prefix, *parts]) if prefix else ".".join(parts)


def _problems(err: ValidationError, prefix: str) -> list[Problem]:
    out = []
    for e in err.errors():
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown setting (check the spelling)"
        elif e["type"] == "union_tag_invalid":
            msg = f"kind must be one of: {', '.join(kind_names())}"
        elif e["type"] == "union_tag_not_found":
            msg = f"missing kind (one of: {', '.join(kind_names())})"
        elif e["type"] == "string_pattern_mismatch":
            pattern = str((e.get("ctx") or {}).get("pattern", ""))
            rule = PATTERN_RULES.get(pattern, f"text matching the pattern {pattern}")
            msg = f"{e['input']!r} is not allowed: use {rule}"
        out.append(Problem(_path(prefix, e["loc"]), msg))
    return out


def load_platform(
    data: Mapping[str, Any], *, base_dir: Path | None = None, source: str | None = None
) -> PlatformConfig:
    """Validate `data` and cross-check it; raise `ConfigError` listing every problem."""
    if not isinstance(data, Mapping):
        raise ConfigError(
            [Problem("", f"the platform must be a mapping, not {type(data).__name__}")], source
        )
    problems: list[Problem] = []
    valid: dict[str, Any] = {}
    defined: dict[str, set[str]] = {}
    # Validate each gateway, index and worker on its own so one bad entry does not hide the
    # others' problems or the cross-checks of the good ones.
    for section, adapter in _SECTIONS.items():
        raw = data.get(section) or {}
        if not isinstance(raw, Mapping):
            problems.append(
                Problem(section, f"must be a mapping of name -> settings, not {type(raw).__name__}")
            )
            continue
        defined[section] = {str(k) for k in raw}
        valid[section] = {}
        for key, value in raw.items():
            try:
                valid[section][str(key)] = adapter.validate_python(
                    value if value is not None else {}
                )
            except ValidationError as err:
                problems.extend(_problems(err, f"{section}.{key}"))
    top = {k: v for k, v in data.items() if k not in _SECTIONS}
    try:
        platform = PlatformConfig.model_validate({**top, **valid})
    except ValidationError as err:
        problems.extend(_problems(err, ""))
        # Cross-check the sections anyway, against a platform without the bad top-level keys.
        bad = {str(e["loc"][0]) for e in err.errors() if e["loc"]}
        top = {k: v for k, v in top.items() if k not in bad}
        try:
            platform = PlatformConfig.model_validate({**top, "account_id": "0" * 32, **valid})
        except ValidationError:
            raise ConfigError(problems, source) from None
    problems.extend(check_platform(platform, base_dir=base_dir, defined=defined))
    if problems:
        raise ConfigError(problems, source)
    return platform


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([Problem("", f"{path} not found")]) from None
    try:
        return yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise ConfigError([Problem("", f"{path} is not valid YAML: {err}")]) from None


def load_file(path: str | Path) -> PlatformConfig:
    """Load a YAML file whose top level is the platform, or a `Pulumi.<stack>.yaml`."""
    path = Path(path)
    data = _read_yaml(path)
    if isinstance(data, Mapping) and "config" in data:
        config = data.get("config") or {}
        if CONFIG_KEY not in config:
            raise ConfigError([Problem("config", f"no {CONFIG_KEY!r} key in {path}")])
        data = config[CONFIG_KEY]
    return load_platform(data, base_dir=path.parent.resolve(), source=str(path))


def stack_file(stack: str, project_dir: str | Path = ".") -> Path:
    return Path(project_dir) / f"Pulumi.{stack}.yaml"


def load_stack(stack: str, project_dir: str | Path = ".") -> PlatformConfig:
    """Load the platform of `Pulumi.<stack>.yaml`. Without a `name_prefix`, physical names
    get `<project>-<stack>` so stacks sharing an account never collide."""
    project_dir = Path(project_dir)
    path = stack_file(stack, project_dir)
    if not path.is_file():
        known = ", ".join(discover_stacks(project_dir)) or "none"
        raise ConfigError([Problem("", f"no stack {stack!r}: {path} not found (stacks: {known})")])
    data = _read_yaml(path)
    config = (data or {}).get("config") or {}
    if CONFIG_KEY not in config:
        raise ConfigError([Problem("config", f"no {CONFIG_KEY!r} key in {path}")])
    return load_declaration(
        config[CONFIG_KEY],
        project=project_name(project_dir),
        stack=stack,
        base_dir=project_dir.resolve(),
        source=str(path),
    )


def load_declaration(
    data: Any, *, project: str, stack: str, base_dir: Path, source: str | None = None
) -> PlatformConfig:
    """A stack's declaration, the value of ``cfai:platform`` wherever it came from (a stack
    file read by `load_stack`, or Pulumi's config in the Pulumi program). Without a
    `name_prefix`, physical names get ``<project>-<stack>`` so stacks sharing an account
    never collide."""
    if isinstance(data, Mapping) and not data.get("name_prefix"):
        data = {**data, "name_prefix": f"{project}-{stack}"}
    return load_platform(data, base_dir=base_dir, source=source)


def project_name(project_dir: str | Path = ".") -> str:
    """The Pulumi project's name (``name`` in ``Pulumi.yaml``), ``cfai`` without one: the
    default prefix of a stack's physical names is ``<project>-<stack>``."""
    project = Path(project_dir) / PROJECT_FILE
    if project.is_file():
        data = yaml.safe_load(project.read_text(encoding="utf-8")) or {}
        if isinstance(data, Mapping) and data.get("name"):
            return str(data["name"])
    return "cfai"


def find_project(start: str | Path = ".") -> Path:
    """The project folder: the nearest folder at or above `start` holding ``Pulumi.yaml``,
    found the way git finds ``.git`` and the Pulumi CLI finds its project file, so every
    command works from any subfolder. Raises `ProjectNotFoundError` when there is none.

    >>> find_project("cfai/local") == find_project(".")  # doctest: +SKIP
    True
    """
    here = Path(start).resolve()
    for folder in (here, *here.parents):
        if (folder / PROJECT_FILE).is_file():
            return folder
    raise ProjectNotFoundError(str(here))


def discover_stacks(project_dir: str | Path = ".") -> list[str]:
    """Names of the stacks with a `Pulumi.<stack>.yaml` in the project, sorted."""
    return sorted(
        p.name[len("Pulumi.") : -len(".yaml")] for p in Path(project_dir).glob("Pulumi.*.yaml")
    )
