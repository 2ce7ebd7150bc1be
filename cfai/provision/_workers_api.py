"""Workers scripts calls of `CloudflareClient` (``client.workers``): uploads, versions,
deployments, settings, content and workers.dev, under ``/accounts/{account_id}/workers``.

The calls are the ones Cloudflare's own tools make, framed as they frame them:

- ``upload``: ``PUT /workers/scripts/{name}`` (multipart: a ``metadata`` field, then one
  part per module named after it, as wrangler's ``create-worker-upload-form.ts`` does),
  what pulumi-cloudflare's ``WorkersScript`` does: the new version serves at once;
- ``upload_version``: ``POST /workers/workers/{name}/versions`` (JSON, modules base64), what
  ``WorkerVersion`` does (terraform-provider-cloudflare ``worker_version``): it serves
  nothing until deployed;
- ``deploy``: ``POST /workers/scripts/{name}/deployments`` with a percentage split of one or
  two versions (``WorkersDeployment``; https://developers.cloudflare.com/workers/
  configuration/versions-and-deployments/gradual-deployments/);
- reads: the latest deployment, a version (``?include=modules`` as terraform's Read), the
  settings, the content (multipart, ``cf-entrypoint`` names the main module) and the
  workers.dev switch.

Example::

    upload = ScriptUpload("index.js", (ScriptModule("index.js", JS_MODULE, source),),
                          bindings=({"type": "ai", "name": "AI"},), compatibility_date="2025-01-01")
    cf.workers.upload("acme-chat", upload)
    new = cf.workers.upload_version("acme-chat", upload)["id"]
    cf.workers.deploy("acme-chat", {old: 90, new: 10})
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from cfai.errors import CloudflareApiError
from cfai.kinds.assets import AssetSet
from cfai.provision._api import Requester
from cfai.provision._assets_api import upload_assets

__all__ = [
    "JS_MODULE",
    "ScriptContent",
    "ScriptModule",
    "ScriptUpload",
    "WorkersScriptsApi",
    "modules_of",
    "same_version",
]

# The annotation naming what cfai uploaded (`cfai.provision.settings.script_upload`).
_MESSAGE = "workers/message"
#: The content type of an ES module part (wrangler's ``moduleTypeMimeType.esm``).
JS_MODULE = "application/javascript+module"


@dataclass(frozen=True)
class ScriptModule:
    """One module of an upload."""

    name: str
    content_type: str
    content: bytes = field(repr=False)


@dataclass(frozen=True)
class ScriptUpload:
    """A Worker version to upload: modules (the main one named), bindings as Cloudflare's
    metadata names them (``secret_text`` texts included: never repr'd or logged) and the
    compatibility settings."""

    main_module: str
    modules: tuple[ScriptModule, ...]
    bindings: tuple[Mapping[str, Any], ...] = field(default=(), repr=False)
    compatibility_date: str = "2021-11-03"
    compatibility_flags: tuple[str, ...] = ()
    annotations: Mapping[str, str] = field(default_factory=dict)
    #: ``{jwt, config}``: the completion token of an assets upload session and how they serve.
    assets: Mapping[str, Any] | None = field(default=None, repr=False)

    def metadata(self) -> dict[str, Any]:
        """The ``metadata`` of the upload (https://developers.cloudflare.com/workers/
        configuration/multipart-upload-metadata/)."""
        meta: dict[str, Any] = {
            "main_module": self.main_module,
            "bindings": [dict(b) for b in self.bindings],
            "compatibility_date": self.compatibility_date,
            "compatibility_flags": list(self.compatibility_flags),
        }
        if self.annotations:
            meta["annotations"] = dict(self.annotations)
        if self.assets is not None:
            meta["assets"] = dict(self.assets)
        return meta

    def form(self) -> tuple[bytes, str]:
        """The multipart body and its content type."""
        mark = f"cfai-{secrets.token_hex(16)}"
        parts: list[tuple[str, str | None, str, bytes]] = [
            ("metadata", None, "application/json", json.dumps(self.metadata()).encode())
        ]
        parts += [(m.name, m.name, m.content_type, m.content) for m in self.modules]
        out = bytearray()
        for name, filename, kind, data in parts:
            disposition = f'form-data; name="{_quoted(name)}"'
            if filename is not None:
                disposition += f'; filename="{_quoted(filename)}"'
            head = f"--{mark}\r\nContent-Disposition: {disposition}\r\nContent-Type: {kind}\r\n\r\n"
            out += head.encode() + data + b"\r\n"
        out += f"--{mark}--\r\n".encode()
        return bytes(out), f"multipart/form-data; boundary={mark}"

    def json_body(self) -> dict[str, Any]:
        """The ``workers/workers/{id}/versions`` body: the metadata with base64 modules."""
        return {
            **self.metadata(),
            "modules": [
                {
                    "name": m.name,
                    "content_type": m.content_type,
                    "content_base64": base64.b64encode(m.content).decode(),
                }
                for m in self.modules
            ],
        }


def _quoted(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


@dataclass(frozen=True)
class ScriptContent:
    """What a script runs: its modules by name and the main one (``cf-entrypoint``)."""

    entrypoint: str
    modules: Mapping[str, bytes] = field(repr=False)

    @property
    def main(self) -> bytes:
        return self.modules.get(self.entrypoint, b"")


def _parse_content(body: bytes, headers: Mapping[str, str]) -> ScriptContent:
    kind = headers.get("content-type", "")
    entry = headers.get("cf-entrypoint", "")
    if not kind.lower().startswith("multipart/"):
        return ScriptContent(entry or "script", {entry or "script": body})
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {kind}\r\n\r\n".encode() + body)
    modules: dict[str, bytes] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            modules[name] = payload
    return ScriptContent(entry or next(iter(modules), ""), modules)


class WorkersScriptsApi:
    """Worker scripts of one account."""

    def __init__(self, client: Requester) -> None:
        self._client = client

    def _script(self, name: str, *tail: str) -> str:
        return self._client.account_path("workers", "scripts", name, *tail)

    def _call(self, method: str, action: str, name: str, *tail: str, **kwargs: Any) -> Any:
        return self._client.request(
            method, self._script(name, *tail), action=action, resource=f"worker '{name}'", **kwargs
        )

    def upload(self, name: str, upload: ScriptUpload) -> dict[str, Any]:
        """Upload and deploy `upload` as Worker `name` (created if new); the script object."""
        body, kind = upload.form()
        result: dict[str, Any] = self._call(
            "PUT",
            "upload",
            name,
            content=body,
            headers={"content-type": kind},
            params={"bindings_inherit": "strict"},
        )
        return result

    def upload_assets(self, name: str, assets: AssetSet) -> str:
        """Upload the files of `assets` Cloudflare lacks; the completion token for `upload`
        (`cfai.provision._assets_api`)."""
        return upload_assets(self._client, name, assets)

    def upload_version(self, name: str, upload: ScriptUpload) -> dict[str, Any]:
        """A new version of existing Worker `name`, serving nothing until `deploy`."""
        result: dict[str, Any] = self._client.request(
            "POST",
            self._client.account_path("workers", "workers", name, "versions"),
            action="upload version of",
            resource=f"worker '{name}'",
            json=upload.json_body(),
        )
        return result

    def version(self, name: str, version_id: str, *, modules: bool = False) -> dict[str, Any]:
        """One version (``workers/workers`` form); `modules`: with their base64 content."""
        result: dict[str, Any] = self._client.request(
            "GET",
            self._client.account_path("workers", "workers", name, "versions", version_id),
            action="get version of",
            resource=f"worker '{name}'",
            params={"include": "modules"} if modules else None,
        )
        return result

    def deploy(
        self, name: str, weights: Mapping[str, float], *, message: str | None = None
    ) -> dict[str, Any]:
        """Send `name`'s traffic to the versions in `weights` (id -> percent, summing to 100)."""
        body: dict[str, Any] = {
            "strategy": "percentage",
            "versions": [{"version_id": v, "percentage": p} for v, p in weights.items()],
        }
        if message is not None:
            body["annotations"] = {"workers/message": message}
        result: dict[str, Any] = self._call("POST", "deploy", name, "deployments", json=body)
        return result

    def deployments(self, name: str) -> list[dict[str, Any]]:
        """Every deployment of `name`, newest first (the first is the live one)."""
        result = self._call("GET", "list deployments of", name, "deployments") or {}
        return list(result.get("deployments") or [])

    def current(self, name: str) -> dict[str, Any] | None:
        """The live version of `name` (``{version_id, percentage}``, the highest percentage
        of its latest deployment); None when the Worker or a deployment does not exist."""
        try:
            found = self.deployments(name)
        except CloudflareApiError as err:
            if err.not_found:
                return None
            raise
        versions = found[0].get("versions") if found else None
        if not versions:
            return None
        best: dict[str, Any] = max(versions, key=lambda v: float(v.get("percentage", 0)))
        return best

    def settings(self, name: str) -> dict[str, Any]:
        """Bindings (secret values left out) and settings of the serving version."""
        result: dict[str, Any] = self._call("GET", "get settings of", name, "settings")
        return result

    def content(self, name: str) -> ScriptContent:
        """The modules the Worker serves (``GET .../content/v2``)."""
        body, headers = self._client.request_bytes(
            "GET", self._script(name, "content", "v2"), action="read", resource=f"worker '{name}'"
        )
        return _parse_content(body, headers)

    def subdomain(self, name: str) -> dict[str, Any]:
        """``{enabled, previews_enabled}``: is `name` on workers.dev."""
        result: dict[str, Any] = self._call("GET", "get subdomain of", name, "subdomain")
        return result

    def set_subdomain(self, name: str, enabled: bool) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            "POST", "set subdomain of", name, "subdomain", json={"enabled": enabled}
        )
        return result

    def delete(self, name: str) -> None:
        self._call("DELETE", "delete", name, params={"force": "true"})

    def list(self) -> list[dict[str, Any]]:
        """Every script of the account."""
        result = self._client.request(
            "GET",
            self._client.account_path("workers", "scripts"),
            action="list",
            resource="workers scripts",
        )
        return list(result or [])


