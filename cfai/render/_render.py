"""Config -> rendered Worker modules: the one place templates meet config values.

Pure: reads only the templates and custom Workers' module files. Deterministic: the same
platform renders to the same bytes. Every config value reaches JavaScript through the
`tojs` filter; `{{ }}` with anything else is refused (see `_finalize`).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import jinja2

import cfai
from cfai.config.models import ChatWorker, CustomWorker, ImageWorker, Platform, RagWorker
from cfai.errors import ConfigError, Problem, RenderError
from cfai.catalog import CATALOG, ModelSpec

__all__ = [
    "Binding",
    "RenderedWorker",
    "module_sha256",
    "render_platform",
    "render_worker",
    "tojs",
]

ZERO_SHA256 = "0" * 64
_MARKER = re.compile(r'const TEMPLATE_SHA256 = "([0-9a-f]{64})";')
# Vectorize ids are at most 64 bytes; chunk ids are "<document id>#<n>" with n < this.
MAX_CHUNKS_PER_DOCUMENT = 100  # one deleteByIds call (Vectorize takes at most 100 ids)


@dataclass(frozen=True)
class Binding:
    """One Worker binding as Cloudflare's upload metadata (and the emulator) names it."""

    type: Literal["ai", "vectorize", "plain_text", "secret_text"]
    name: str
    index_name: str | None = None  # vectorize: the physical index name
    text: str | None = None  # plain_text value; secrets are supplied at deploy/run time

    def as_dict(self) -> dict[str, str]:
        """`{"type", "name"}` plus `index_name`/`text` when set.

        >>> Binding("vectorize", "VECTORIZE", index_name="docs").as_dict()
        {'type': 'vectorize', 'name': 'VECTORIZE', 'index_name': 'docs'}
        """
        out = {"type": self.type, "name": self.name}
        if self.index_name is not None:
            out["index_name"] = self.index_name
        if self.text is not None:
            out["text"] = self.text
        return out


@dataclass(frozen=True)
class RenderedWorker:
    """A Worker ready to deploy: its main module, bindings and the hash `/health` reports."""

    key: str
    script_name: str
    kind: str
    source: str
    sha256: str
    compatibility_date: str
    compatibility_flags: tuple[str, ...]
    bindings: tuple[Binding, ...]
    models: tuple[str, ...]
    gateway: str | None
    auth: bool
    main_module: str = "index.js"
    account_id: str = ""


class JsLiteral(str):
    """Text produced by `tojs`: the only kind of value a template may print."""


def tojs(value: Any) -> JsLiteral:
    """A JSON literal safe anywhere in a JS module (and inside an HTML script element).

    >>> print(tojs("</script>\\u2028"))
    "\\u003c/script>\\u2028"
    """
    try:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise RenderError(f"value cannot be written as JavaScript: {err}") from None
    # U+2028/2029 are line terminators in JS source (pre-ES2019) and in comments; `<` covers
    # `</script>` and `<!--`.
    return JsLiteral(
        text.replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    )


def _finalize(value: Any) -> Any:
    if isinstance(value, JsLiteral):
        return value
    raise RenderError(
        f"template printed a raw value {value!r}; every value must pass through `| tojs`"
    )


def _templates_dir() -> Path:
    packaged = Path(cfai.__file__).parent / "_templates"
    if packaged.is_dir():
        return packaged
    return Path(cfai.__file__).resolve().parent.parent / "templates"


_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(_templates_dir()),
    undefined=jinja2.StrictUndefined,
    autoescape=False,
    keep_trailing_newline=True,
    finalize=_finalize,
)
_ENV.filters["tojs"] = tojs


def module_sha256(source: str) -> str:
    """The template hash of a rendered module: sha256 of the source with its
    `TEMPLATE_SHA256` value zeroed. A module without that marker (a custom Worker) hashes
    as its plain bytes.

    >>> module_sha256("export default {};") == hashlib.sha256(b"export default {};").hexdigest()
    True
    """
    zeroed = _MARKER.sub(f'const TEMPLATE_SHA256 = "{ZERO_SHA256}";', source)
    return hashlib.sha256(zeroed.encode("utf-8")).hexdigest()


def render_platform(platform: Platform, *, base_dir: Path) -> list[RenderedWorker]:
    """Render every Worker of `platform`, sorted by key. `base_dir` anchors custom modules.

    Example::

        workers = render_platform(load_stack("local"), base_dir=Path("."))
        write_rendered(workers, Path("workers"))
    """
    return [render_worker(platform, key, base_dir=base_dir) for key in sorted(platform.workers)]


