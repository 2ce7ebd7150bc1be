"""The Worker kinds cfai knows: a kind is its import here and its place in `KINDS`.
Everything else loops over `KINDS`.

Example::

    >>> kind_for("rag").main_route.path
    '/query'
    >>> kind_names()
    ('chat', 'custom', 'image', 'rag', 'speech')
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cfai.catalog import CATALOG, Task, catalog_for
from cfai.errors import Problem
from cfai.kinds.base import CheckContext, Example, Kind, WorkerConfig
from cfai.kinds.chat import KIND as CHAT
from cfai.kinds.custom import KIND as CUSTOM
from cfai.kinds.image import KIND as IMAGE
from cfai.kinds.rag import KIND as RAG
from cfai.kinds.speech import KIND as SPEECH

__all__ = [
    "KINDS",
    "declared_models",
    "example_for",
    "examples_for",
    "kind_for",
    "kind_names",
    "worker_notices",
]

KINDS: tuple[Kind[Any], ...] = (CHAT, RAG, IMAGE, SPEECH, CUSTOM)

_BY_NAME = {k.name: k for k in KINDS}


def kind_for(name: str) -> Kind[Any]:
    """The kind called `name`; KeyError names the known kinds."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"no Worker kind {name!r} (known: {', '.join(kind_names())})") from None


def kind_names() -> tuple[str, ...]:
    """Every kind's name, sorted."""
    return tuple(sorted(_BY_NAME))


def example_for(name: str) -> Example:
    """The example request of kind `name`, or a `GET /health` for a kind this cfai does
    not know (an outputs map written by a newer one)."""
    kind = _BY_NAME.get(name)
    return kind.example if kind else Example("GET", "/health")


def examples_for(name: str) -> tuple[Example, ...]:
    """Every example request of kind `name` (one per route worth showing), or a
    `GET /health` for a kind this cfai does not know."""
    kind = _BY_NAME.get(name)
    return kind.all_examples if kind else (Example("GET", "/health"),)


def worker_notices(workers: Mapping[str, WorkerConfig], base_dir: Path | None) -> list[Problem]:
    """Warnings about `workers` that do not stop a deploy (`Kind.notices`): models the
    catalog does not list that a declared task vouches for, ... `cfai validate` and
    `cfai render` print them."""
    ctx = CheckContext(gateways=set(), indexes=set(), index_dimensions={}, base_dir=base_dir)
    found: list[Problem] = []
    for key, worker in sorted(workers.items()):
        found.extend(kind_for(worker.kind).notices(key, worker, ctx))
    return found


def declared_models(
    workers: Mapping[str, WorkerConfig],
    base_dir: Path | None,
    index_dimensions: Mapping[str, int] | None = None,
) -> dict[str, dict[str, Any]]:
    """Models the Workers call that the built-in catalog does not list, by name, with their
    task and, for embeddings, dimensions (``{"task", "dimensions"?}``): what the local
    emulator must answer for besides its catalog (a declared task, or the project's
    ``catalog.json``). An undeclared embedding model's dimensions are those of the index
    its Worker writes to (`index_dimensions`, by index key)."""
    catalog = catalog_for(base_dir)
    out: dict[str, dict[str, Any]] = {}
    for worker in workers.values():
        declared = getattr(worker, "task", None)
        for use in kind_for(worker.kind).model_uses(worker):
            if use.name in CATALOG or (use.name not in catalog and declared is not use.task):
                continue
            entry: dict[str, Any] = {"task": use.task.value}
            spec = catalog.get(use.name)
            dims = spec.dimensions if spec else None
            index = getattr(worker, "index", None)
            if dims is None and index is not None and use.task is Task.TEXT_EMBEDDINGS:
                dims = (index_dimensions or {}).get(str(index))
            if dims is not None:
                entry["dimensions"] = dims
            out[use.name] = entry
    for name in sorted(catalog.synced - set(CATALOG)):
        spec = catalog[name]
        entry = {"task": spec.task.value}
        if spec.dimensions is not None:
            entry["dimensions"] = spec.dimensions
        out.setdefault(name, entry)
    return out
