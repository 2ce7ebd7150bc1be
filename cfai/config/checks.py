"""Cross-resource rules a single model cannot check on its own.

Names and finetunes (`cfai.config.finetunes`) are checked here; each Worker is checked by its kind (`cfai.kinds.Kind.problems`).
Each check yields `Problem`s with the path of the offending setting and the fix; the loader
reports all of them at once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Set
from pathlib import Path

from cfai.config.finetunes import finetune_bases, finetune_problems
from cfai.config.models import NAME_RULES, PlatformConfig
from cfai.errors import Problem
from cfai.kinds import KINDS, CheckContext, kind_for

__all__ = ["check_platform"]


def check_platform(
    platform: PlatformConfig,
    *,
    base_dir: Path | None = None,
    defined: Mapping[str, Set[str]] | None = None,
) -> list[Problem]:
    """Every cross-check problem of `platform`. `defined` names the gateways/indexes/workers/
    finetunes declared in the source even if they failed validation, so a reference to them
    is not reported as unknown twice."""
    names = {
        "gateways": set(platform.gateways),
        "indexes": set(platform.indexes),
        "workers": set(platform.workers),
        "finetunes": set(platform.finetunes),
    }
    for section, keys in (defined or {}).items():
        names[section] = names.get(section, set()) | set(keys)
    ctx = CheckContext(
        gateways=names["gateways"],
        indexes=names["indexes"],
        index_dimensions={k: i.resolved_dimensions for k, i in platform.indexes.items()},
        base_dir=base_dir,
        finetunes=finetune_bases(platform.finetunes, names["finetunes"]),
    )
    problems = list(_names(platform))
    problems.extend(finetune_problems(platform.finetunes, platform.physical_name, base_dir))
    with_page = ", ".join(k.name for k in KINDS if k.playground)
    for key, worker in platform.workers.items():
        kind = kind_for(worker.kind)
        problems.extend(kind.problems(key, worker, ctx))
        if worker.playground and not kind.playground:
            problems.append(
                Problem(
                    f"workers.{key}.playground",
                    f"{kind.name} Workers have no playground page (these kinds do: {with_page})",
                )
            )
    return problems


def _names(platform: PlatformConfig) -> Iterator[Problem]:
    for section, kind in (("gateways", "gateway"), ("indexes", "index"), ("workers", "worker")):
        pattern, limit, rule = NAME_RULES[kind]
        for key in getattr(platform, section):
            name = platform.physical_name(key)
            if not pattern.match(name):
                yield Problem(f"{section}.{key}", f"{kind} name {name!r} must use {rule}")
            if len(name.encode()) > limit:
                yield Problem(
                    f"{section}.{key}",
                    f"{kind} name {name!r} is {len(name.encode())} bytes; Cloudflare allows {limit} "
                    "(shorten the key or name_prefix)",
                )
