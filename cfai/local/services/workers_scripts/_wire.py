"""The Workers scripts API's answers, shaped as Cloudflare's clients read them.

Fields and their readers: the Python SDK 5.9.0 models (``types/workers/script.py``,
``script_update_response.py``, ``scripts/version_*_response.py``, ``scripts/deployment.py``,
``types/workers/beta/workers/version.py``), wrangler 4.86 (``deployment_id`` of an upload is
the version it deployed, printed as "Current Version ID"; ``metadata.has_preview`` of a
version upload, which the SDK calls ``hasPreview``: both are sent;
``resources.script.etag`` of a version upload) and terraform-provider-cloudflare's
``workers_script`` / ``worker_version`` Read. Secret texts never leave: a ``secret_text``
binding is answered as ``{name, type}``.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

from cfai.local.services.workers_scripts._model import Deployment, Module, Script, Version

__all__ = [
    "deployment",
    "public_bindings",
    "script_object",
    "script_settings",
    "service_object",
    "settings_object",
    "subdomain_object",
    "version_object",
    "version_summary",
    "worker_version",
]

# The only event the local platform delivers to a Worker.
HANDLERS = ["fetch"]


def public_bindings(bindings: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Bindings as the API shows them: secret values left out."""
    return [
        {k: v for k, v in b.items() if not (b.get("type") == "secret_text" and k == "text")}
        for b in bindings
    ]


def script_object(
    script: Script, version: Version | None, *, startup_ms: int | None = None
) -> dict[str, Any]:
    """A script as an upload, ``GET /workers/scripts`` and ``content`` answer it."""
    meta = version.metadata if version else {}
    out: dict[str, Any] = {
        "id": script.name,
        "tag": script.tag,
        "etag": version.etag if version else None,
        "handlers": HANDLERS,
        "named_handlers": [],
        "compatibility_date": meta.get("compatibility_date"),
        "compatibility_flags": list(meta.get("compatibility_flags") or []),
        "created_on": script.created_on,
        "modified_on": script.modified_on,
        "has_assets": bool(meta.get("assets")),
        "has_modules": bool(meta.get("main_module") or meta.get("body_part")),
        "last_deployed_from": version.source if version else "api",
        "entry_point": meta.get("main_module") or meta.get("body_part"),
        "placement": meta.get("placement") or {},
        "usage_model": meta.get("usage_model") or "standard",
        **_settings(script),
    }
    if version is not None:
        out["startup_time_ms"] = version.startup_time_ms if startup_ms is None else startup_ms
        out["deployment_id"] = version.id
    return out


def service_object(script: Script, version: Version | None) -> dict[str, Any]:
    """``GET /workers/services/{name}``: the script as its production environment."""
    inner = script_object(script, version)
    inner.pop("deployment_id", None)
    inner.pop("startup_time_ms", None)
    env = {
        "environment": "production",
        "created_on": script.created_on,
        "modified_on": script.modified_on,
    }
    return {
        "id": script.name,
        "default_environment": {**env, "script": inner},
        "environments": [env],
        "created_on": script.created_on,
        "modified_on": script.modified_on,
    }


def _settings(script: Script) -> dict[str, Any]:
    s = script.settings
    return {
        "logpush": bool(s.get("logpush", False)),
        "observability": s.get("observability") or {"enabled": False},
        "tags": list(s.get("tags") or []),
        "tail_consumers": list(s.get("tail_consumers") or []),
    }


def settings_object(script: Script, version: Version | None) -> dict[str, Any]:
    """``GET|PATCH /settings``: the serving version's bindings and runtime settings with
    the script's own."""
    meta = version.metadata if version else {}
    return {
        "bindings": public_bindings(version.bindings if version else []),
        "compatibility_date": meta.get("compatibility_date"),
        "compatibility_flags": list(meta.get("compatibility_flags") or []),
        "limits": meta.get("limits") or {},
        "placement": meta.get("placement") or {},
        "usage_model": meta.get("usage_model") or "standard",
        "annotations": dict(version.annotations) if version else {},
        **_settings(script),
    }


def script_settings(script: Script) -> dict[str, Any]:
    """``GET|PATCH /script-settings``: only what is not versioned."""
    return _settings(script)


def subdomain_object(script: Script) -> dict[str, Any]:
    return {"enabled": script.subdomain_enabled, "previews_enabled": script.previews_enabled}


def _metadata(version: Version) -> dict[str, Any]:
    return {
        "author_email": version.author_email,
        "author_id": "local",
        "created_on": version.created_on,
        "modified_on": version.created_on,
        "source": version.source,
        "has_preview": False,
        "hasPreview": False,
    }


def version_summary(version: Version) -> dict[str, Any]:
    """One item of ``GET /versions``."""
    return {
        "id": version.id,
        "number": version.number,
        "metadata": _metadata(version),
        "annotations": dict(version.annotations),
    }


def version_object(version: Version, *, with_startup: bool = False) -> dict[str, Any]:
    """A version as ``GET /versions/{id}`` (and, `with_startup`, an upload) answers it."""
    meta = version.metadata
    out = {
        **version_summary(version),
        "resources": {
            "script": {
                "etag": version.etag,
                "handlers": HANDLERS,
                "named_handlers": [],
                "last_deployed_from": version.source,
            },
            "script_runtime": {
                "compatibility_date": meta.get("compatibility_date"),
                "compatibility_flags": list(meta.get("compatibility_flags") or []),
                "usage_model": meta.get("usage_model") or "standard",
                "limits": meta.get("limits") or {},
            },
            "bindings": public_bindings(version.bindings),
        },
    }
    if with_startup:
        out["startup_time_ms"] = version.startup_time_ms
    return out


def worker_version(version: Version, modules: Sequence[Module] | None) -> dict[str, Any]:
    """A version of the ``workers/workers`` API; `modules` given: with their content."""
    meta = version.metadata
    out: dict[str, Any] = {
        "id": version.id,
        "number": version.number,
        "created_on": version.created_on,
        "source": version.source,
        "author_email": version.author_email,
        "annotations": dict(version.annotations),
        "bindings": public_bindings(version.bindings),
        "compatibility_date": meta.get("compatibility_date"),
        "compatibility_flags": list(meta.get("compatibility_flags") or []),
        "main_module": meta.get("main_module"),
        "startup_time_ms": version.startup_time_ms,
        "usage_model": meta.get("usage_model") or "standard",
        "limits": meta.get("limits") or {},
        "urls": [],
    }
    if modules is not None:
        out["modules"] = [
            {
                "name": m.name,
                "content_type": m.content_type,
                "content_base64": base64.b64encode(m.content).decode(),
            }
            for m in modules
        ]
    return out


def deployment(d: Deployment) -> dict[str, Any]:
    return {
        "id": d.id,
        "created_on": d.created_on,
        "source": d.source,
        "strategy": "percentage",
        "author_email": d.author_email,
        "annotations": dict(d.annotations),
        "versions": [{"version_id": v, "percentage": p} for v, p in d.versions],
    }