def render_worker(platform: Platform, key: str, *, base_dir: Path) -> RenderedWorker:
    """Render the Worker declared as `key`."""
    worker = platform.workers[key]
    date, flags = platform.worker_compat(key)
    common: dict[str, Any] = {
        "key": key,
        "script_name": platform.physical_name(key),
        "kind": worker.kind,
        "compatibility_date": date,
        "compatibility_flags": flags,
        "auth": worker.auth,
        "account_id": platform.account_id,
    }
    if isinstance(worker, CustomWorker):
        source = _read_custom(key, worker, base_dir)
        return RenderedWorker(
            **common,
            source=source,
            sha256=module_sha256(source),
            bindings=_custom_bindings(platform, worker),
            models=(),
            gateway=(
                platform.physical_name(worker.bindings.gateway.gateway)
                if worker.bindings.gateway
                else None
            ),
        )
    context: dict[str, Any] = {
        "key": key,
        "kind": worker.kind,
        "auth": worker.auth,
        "max_request_bytes": worker.max_request_bytes,
        "template_sha256": ZERO_SHA256,
    }
    bindings = [Binding("ai", "AI"), Binding("plain_text", "MODEL", text=worker.model)]
    models: tuple[str, ...] = (worker.model,)
    gateway = None
    if isinstance(worker, ChatWorker | RagWorker):
        if worker.gateway:
            gateway = platform.physical_name(worker.gateway)
            bindings.append(Binding("plain_text", "GATEWAY_ID", text=gateway))
        context.update(
            system_prompt=worker.system_prompt,
            max_tokens=worker.max_tokens,
            temperature=worker.temperature,
        )
    if isinstance(worker, ChatWorker):
        context.update(response_schema=worker.response_schema, stream=worker.stream)
    elif isinstance(worker, RagWorker):
        embedder = _spec(worker.embedding_model, key)
        bindings.append(Binding("plain_text", "EMBEDDING_MODEL", text=worker.embedding_model))
        bindings.append(
            Binding("vectorize", "VECTORIZE", index_name=platform.physical_name(worker.index))
        )
        models = (worker.model, worker.embedding_model)
        context.update(
            top_k=worker.top_k,
            chunk_size=worker.chunk_size,
            chunk_overlap=worker.chunk_overlap,
            pooling=worker.pooling,
            embed_batch=min(embedder.max_batch or 100, 100),
            max_chunks=MAX_CHUNKS_PER_DOCUMENT,
        )
    elif isinstance(worker, ImageWorker):
        context.update(image=_image_limits(worker, key))
    if worker.auth:
        bindings.append(Binding("secret_text", "AUTH_TOKEN"))
    source = _render_template(f"workers/{worker.kind}.js.j2", context)
    digest = module_sha256(source)
    source = source.replace(
        f'const TEMPLATE_SHA256 = "{ZERO_SHA256}";', f'const TEMPLATE_SHA256 = "{digest}";'
    )
    return RenderedWorker(
        **common,
        source=source,
        sha256=digest,
        bindings=tuple(sorted(bindings, key=lambda b: b.name)),
        models=models,
        gateway=gateway,
    )


def _render_template(name: str, context: dict[str, Any]) -> str:
    try:
        source = _ENV.get_template(name).render(context)
    except RenderError:
        raise
    except jinja2.TemplateError as err:
        where = (
            f" ({err.filename}:{err.lineno})" if isinstance(err, jinja2.TemplateSyntaxError) else ""
        )
        raise RenderError(f"template {name} failed to render{where}: {err}") from None
    markers = _MARKER.findall(source)
    if len(markers) != 1 or markers[0] != ZERO_SHA256:
        raise RenderError(f"template {name} must define TEMPLATE_SHA256 exactly once")
    return source


def _spec(model: str, key: str) -> ModelSpec:
    spec = CATALOG.get(model)
    if spec is None:
        raise RenderError(f"workers.{key}: model {model!r} is not in the catalog (validate first)")
    return spec


def _image_limits(worker: ImageWorker, key: str) -> dict[str, Any]:
    spec = _spec(worker.model, key)
    lim = spec.image
    if lim is None:
        raise RenderError(f"workers.{key}: model {worker.model!r} has no image limits")
    if lim.sizable:
        max_w = min(worker.max_width or lim.max_size, lim.max_size)
        max_h = min(worker.max_height or lim.max_size, lim.max_size)
        min_w, min_h = min(lim.min_size, max_w), min(lim.min_size, max_h)
    else:
        max_w = min_w = lim.default_width
        max_h = min_h = lim.default_height
    return {
        "content_type": spec.content_type,
        "default_height": min(lim.default_height, max_h),
        "default_steps": min(worker.steps or lim.default_steps, lim.max_steps),
        "default_width": min(lim.default_width, max_w),
        "max_height": max_h,
        "max_steps": lim.max_steps,
        "max_width": max_w,
        "min_height": min_h,
        "min_width": min_w,
        "sizable": lim.sizable,
        "steps_field": lim.steps_field,
    }


def _read_custom(key: str, worker: CustomWorker, base_dir: Path) -> str:
    path = base_dir / worker.main
    try:
        # Bytes, not read_text: no newline translation, so the hash is of the user's bytes.
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        problem = f"file {worker.main!r} not found in {base_dir}"
    except UnicodeDecodeError as err:
        problem = f"{worker.main!r} is not UTF-8 text ({err.reason} at byte {err.start})"
    raise ConfigError([Problem(f"workers.{key}.main", problem)])


def _custom_bindings(platform: Platform, worker: CustomWorker) -> tuple[Binding, ...]:
    b = worker.bindings
    out: list[Binding] = []
    if b.ai:
        out.append(Binding("ai", b.ai))
    if b.vectorize:
        index = platform.physical_name(b.vectorize.index)
        out.append(Binding("vectorize", b.vectorize.binding, index_name=index))
    if b.gateway:
        gateway = platform.physical_name(b.gateway.gateway)
        out.append(Binding("plain_text", b.gateway.binding, text=gateway))
    out.extend(Binding("plain_text", name, text=value) for name, value in b.vars.items())
    if b.auth_token:
        out.append(Binding("secret_text", b.auth_token))
    return tuple(sorted(out, key=lambda x: x.name))
