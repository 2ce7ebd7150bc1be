"""An upload read and checked: modules, metadata and bindings as Cloudflare takes them.

Sources of the rules: the multipart upload metadata
(https://developers.cloudflare.com/workers/configuration/multipart-upload-metadata/), the
module content types wrangler sends (``packages/wrangler/src/deployment-bundle/
create-worker-upload-form.ts``, ``moduleTypeMimeType``) and the Python SDK's
``types/workers/script_update_params.py`` (binding types and their required fields).

A binding of a type the local platform cannot run is refused at upload, naming it, in
Cloudflare's ``binding <NAME> of type <type> ...`` form (10021), rather than accepted and
then missing from ``env``.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cfai.local.services.frontdoor import Part, loads
from cfai.local.services.workers_scripts import _errors as E
from cfai.local.services.workers_scripts._model import Module, Version

__all__ = ["PLAIN_TYPES", "Draft", "check", "module_kind", "read_form", "read_json"]

#: Binding types the runtime serves itself (text, JSON and secret values).
PLAIN_TYPES = ("plain_text", "secret_text", "json")
#: Settings that belong to the script, not to a version.
SCRIPT_SETTINGS = ("logpush", "observability", "tags", "tail_consumers")
_VERSIONED = ("usage_model", "limits", "placement")
# Cloudflare runs a Worker that names no date at the oldest behaviour; workerd needs one.
DEFAULT_DATE = "2021-11-03"
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_KINDS = {
    "application/javascript+module": "esModule",
    "text/javascript+module": "esModule",
    "application/javascript": "commonJsModule",
    "text/javascript": "commonJsModule",
    "application/wasm": "wasm",
    "text/plain": "text",
    "application/octet-stream": "data",
    "application/json": "json",
    "application/source-map": "sourceMap",
    "text/x-python": "python",
    "text/x-python-requirement": "python",
}
_BY_SUFFIX = {
    ".js": "esModule",
    ".mjs": "esModule",
    ".cjs": "commonJsModule",
    ".wasm": "wasm",
    ".json": "json",
    ".txt": "text",
    ".map": "sourceMap",
}

#: What the service knows about a binding beyond its fields: a reason to refuse it, or None.
BindingCheck = Callable[[Mapping[str, Any]], str | None]


def module_kind(content_type: str, name: str) -> str | None:
    """The workerd module kind of a part (``esModule``, ``commonJsModule``, ``text``,
    ``data``, ``wasm``, ``json``; ``sourceMap``/``python`` are not loaded), None when the
    content type is unknown. A part without a content type is judged by its suffix."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media:
        return _KINDS.get(media)
    for suffix, kind in _BY_SUFFIX.items():
        if name.endswith(suffix):
            return kind
    return "data"


@dataclass(frozen=True)
class Draft:
    """A checked upload: a version's metadata and modules, its annotations, and the
    script-level settings it carried."""

    metadata: dict[str, Any] = field(repr=False)
    modules: tuple[Module, ...]
    annotations: dict[str, Any]
    settings: dict[str, Any]


def read_form(parts: Sequence[Part]) -> tuple[dict[str, Any], list[Module]]:
    """The metadata and modules of a multipart upload (any client's framing: a part is the
    metadata by its *name*, a module by its *filename* or, without one, its name: a
    service worker's ``body_part``)."""
    metadata: Any = None
    modules = []
    for p in parts:
        if p.name == "metadata" and not p.filename:
            try:
                metadata = loads(p.data)
            except ValueError as exc:
                raise E.invalid(f"metadata is not valid JSON ({exc})") from None
        else:
            modules.append(Module(p.filename or p.name, p.content_type or "", p.data))
    if not isinstance(metadata, dict):
        raise E.invalid("the upload has no `metadata` part holding a JSON object")
    return metadata, modules


def read_json(body: Mapping[str, Any]) -> tuple[dict[str, Any], list[Module]]:
    """The metadata and modules of a ``workers/workers/{id}/versions`` body (modules as
    ``{name, content_type, content_base64}``)."""
    raw = body.get("modules")
    if not isinstance(raw, list) or not raw:
        raise E.invalid("modules: expected a non-empty array of modules")
    modules = []
    for i, m in enumerate(raw):
        if not isinstance(m, dict) or not isinstance(m.get("name"), str):
            raise E.invalid(f"modules[{i}]: expected {{name, content_type, content_base64}}")
        try:
            data = base64.b64decode(str(m.get("content_base64", "")), validate=True)
        except (binascii.Error, ValueError):
            raise E.invalid(f"modules[{i}].content_base64: not valid base64") from None
        modules.append(Module(m["name"], str(m.get("content_type") or ""), data))
    metadata = {k: v for k, v in body.items() if k != "modules"}
    return metadata, modules


