"""Cross-resource rules a single model cannot check on its own.

Each check yields `Problem`s with the path of the offending setting and the fix; the loader
reports all of them at once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Set
from pathlib import Path

from cfai.config.models import (
    NAME_RULES,
    ChatWorker,
    CustomWorker,
    ImageWorker,
    Platform,
    RagWorker,
)
from cfai.errors import Problem
from cfai.catalog import CATALOG, ModelSpec, Task, models_for

__all__ = ["check_platform"]

# Vectorize caps topK at 50 when metadata or values are returned (the rag Worker reads
# each match's text from its metadata).
VECTORIZE_TOP_K_WITH_METADATA = 50


def check_platform(
    platform: Platform,
    *,
    base_dir: Path | None = None,
    defined: Mapping[str, Set[str]] | None = None,
) -> list[Problem]:
    """Every cross-check problem of `platform`. `defined` names the gateways/indexes/workers
    declared in the source even if they failed validation, so a reference to them is not
    reported as unknown twice."""
    names = {
        "gateways": set(platform.gateways),
        "indexes": set(platform.indexes),
        "workers": set(platform.workers),
    }
    for section, keys in (defined or {}).items():
        names[section] = names.get(section, set()) | set(keys)
    return [
        *_names(platform),
        *_references(platform, names),
        *_models(platform),
        *_files(platform, base_dir),
    ]


def _names(platform: Platform) -> Iterator[Problem]:
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


def _unknown(path: str, what: str, name: str, defined: Set[str]) -> Problem:
    listing = ", ".join(sorted(defined)) or "none"
    return Problem(path, f"unknown {what} {name!r} (defined: {listing})")


def _references(platform: Platform, names: Mapping[str, Set[str]]) -> Iterator[Problem]:
    for key, w in platform.workers.items():
        base = f"workers.{key}"
        if (
            isinstance(w, ChatWorker | RagWorker)
            and w.gateway
            and w.gateway not in names["gateways"]
        ):
            yield _unknown(f"{base}.gateway", "gateway", w.gateway, names["gateways"])
        if isinstance(w, RagWorker) and w.index not in names["indexes"]:
            yield _unknown(f"{base}.index", "index", w.index, names["indexes"])
        if isinstance(w, CustomWorker):
            b = w.bindings
            if b.vectorize and b.vectorize.index not in names["indexes"]:
                yield _unknown(
                    f"{base}.bindings.vectorize.index", "index", b.vectorize.index, names["indexes"]
                )
            if b.gateway and b.gateway.gateway not in names["gateways"]:
                yield _unknown(
                    f"{base}.bindings.gateway.gateway",
                    "gateway",
                    b.gateway.gateway,
                    names["gateways"],
                )
            if w.auth and not b.auth_token:
                yield Problem(
                    f"{base}.auth", "auth is on but bindings.auth_token names no secret binding"
                )


def _model(path: str, name: str, task: Task, role: str) -> tuple[ModelSpec | None, list[Problem]]:
    spec = CATALOG.get(name)
    choices = ", ".join(models_for(task))
    if spec is None:
        return None, [
            Problem(path, f"unknown Workers AI model {name!r} ({task.value} models: {choices})")
        ]
    if spec.task is not task:
        return None, [
            Problem(
                path,
                f"{role} needs a {task.value} model but {name!r} is {spec.task.value} (choose one of: {choices})",
            )
        ]
    return spec, []


def _models(platform: Platform) -> Iterator[Problem]:
    for key, w in platform.workers.items():
        base = f"workers.{key}"
        if isinstance(w, ChatWorker | RagWorker):
            spec, problems = _model(
                f"{base}.model", w.model, Task.TEXT_GENERATION, f"a {w.kind} worker"
            )
            yield from problems
            if spec and spec.context_window and w.max_tokens > spec.context_window:
                yield Problem(
                    f"{base}.max_tokens",
                    f"max_tokens {w.max_tokens} exceeds {w.model}'s context window of {spec.context_window}",
                )
        if isinstance(w, ChatWorker) and w.response_schema is not None:
            if w.stream:
                yield Problem(
                    f"{base}.stream", "JSON mode (response_schema) cannot stream; set stream: false"
                )
            if w.response_schema.get("type") != "object":
                yield Problem(
                    f"{base}.response_schema", 'must be a JSON Schema with "type": "object"'
                )
        if isinstance(w, RagWorker):
            yield from _rag(platform, key, w)
        if isinstance(w, ImageWorker):
            yield from _image(key, w)


def _rag(platform: Platform, key: str, w: RagWorker) -> Iterator[Problem]:
    base = f"workers.{key}"
    spec, problems = _model(
        f"{base}.embedding_model", w.embedding_model, Task.TEXT_EMBEDDINGS, "a rag worker"
    )
    yield from problems
    index = platform.indexes.get(w.index)
    if spec and index and spec.dimensions != index.resolved_dimensions:
        yield Problem(
            f"{base}.index",
            f"index {w.index!r} has {index.resolved_dimensions} dimensions but embedding model "
            f"{w.embedding_model!r} makes {spec.dimensions}; use an index of {spec.dimensions} "
            "dimensions or another embedding model",
        )
    if w.top_k > VECTORIZE_TOP_K_WITH_METADATA:
        yield Problem(
            f"{base}.top_k",
            f"top_k {w.top_k} exceeds Vectorize's topK limit of {VECTORIZE_TOP_K_WITH_METADATA} "
            "when metadata is returned",
        )
    if w.pooling == "cls" and not w.embedding_model.startswith("@cf/baai/bge-"):
        yield Problem(
            f"{base}.pooling", "pooling 'cls' is only offered by the @cf/baai/bge-* models"
        )


def _image(key: str, w: ImageWorker) -> Iterator[Problem]:
    base = f"workers.{key}"
    spec, problems = _model(f"{base}.model", w.model, Task.TEXT_TO_IMAGE, "an image worker")
    yield from problems
    if spec is None or spec.image is None:
        return
    lim = spec.image
    if w.steps is not None and w.steps > lim.max_steps:
        yield Problem(
            f"{base}.steps", f"steps {w.steps} exceeds {w.model}'s maximum of {lim.max_steps}"
        )
    for field in ("max_width", "max_height"):
        value = getattr(w, field)
        if value is None:
            continue
        if not lim.sizable:
            yield Problem(
                f"{base}.{field}",
                f"{w.model} makes {lim.default_width}x{lim.default_height} images only; remove {field}",
            )
        elif not lim.min_size <= value <= lim.max_size:
            yield Problem(
                f"{base}.{field}",
                f"{field} {value} is outside {w.model}'s range {lim.min_size}..{lim.max_size}",
            )


def _files(platform: Platform, base_dir: Path | None) -> Iterator[Problem]:
    for key, w in platform.workers.items():
        if not isinstance(w, CustomWorker):
            continue
        path = f"workers.{key}.main"
        if Path(w.main).is_absolute() or ".." in Path(w.main).parts:
            yield Problem(path, f"{w.main!r} must be a path inside the project")
        elif not w.main.endswith((".js", ".mjs")):
            yield Problem(path, f"{w.main!r} must be an ES module (.js or .mjs)")
        elif base_dir is not None and not (base_dir / w.main).is_file():
            yield Problem(path, f"file {w.main!r} not found in {base_dir}")
