"""The outputs map as the contract suite reads it: Workers, gateways, the REST API, secrets.

The map is what `cfai local up` writes to ``.cfai/<stack>/outputs.json`` and what
``pulumi stack output --json --show-secrets`` prints for a cloud stack; both have one shape.
What the map does not carry (a chat Worker's response schema, a Worker's contract files) is
read from the declaration, ``Pulumi.<stack>.yaml`` in the project, when it exists.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cfai.errors import OutputsError as OutputsError  # re-exported (cfai.contract)

#: Worker kinds whose code comes from a cfai template (and so has the common HTTP contract).
TEMPLATE_KINDS = ("chat", "rag", "image")


@dataclass(frozen=True)
class WorkerTarget:
    """One deployed Worker: where it answers and what it was declared to be."""

    name: str
    kind: str
    url: str
    script_name: str
    auth: bool
    models: tuple[str, ...] = ()
    gateway: str | None = None
    template_sha256: str | None = None
    response_schema: Mapping[str, Any] | None = None
    contract: tuple[str, ...] = ()
    #: Sent with every request to this Worker, e.g. Cloudflare's version override header
    #: that `cfai deploy` uses to run the suite against a new version only.
    request_headers: Mapping[str, str] = field(default_factory=dict, hash=False)

    @property
    def id(self) -> str:
        """The test id of checks on this Worker: ``chat[assistant]``."""
        return f"{self.kind}[{self.name}]"


@dataclass(frozen=True)
class GatewayTarget:
    key: str
    id: str


@dataclass(frozen=True)
class Api:
    """The Cloudflare REST API of the target (the emulator's for a local platform)."""

    base_url: str
    account_id: str
    token: str

    def gateway_log_url(self, gateway_id: str, log_id: str) -> str:
        return (
            f"{self.base_url.rstrip('/')}/accounts/{self.account_id}"
            f"/ai-gateway/gateways/{gateway_id}/logs/{log_id}"
        )

    def gateway_url(self, gateway_id: str) -> str:
        return f"{self.base_url.rstrip('/')}/accounts/{self.account_id}/ai-gateway/gateways/{gateway_id}"


@dataclass(frozen=True)
class Target:
    """Everything the checks know about the platform under test."""

    stack: str
    local: bool
    workers: Mapping[str, WorkerTarget]
    gateways: Mapping[str, GatewayTarget]
    auth_token: str | None
    api: Api | None
    raw: Mapping[str, Any] = field(repr=False, default_factory=dict)

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in a response."""
        found = [self.auth_token, self.api.token if self.api else None]
        return tuple(s for s in found if s and len(s) >= 8)

    def by_kind(self, *kinds: str) -> list[WorkerTarget]:
        return [w for _, w in sorted(self.workers.items()) if w.kind in kinds]

    def gateway_by_id(self, gateway_id: str) -> GatewayTarget | None:
        return next((g for g in self.gateways.values() if g.id == gateway_id), None)


def read_outputs(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise OutputsError(f"outputs map {path} does not exist") from None
    except (OSError, ValueError) as err:
        raise OutputsError(f"outputs map {path} is not readable JSON: {err}") from None
    if not isinstance(data, dict):
        raise OutputsError(f"outputs map {path} must be a JSON object")
    return data


def _declared(stack: str, project: Path | None) -> Mapping[str, Any]:
    """The declared workers of `stack` (as plain data), or {} when not in this project."""
    if project is None or not (project / f"Pulumi.{stack}.yaml").is_file():
        return {}
    from cfai.config import load_stack

    return load_stack(stack, project).model_dump(mode="json")["workers"]  # type: ignore[no-any-return]


def parse_target(outputs: Mapping[str, Any], project: Path | None = None) -> Target:
    """Read an outputs map into a `Target`; raises `OutputsError` naming a missing field."""
    try:
        stack = str(outputs.get("stack", ""))
        declared = _declared(stack, project) if stack else {}
        workers = {}
        for name, w in dict(outputs["workers"]).items():
            spec = declared.get(name, {})
            schema = w.get("response_schema", spec.get("response_schema"))
            workers[name] = WorkerTarget(
                name=name,
                kind=str(w["kind"]),
                url=str(w.get("url") or outputs["endpoints"][name]).rstrip("/"),
                script_name=str(w.get("script_name", name)),
                auth=bool(w.get("auth", True)),
                models=tuple(w.get("models") or ()),
                gateway=w.get("gateway"),
                template_sha256=w.get("template_sha256"),
                response_schema=schema,
                contract=tuple(w.get("contract") or spec.get("contract") or ()),
                request_headers={
                    str(k): str(v) for k, v in dict(w.get("request_headers") or {}).items()
                },
            )
        gateways = {
            key: GatewayTarget(key=key, id=str(g["id"]))
            for key, g in dict(outputs.get("gateways") or {}).items()
        }
        api_raw = outputs.get("api")
        api = (
            Api(str(api_raw["base_url"]), str(api_raw["account_id"]), str(api_raw["token"]))
            if api_raw
            else None
        )
    except (KeyError, TypeError, AttributeError) as err:
        raise OutputsError(f"outputs map lacks or mistypes field {err}") from None
    return Target(
        stack=stack,
        local=outputs.get("target") == "local",
        workers=workers,
        gateways=gateways,
        auth_token=outputs.get("auth_token"),
        api=api,
        raw=outputs,
    )
