"""Config -> rendered Worker modules: the one place templates meet config values.

Pure: reads only the templates and custom Workers' module files. Deterministic: the same
platform renders to the same bytes. What a Worker's template gets, and its bindings, come
from its kind (`cfai.kinds`); the common part (key, kind, auth, request limit, hash) is
added here.

A kind's `settings` (max_tokens, system_prompt, ...) become plain-text vars, so one
Worker's module is the same in every stack and ``workers/<key>/`` holds it once. What stays
in the code is what the template hash must prove: the kind, auth and the request size
limit, and a setting too large for a var (Cloudflare's limit is 5 KB), built in instead.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cfai.config import PlatformConfig
from cfai.errors import RenderError
from cfai.kinds import Binding, Readiness, RenderContext, WorkerConfig, kind_for
from cfai.kinds.assets import AssetSet, packaged
from cfai.outputs import WorkerOutput
from cfai.render._templates import Templates

__all__ = [
    "VAR_MAX_BYTES",
    "RenderedWorker",
    "module_sha256",
    "render_platform",
    "render_worker",
    "setting_text",
]

ZERO_SHA256 = "0" * 64
# Cloudflare's request body limit for Workers on the Free and Pro plans
# (https://developers.cloudflare.com/workers/platform/limits/#request-limits).
PLATFORM_MAX_REQUEST_BYTES = 100 * 1024 * 1024
#: Cloudflare limits a Worker's environment variable to 5 KB
#: (https://developers.cloudflare.com/workers/platform/limits/), read as 5,000 bytes.
VAR_MAX_BYTES = 5000
_MARKER = re.compile(r'const TEMPLATE_SHA256 = "([0-9a-f]{64})";')


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
    # The largest request body the Worker takes; the local router refuses bigger ones with
    # the Worker's own 413 while they stream in.
    max_request_bytes: int = PLATFORM_MAX_REQUEST_BYTES
    # Static files served before the Worker (and through its assets binding, if any).
    assets: AssetSet | None = None
    #: What the module is made from besides its template, as (name, JSON) pairs: the kind,
    #: auth, the request limit, the kind's template context and any built-in setting. Two
    #: stacks whose modules of one Worker differ are told apart by it.
    code: tuple[tuple[str, str], ...] = ()
    #: When the started Worker counts as ready (`cfai local up` and deploys wait for it).
    ready: Readiness = field(default_factory=Readiness)

    @property
    def version_sha256(self) -> str:
        """What tells one deployable version of this Worker from another: the template hash
        with the compatibility settings and every binding (vars' values included; secrets
        by name). Two stacks' versions share `sha256`, not this; a settings-only change
        keeps `sha256` and changes this."""
        return version_digest(
            self.sha256,
            self.compatibility_date,
            self.compatibility_flags,
            self.bindings,
            assets=self.assets.digest if self.assets is not None else None,
        )

    def output(
        self,
        *,
        url: str,
        contract: Sequence[str] = (),
        script_name: str | None = None,
        fields: Mapping[str, Any] | None = None,
    ) -> WorkerOutput:
        """This Worker's entry in an outputs map, answering on `url` (every writer builds
        it so), with the `fields` its kind adds (`Kind.output_fields`)."""
        return WorkerOutput(
            **(fields or {}),
            kind=self.kind,
            url=url,
            script_name=script_name or self.script_name,
            auth=self.auth,
            models=tuple(self.models),
            gateway=self.gateway,
            template_sha256=self.sha256,
            contract=tuple(contract),
            playground=self.assets is not None and self.assets.packaged,
        )


def setting_text(value: Any) -> str:
    """A setting as the text of its plain-text var: strings as they are, booleans as
    ``true``/``false``, anything else as JSON (what the templates' ``setting*`` readers parse).

    >>> [setting_text(v) for v in ("be brief", 256, 0.5, True, {"type": "object"})]
    ['be brief', '256', '0.5', 'true', '{"type": "object"}']
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise RenderError(f"setting value {value!r} cannot be a var: {err}") from None


def version_digest(
    sha256: str,
    compatibility_date: str,
    compatibility_flags: Sequence[str],
    bindings: Sequence[Binding],
    *,
    assets: str | None = None,
) -> str:
    """`RenderedWorker.version_sha256` of a version with these parts (secret bindings by
    name: give them without text; `assets`: the digest of its static assets, if any), so a
    version read back from Cloudflare compares too."""
    release = {
        "sha256": sha256,
        "compatibility_date": compatibility_date,
        "compatibility_flags": list(compatibility_flags),
        "bindings": [b.as_dict() for b in sorted(bindings, key=lambda b: b.name)],
    }
    if assets is not None:
        # Every file and how they serve: an edited page is a new version.
        release["assets"] = assets
    text = json.dumps(release, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def module_sha256(source: str) -> str:
    """The template hash of a rendered module: sha256 of the source with its
    `TEMPLATE_SHA256` value zeroed. A module without that marker (a custom Worker) hashes
    as its plain bytes.

    >>> module_sha256("export default {};") == hashlib.sha256(b"export default {};").hexdigest()
    True
    """
    zeroed = _MARKER.sub(f'const TEMPLATE_SHA256 = "{ZERO_SHA256}";', source)
    return hashlib.sha256(zeroed.encode("utf-8")).hexdigest()


def render_platform(
    platform: PlatformConfig, *, base_dir: Path, templates: Templates | None = None
) -> list[RenderedWorker]:
    """Render every Worker of `platform`, sorted by key. `base_dir` anchors custom modules;
    `templates` defaults to cfai's own.

    Example::

        workers = render_platform(load_stack("local"), base_dir=Path("."))
        write_rendered(workers, Path("workers"))
    """
    templates = templates or Templates.packaged()
    return [
        render_worker(platform, key, base_dir=base_dir, templates=templates)
        for key in sorted(platform.workers)
    ]


def render_worker(
    platform: PlatformConfig, key: str, *, base_dir: Path, templates: Templates | None = None
) -> RenderedWorker:
    """Render the Worker declared as `key`."""
    worker = platform.workers[key]
    kind = kind_for(worker.kind)
    date, flags = platform.worker_compat(key)
    ctx = RenderContext(
        platform.physical_name,
        base_dir,
        finetune_name=lambda name: platform.finetune_name(name, base_dir),
    )
    part = kind.render(key, worker, ctx)
    bindings = list(part.bindings)
    code: dict[str, Any] = {"kind": worker.kind, **part.context}
    if kind.template is None:
        source = part.source
        if source is None:
            raise RenderError(f"workers.{key}: kind {kind.name} gave neither template nor module")
        digest = module_sha256(source)
    else:
        settings = {name: setting_text(value) for name, value in part.settings.items()}
        built_in = {n: t for n, t in settings.items() if len(t.encode()) > VAR_MAX_BYTES}
        bindings += [
            Binding("plain_text", n, text=t) for n, t in settings.items() if n not in built_in
        ]
        code |= {"auth": worker.auth, "max_request_bytes": worker.max_request_bytes, **built_in}
        context: dict[str, Any] = {
            **part.context,
            "key": key,
            "kind": worker.kind,
            "auth": worker.auth,
            "max_request_bytes": worker.max_request_bytes,
            "built_in_settings": built_in,
            "template_sha256": ZERO_SHA256,
        }
        if worker.auth:
            bindings.append(Binding("secret_text", "AUTH_TOKEN"))
        source = _render_template(templates or Templates.packaged(), kind.template, context)
        digest = module_sha256(source)
        source = source.replace(
            f'const TEMPLATE_SHA256 = "{ZERO_SHA256}";', f'const TEMPLATE_SHA256 = "{digest}";'
        )
    names = [b.name for b in bindings]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise RenderError(f"workers.{key}: binding name(s) used twice: {', '.join(twice)}")
    return RenderedWorker(
        key=key,
        script_name=platform.physical_name(key),
        kind=worker.kind,
        source=source,
        sha256=digest,
        compatibility_date=date,
        compatibility_flags=flags,
        bindings=tuple(sorted(bindings, key=lambda b: b.name)),
        models=part.models,
        gateway=part.gateway,
        auth=worker.auth,
        account_id=platform.account_id,
        max_request_bytes=_request_limit(worker, templated=kind.template is not None),
        assets=_playground(kind.name, templates) if worker.playground else part.assets,
        code=tuple((name, setting_text(code[name])) for name in sorted(code)),
        ready=kind.readiness_of(worker),
    )


def _playground(kind: str, templates: Templates | None) -> AssetSet:
    """The playground page of a `kind` Worker: ``playground/_shared`` and
    ``playground/<kind>`` of the templates (cfai's own when these lack them)."""
    root = (templates or Templates.packaged()).root / "playground"
    if not (root / kind).is_dir():
        root = Templates.packaged().root / "playground"
    return packaged(f"playground/{kind}", [root / "_shared", root / kind])


def _request_limit(worker: WorkerConfig, *, templated: bool) -> int:
    # A rendered Worker enforces its max_request_bytes; a custom one is held to it only when
    # it declares one, else to Cloudflare's own limit.
    if templated or "max_request_bytes" in worker.model_fields_set:
        return worker.max_request_bytes
    return PLATFORM_MAX_REQUEST_BYTES


def _render_template(templates: Templates, name: str, context: dict[str, Any]) -> str:
    source = templates.render(name, context)
    markers = _MARKER.findall(source)
    if len(markers) != 1 or markers[0] != ZERO_SHA256:
        raise RenderError(f"template {name} must define TEMPLATE_SHA256 exactly once")
    return source
