"""Config -> Cloudflare API field mapping, shared by the Pulumi components (cloud) and
`cfai local up` (the emulator), so both targets get the same settings.

Example::

    gateway_fields("acme-main", Gateway(cache_ttl=3600))["cache_ttl"]  # 3600
    script_upload(rendered, auth_token).metadata()["bindings"]     # ai, vectorize, vars, secret
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cfai.config import GatewayConfig, IndexConfig
from cfai.provision._workers_api import JS_MODULE, ScriptModule, ScriptUpload
from cfai.render import Binding, RenderedWorker, version_digest

__all__ = [
    "BINDING_ORDER",
    "gateway_fields",
    "index_fields",
    "read_version_sha256",
    "script_upload",
    "uploaded_version_sha256",
]

#: The order bindings are uploaded in (by type, then name): stable, so diffs stay quiet.
BINDING_ORDER = {"ai": 0, "vectorize": 1, "plain_text": 2, "secret_text": 3, "assets": 4}
# A version's message (annotation ``workers/message``, at most 100 characters:
# https://developers.cloudflare.com/workers/configuration/versions-and-deployments/) names
# what cfai uploaded: `RenderedWorker.version_sha256`, code and settings, which a read-back
# of the module alone cannot tell (a settings-only change keeps the module).
_MESSAGE = "cfai version "


def gateway_fields(gateway_id: str, gw: GatewayConfig) -> dict[str, Any]:
    """The AI Gateway create/PUT body (Cloudflare's snake_case names) for `gw`."""
    rl = gw.rate_limit
    fields: dict[str, Any] = {
        "id": gateway_id,
        "cache_ttl": gw.cache_ttl if gw.cache_ttl is not None else 0,
        "cache_invalidate_on_update": gw.cache_invalidate_on_update,
        "collect_logs": gw.collect_logs,
        "rate_limiting_interval": rl.interval if rl else 0,
        "rate_limiting_limit": rl.limit if rl else 0,
        "rate_limiting_technique": rl.technique if rl else "fixed",
        "authentication": gw.authentication,
    }
    if gw.log_management is not None:
        fields["log_management"] = gw.log_management
    if gw.log_management_strategy is not None:
        fields["log_management_strategy"] = gw.log_management_strategy
    return fields


def index_fields(index_name: str, index: IndexConfig) -> dict[str, Any]:
    """The Vectorize index settings (name, dimensions, metric, description, metadata indexes)."""
    return {
        "name": index_name,
        "dimensions": index.resolved_dimensions,
        "metric": index.resolved_metric,
        "description": index.description,
        "metadata_indexes": dict(index.metadata_indexes),
    }


def script_upload(
    rendered: RenderedWorker, auth_token: str | None, *, assets_jwt: str | None = None
) -> ScriptUpload:
    """The upload of a rendered Worker: its module, its bindings (the ``secret_text`` ones
    carry `auth_token`) and compatibility settings; a Worker with static assets names the
    completion token of their upload session (`assets_jwt`); their digest is part of the
    version's message (`RenderedWorker.version_sha256`), so an unchanged set is recognised."""
    assets = None
    if rendered.assets is not None:
        if assets_jwt is None:
            raise ValueError(f"worker {rendered.script_name!r}: its assets are not uploaded")
        assets = {"jwt": assets_jwt, "config": rendered.assets.settings.config()}
    bindings = []
    for b in sorted(rendered.bindings, key=lambda b: (BINDING_ORDER.get(b.type, 9), b.name)):
        entry: dict[str, Any] = dict(b.as_dict())
        if b.type == "secret_text":
            if auth_token is None:
                raise ValueError(f"worker {rendered.script_name!r}: no secret for {b.name}")
            entry["text"] = auth_token
        bindings.append(entry)
    return ScriptUpload(
        main_module=rendered.main_module,
        modules=(ScriptModule(rendered.main_module, JS_MODULE, rendered.source.encode()),),
        bindings=tuple(bindings),
        compatibility_date=rendered.compatibility_date,
        compatibility_flags=tuple(rendered.compatibility_flags),
        annotations={"workers/message": _MESSAGE + rendered.version_sha256},
        assets=assets,
    )


def read_version_sha256(version: Mapping[str, Any], sha256: str) -> str:
    """The `RenderedWorker.version_sha256` of a version read back with its settings
    (``GET .../versions/<id>``: bindings, compatibility) whose main module has template hash
    `sha256`: cfai's own annotation when cfai uploaded it, else computed from what the read
    shows (a secret's value is never shown: secrets count by name, as in the render)."""
    uploaded = uploaded_version_sha256(version)
    if uploaded:
        return uploaded
    bindings = []
    for b in version.get("bindings") or []:
        kind = str(b.get("type"))
        text = b.get("text") if kind == "plain_text" else None
        index = b.get("index_name") if kind == "vectorize" else None
        bindings.append(Binding(kind, str(b.get("name")), index_name=index, text=text))  # type: ignore[arg-type]
    return version_digest(
        sha256,
        str(version.get("compatibility_date") or ""),
        [str(f) for f in version.get("compatibility_flags") or []],
        bindings,
    )


def uploaded_version_sha256(version: Mapping[str, Any]) -> str:
    """The `RenderedWorker.version_sha256` a version read back was uploaded as by
    `script_upload` ("" for a version uploaded otherwise)."""
    annotations = version.get("annotations")
    message = annotations.get("workers/message") if isinstance(annotations, Mapping) else None
    if isinstance(message, str) and message.startswith(_MESSAGE):
        return message.removeprefix(_MESSAGE)
    return ""
