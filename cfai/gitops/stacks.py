"""Review stacks: a copy of a stack under its own name prefix, for one pull request.

`new_stack("pr-42", "staging")` writes ``Pulumi.pr-42.yaml`` with staging's platform and
settings, a `name_prefix` of its own (``<project>-pr-42``) so its gateways, indexes and
Workers never collide with staging's in the same account, and without staging's encrypted
values: `secure:` values are encrypted for their own stack and cannot be copied, so they
are listed for the user to set again. The result is validated before anything is written,
and an existing stack file is never overwritten.

Example::

    made = new_stack("pr-42", "staging", project=Path("."))
    for key in made.secrets_to_set:
        print(f"pulumi config set --secret {key} ... --stack pr-42")
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML

from cfai.config import CONFIG_KEY, discover_stacks, load_platform, project_name, stack_file
from cfai.errors import ConfigError, Problem
from cfai.kinds.base import NAME_PREFIX, PATTERN_RULES

__all__ = ["NewStack", "new_stack", "validate_stack_name"]

# Pulumi: "stack names may only contain alphanumeric, hyphens, underscores, or periods".
_STACK_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_STACK_NAME_MAX = 100
# Keys of a stack file tied to that stack's own secrets provider; never copied.
_STACK_BOUND = ("encryptionsalt", "encryptedkey", "secretsprovider")


@dataclass(frozen=True)
class NewStack:
    """What `new_stack` wrote, and the secrets the user must set before `pulumi up`."""

    name: str
    path: Path
    name_prefix: str
    secrets_to_set: tuple[str, ...]
    dropped: tuple[str, ...] = ()

    def secret_commands(self) -> list[str]:
        return [
            f'pulumi config set --secret {key} "..." --stack {self.name}'
            for key in self.secrets_to_set
        ]


def validate_stack_name(name: str) -> None:
    """Raise `ConfigError` unless `name` is a Pulumi stack name this project can hold."""
    if "/" in name:
        raise ConfigError(
            [Problem("stack", f"{name!r}: give the short stack name, without org/project")]
        )
    if not _STACK_NAME.match(name) or len(name) > _STACK_NAME_MAX:
        raise ConfigError(
            [
                Problem(
                    "stack",
                    f"{name!r} is not a Pulumi stack name: use letters, digits, '-', '_' and '.',"
                    f" at most {_STACK_NAME_MAX} characters",
                )
            ]
        )


def _suggest(name: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-") or "pr-1"


def new_stack(
    name: str, source: str, *, project: Path = Path("."), prefix: str | None = None
) -> NewStack:
    """Create ``Pulumi.<name>.yaml`` from ``Pulumi.<source>.yaml`` with its own prefix."""
    validate_stack_name(name)
    target = stack_file(name, project)
    if target.exists():
        raise ConfigError(
            [Problem("stack", f"{target} exists; choose another name or delete it first")]
        )
    origin = stack_file(source, project)
    if not origin.is_file():
        known = ", ".join(discover_stacks(project)) or "none"
        raise ConfigError(
            [Problem("from", f"no stack {source!r}: {origin} not found (stacks: {known})")]
        )
    try:
        data = yaml.safe_load(origin.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ConfigError([Problem("", f"{origin} is not valid YAML: {err}")]) from None
    config = data.get("config") if isinstance(data, Mapping) else None
    if not isinstance(config, Mapping) or not isinstance(config.get(CONFIG_KEY), Mapping):
        raise ConfigError([Problem("config", f"no {CONFIG_KEY!r} key in {origin}")])

    if prefix is None:
        prefix = f"{project_name(project)}-{name}"
        if not re.match(NAME_PREFIX, prefix):
            # The prefix comes from the stack name: blame the name the user typed.
            raise ConfigError(
                [
                    Problem(
                        "stack",
                        f"{name!r} cannot prefix Cloudflare resource names ({prefix!r}): "
                        f"use {PATTERN_RULES[NAME_PREFIX]} (e.g. {_suggest(name)!r}), "
                        "or keep the name and give --prefix",
                    )
                ]
            )
    kept, secrets = _without_secrets(dict(config))
    platform = {**kept[CONFIG_KEY], "name_prefix": prefix}
    kept[CONFIG_KEY] = platform
    # Validate as the new stack will load: prefix rules and physical-name lengths included.
    try:
        load_platform(platform, base_dir=project.resolve(), source=f"{target} (from {origin.name})")
    except ConfigError as err:
        problems = [
            Problem(p.path, f"{p.message} (choose a prefix with --prefix)")
            if p.path == "name_prefix" or "name_prefix" in p.message
            else p
            for p in err.problems
        ]
        raise ConfigError(problems, err.source) from None

    dropped = tuple(k for k in _STACK_BOUND if k in data)
    body = _round_trip(origin, prefix)
    header = [
        f"# Review stack {name!r}, created by `cfai stack new {name} --from {source}`.",
        f"# Same platform as {source!r}; physical names are prefixed {prefix!r}.",
    ]
    if secrets:
        header.append("# Set its secrets (the source stack's encrypted values cannot be copied):")
        header += [f'#   pulumi config set --secret {k} "..." --stack {name}' for k in secrets]
    with open(target, "x", encoding="utf-8") as f:  # "x": never overwrite a racing writer
        f.write("\n".join(header) + "\n" + body)
    return NewStack(name, target, prefix, tuple(secrets), dropped)


def _round_trip(origin: Path, prefix: str) -> str:
    """The source stack file as text again, its comments, key order, quoting and flow
    style kept (ruamel.yaml round-trips them; PyYAML would drop every comment and expand
    `{limit: 100, ...}`), less its stack-bound keys and `secure:` values, with `prefix`."""
    rt = YAML()  # round-trip mode
    rt.preserve_quotes = True
    rt.width = 4096  # never re-wrap a user's long line
    rt.indent(mapping=2, sequence=4, offset=2)
    doc = rt.load(origin.read_text(encoding="utf-8"))
    for key in _STACK_BOUND:
        doc.pop(key, None)
    _drop_secure(doc["config"])
    platform = doc["config"][CONFIG_KEY]
    if "name_prefix" in platform:
        platform["name_prefix"] = prefix
    else:
        after = [i for i, k in enumerate(platform) if k in ("account_id", "compatibility_date")]
        platform.insert(max(after, default=-1) + 1, "name_prefix", prefix)
    out = io.StringIO()
    rt.dump(doc, out)
    return out.getvalue()


def _drop_secure(node: Any) -> None:
    # The same `secure:` values `_without_secrets` lists, removed from the round-trip tree.
    if isinstance(node, MutableMapping):
        for key in list(node):
            value = node[key]
            if isinstance(value, Mapping) and set(value) == {"secure"}:
                del node[key]
            else:
                _drop_secure(value)
    elif isinstance(node, list):
        for i in reversed(range(len(node))):
            if isinstance(node[i], Mapping) and set(node[i]) == {"secure"}:
                del node[i]
            else:
                _drop_secure(node[i])


def _without_secrets(config: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The config without `secure:` values, and the config keys (dotted inside objects)
    whose value was one."""
    found: list[str] = []

    def walk(value: Any, path: str) -> Any:
        if isinstance(value, Mapping):
            if set(value) == {"secure"}:
                found.append(path)
                return _DROP
            out = {}
            for k, v in value.items():
                kept = walk(v, f"{path}.{k}" if path else str(k))
                if kept is not _DROP:
                    out[k] = kept
            return out
        if isinstance(value, list):
            walked = (walk(v, f"{path}[{i}]") for i, v in enumerate(value))
            return [v for v in walked if v is not _DROP]
        return value

    kept = walk(config, "")
    assert isinstance(kept, dict)
    return kept, found


_DROP = object()