def modules_of(version: Mapping[str, Any]) -> dict[str, bytes]:
    """The modules of a version read with ``modules=True``, decoded."""
    return {
        str(m["name"]): base64.b64decode(str(m.get("content_base64", "")))
        for m in version.get("modules") or []
    }


def _shown(bindings: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    # As the API shows them: a secret's text is never read back.
    out = [
        {k: v for k, v in b.items() if not (b.get("type") == "secret_text" and k == "text")}
        for b in bindings
    ]
    return sorted(out, key=lambda b: str(b.get("name")))


def same_version(version: Mapping[str, Any], upload: ScriptUpload) -> bool:
    """Whether `version` (read with ``modules=True``) runs what `upload` would: the same
    modules, bindings (secrets by name: their values are write-only) and compatibility."""
    return (
        modules_of(version) == {m.name: m.content for m in upload.modules}
        and version.get("main_module") == upload.main_module
        and _shown(version.get("bindings") or []) == _shown(upload.bindings)
        and version.get("compatibility_date") == upload.compatibility_date
        and list(version.get("compatibility_flags") or []) == list(upload.compatibility_flags)
        # The API never shows an asset set: the version's message names the one uploaded.
        and (
            upload.assets is None
            or dict(version.get("annotations") or {}).get(_MESSAGE)
            == upload.annotations.get(_MESSAGE)
        )
    )