def check(
    metadata: Mapping[str, Any],
    modules: Sequence[Module],
    *,
    previous: Version | None,
    strict_inherit: bool,
    bindable: BindingCheck,
    assets: Mapping[str, Any] | None = None,
) -> Draft:
    """Refuse what Cloudflare (or the local platform) would not run; the draft otherwise.
    `previous` is the version ``inherit`` bindings and ``keep_bindings`` draw from; `assets`
    the version's static assets (``{config, manifest}``, already checked), if any."""
    _check_modules(modules)
    entry = _entry(metadata, modules, has_assets=assets is not None)
    date = metadata.get("compatibility_date") or DEFAULT_DATE
    if not isinstance(date, str) or not _DATE.fullmatch(date):
        raise E.invalid(f"compatibility_date: expected YYYY-MM-DD, got {date!r}")
    flags = metadata.get("compatibility_flags") or []
    if not isinstance(flags, list) or not all(isinstance(f, str) for f in flags):
        raise E.invalid("compatibility_flags: expected an array of strings")
    annotations = metadata.get("annotations") or {}
    if not isinstance(annotations, dict):
        raise E.invalid("annotations: expected an object")
    bindings = _bindings(metadata, previous, strict_inherit, bindable)
    for b in bindings:
        if b["type"] == "assets" and assets is None:
            raise E.bad_binding(b["name"], "assets", "needs assets uploaded with the Worker")
    size = len(gzip.compress(b"".join(m.content for m in modules), compresslevel=1))
    if size > E.MAX_COMPRESSED:
        raise E.too_large(size)
    out: dict[str, Any] = {
        **entry,
        "bindings": bindings,
        "compatibility_date": date,
        "compatibility_flags": list(flags),
    }
    out.update({k: metadata[k] for k in _VERSIONED if k in metadata})
    if assets is not None:
        out["assets"] = dict(assets)
    settings = {k: metadata[k] for k in SCRIPT_SETTINGS if k in metadata}
    return Draft(out, tuple(modules), dict(annotations), settings)


def _check_modules(modules: Sequence[Module]) -> None:
    seen = set()
    for m in modules:
        name = m.name
        if (
            not name
            or len(name) > 512
            or name.startswith("/")
            or "\\" in name
            or "\0" in name
            or any(part in ("", ".", "..") for part in name.split("/"))
        ):
            raise E.invalid(f"module name {name!r} is not a relative path")
        if name in seen:
            raise E.invalid(f"module {name} is uploaded more than once")
        seen.add(name)
        kind = module_kind(m.content_type, name)
        if kind is None:
            raise E.invalid(f"module {name}: unsupported content type {m.content_type!r}")
        if kind == "python":
            raise E.invalid(f"module {name}: Python Workers do not run on the local platform")


def _entry(
    metadata: Mapping[str, Any], modules: Sequence[Module], *, has_assets: bool
) -> dict[str, str]:
    main, part = metadata.get("main_module"), metadata.get("body_part")
    names = {m.name: m for m in modules}
    if isinstance(main, str) and main:
        module = names.get(main)
        if module is None:
            raise E.invalid(f'No such module "{main}": main_module is not among the uploaded parts')
        if module_kind(module.content_type, main) != "esModule":
            raise E.invalid(
                f"main_module {main} must be an ES module (application/javascript+module)"
            )
        return {"main_module": main}
    if isinstance(part, str) and part:
        if part not in names:
            raise E.invalid(f'No such part "{part}": body_part is not among the uploaded parts')
        return {"body_part": part}
    if not modules and has_assets:
        return {}  # a Worker of static assets only
    if not modules:
        raise E.invalid("the upload has no modules and no assets")
    raise E.invalid("metadata must name main_module (ES modules) or body_part (service worker)")


def _bindings(
    metadata: Mapping[str, Any],
    previous: Version | None,
    strict: bool,
    bindable: BindingCheck,
) -> list[dict[str, Any]]:
    raw = metadata.get("bindings") or []
    if not isinstance(raw, list):
        raise E.invalid("bindings: expected an array")
    old = {str(b.get("name")): dict(b) for b in (previous.bindings if previous else [])}
    out: list[dict[str, Any]] = []
    for i, b in enumerate(raw):
        if not isinstance(b, dict) or not isinstance(b.get("name"), str) or not b["name"]:
            raise E.invalid(f"bindings[{i}]: expected an object with a name and a type")
        name, kind = b["name"], b.get("type")
        if not isinstance(kind, str):
            raise E.invalid(f"bindings[{i}] ({name}): expected a type")
        if kind == "inherit":
            source = old.get(str(b.get("old_name") or name))
            if source is None:
                if strict:
                    raise E.bad_inherit(name)
                continue  # without bindings_inherit=strict an unknown inherit is dropped
            out.append({**source, "name": name})
            continue
        out.append(_binding(dict(b), bindable))
    keep = metadata.get("keep_bindings") or []
    if not isinstance(keep, list):
        raise E.invalid("keep_bindings: expected an array of binding types")
    names = {b["name"] for b in out}
    out += [b for n, b in old.items() if b.get("type") in keep and n not in names]
    counted: dict[str, int] = {}
    for b in out:
        counted[b["name"]] = counted.get(b["name"], 0) + 1
    twice = sorted(n for n, c in counted.items() if c > 1)
    if twice:
        raise E.invalid(f"binding names must be unique: {', '.join(twice)}")
    return out


def _binding(b: dict[str, Any], bindable: BindingCheck) -> dict[str, Any]:
    name, kind = b["name"], b["type"]
    if kind in ("plain_text", "secret_text") and not isinstance(b.get("text"), str):
        raise E.bad_binding(name, kind, "must have a string `text` specified")
    if kind == "json" and "json" not in b:
        raise E.bad_binding(name, kind, "must have a `json` value specified")
    if kind == "vectorize" and not (isinstance(b.get("index_name"), str) and b["index_name"]):
        raise E.bad_binding(name, kind, "must have a valid `index_name` specified")
    if kind == "assets":
        return b  # served by the runtime itself, from the version's assets
    problem = bindable(b)
    if problem is not None:
        raise E.bad_binding(name, kind, problem)
    return b
