"""The outputs map: where a deployed platform answers, the one contract between its writers
(`cfai local up`, the Pulumi program's stack outputs, `cfai deploy`, `cfai drift`) and its
readers (the contract suite, deploy, drift, `cfai local status`).

``.cfai/<stack>/outputs.json`` and ``pulumi stack output --json --show-secrets`` hold this
shape. Its JSON Schema is published as ``docs/outputs.schema.json`` for tools outside cfai
(a test keeps it current). Writers build an `Outputs`; readers call `Outputs.read` or
`Outputs.parse`; nobody assembles the dict by hand.

Keys only extend: a reader ignores keys it does not know, and a map written by an older
cfai (no ``target``, ``"target": "cloud"``, Workers without ``url`` or ``script_name``)
still reads. Regenerate the published schema with
``python -m cfai.outputs > docs/outputs.schema.json``.

Example::

    outputs = Outputs.read(Path(".cfai/local/outputs.json"))
    outputs.workers["assistant"].url          # "http://127.0.0.1:8787"
    outputs.target is TargetKind.LOCAL
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationError,
    field_validator,
    model_validator,
)

from cfai._files import write_private_json
from cfai.errors import OutputsError

__all__ = [
    "ApiOutput",
    "GatewayOutput",
    "IndexOutput",
    "Outputs",
    "TargetKind",
    "WorkerOutput",
    "outputs_json_schema",
]


class TargetKind(StrEnum):
    """Where the platform runs."""

    LOCAL = "local"
    CLOUDFLARE = "cloudflare"


class _Wire(BaseModel):
    # Readers ignore keys they do not know: a newer cfai may add keys (extend only).
    model_config = ConfigDict(frozen=True, extra="ignore")


class WorkerOutput(_Wire):
    """One deployed Worker: where it answers and what it was declared to be."""

    kind: str = Field(description="the Worker kind (chat, rag, image, speech, custom, ...)")
    url: str = Field(description="base URL the Worker answers on, without a trailing slash")
    script_name: str = Field(description="the Worker's script name on Cloudflare")
    auth: bool = Field(True, description="routes other than /health need the bearer token")
    models: tuple[str, ...] = Field((), description="Workers AI models the Worker calls")
    gateway: str | None = Field(None, description="AI Gateway id the Worker's model calls use")
    template_sha256: str | None = Field(
        None, description="hash of the rendered module the Worker reports on /health"
    )
    contract: tuple[str, ...] = Field(
        (), description="extra pytest files (project-relative) run by `cfai test`"
    )
    # Written only when set (deploy's narrowed maps; a declaration's JSON mode), so the
    # maps of `cfai local up` and the Pulumi program keep their keys.
    request_headers: dict[str, str] = Field(
        default_factory=dict,
        exclude_if=lambda value: not value,
        description="headers sent with every request to the Worker (e.g. a version override)",
    )
    playground: bool = Field(
        False,
        exclude_if=lambda value: not value,
        description="GET / serves a page to try the Worker (from its static assets)",
    )
    response_schema: dict[str, JsonValue] | None = Field(
        None,
        exclude_if=lambda value: value is None,
        description="JSON Schema a chat Worker's answers follow (JSON mode)",
    )
    max_text_chars: int | None = Field(
        None,
        exclude_if=lambda value: value is None,
        description="the longest text a speech Worker speaks (its MAX_TEXT_CHARS setting)",
    )

    @field_validator("url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")


class GatewayOutput(_Wire):
    """One AI Gateway."""

    id: str = Field(description="the gateway id on Cloudflare")
    logs_url: str | None = Field(None, description="REST URL of the gateway's logs")


class IndexOutput(_Wire):
    """One Vectorize index."""

    name: str = Field(description="the Vectorize index name on Cloudflare")
    dimensions: int
    metric: str


class ApiOutput(_Wire):
    """The Cloudflare REST API of the target (the emulator's for a local platform)."""

    base_url: str = Field(description="API base URL including /client/v4")
    account_id: str
    token: str = Field(repr=False, description="API token (secret)")

    def account_url(self, path: str = "") -> str:
        """``<base_url>/accounts/<account_id><path>``."""
        return f"{self.base_url.rstrip('/')}/accounts/{self.account_id}{path}"

    def gateway_url(self, gateway_id: str) -> str:
        """``.../ai-gateway/gateways/<gateway_id>``."""
        return self.account_url(f"/ai-gateway/gateways/{gateway_id}")

    def gateway_log_url(self, gateway_id: str, log_id: str) -> str:
        """One log of a gateway."""
        return f"{self.gateway_url(gateway_id)}/logs/{log_id}"


class Outputs(_Wire):
    """The whole outputs map."""

    target: TargetKind = Field(
        TargetKind.CLOUDFLARE, description="absent in maps of early writers: a Cloudflare stack"
    )
    stack: str = ""
    endpoints: dict[str, str] = Field(
        default_factory=dict, description="Worker key -> URL (the same as workers.*.url)"
    )
    workers: dict[str, WorkerOutput] = Field(default_factory=dict)
    gateways: dict[str, GatewayOutput] = Field(default_factory=dict)
    indexes: dict[str, IndexOutput] = Field(default_factory=dict)
    auth_token: str | None = Field(None, repr=False, description="Workers' bearer token (secret)")
    api: ApiOutput | None = Field(None, description="REST API of the target, when known")

    @field_validator("target", mode="before")
    @classmethod
    def _legacy_target(cls, value: Any) -> Any:
        # Early writers said "cloud" for a Cloudflare stack.
        return TargetKind.CLOUDFLARE.value if value == "cloud" else value

    @model_validator(mode="before")
    @classmethod
    def _fill_in(cls, data: Any) -> Any:
        """Early maps: a Worker's URL only in `endpoints`, its script name its key; and
        `endpoints` follows from the Workers when a writer leaves it out."""
        if not isinstance(data, dict) or not isinstance(data.get("workers"), dict):
            return data
        endpoints = data.get("endpoints")
        workers = {}
        for key, entry in data["workers"].items():
            if isinstance(entry, dict):
                entry = {"script_name": key, **entry}
                if "url" not in entry and isinstance(endpoints, dict) and key in endpoints:
                    entry["url"] = endpoints[key]
            workers[key] = entry
        data = {**data, "workers": workers}
        if endpoints is None:
            urls = {
                k: w.url if isinstance(w, WorkerOutput) else w.get("url")
                for k, w in workers.items()
                if isinstance(w, WorkerOutput | dict)
            }
            data["endpoints"] = {k: str(u).rstrip("/") for k, u in urls.items() if u}
        return data

    @property
    def local(self) -> bool:
        return self.target is TargetKind.LOCAL

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in a response or a log."""
        found = [self.auth_token, self.api.token if self.api else None]
        return tuple(s for s in found if s and len(s) >= 8)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON data, every key written (readers need not know defaults) but a
        Worker's `request_headers` and `response_schema` when unset."""
        return self.model_dump(mode="json")

    def redacted(self, placeholder: str) -> Outputs:
        """This map with `auth_token` and `api.token` replaced by `placeholder` (for a terminal)."""
        api = self.api.model_copy(update={"token": placeholder}) if self.api else None
        token = placeholder if self.auth_token is not None else None
        return self.model_copy(update={"auth_token": token, "api": api})

    def narrowed(self, key: str, **changes: Any) -> Outputs:
        """This map with only Worker `key`, its entry updated with `changes`."""
        worker = self.workers[key].model_copy(update=changes)
        return self.model_copy(
            update={"workers": {key: worker}, "endpoints": {key: worker.url}},
        )

    @classmethod
    def parse(cls, data: Any, source: str = "outputs map") -> Outputs:
        """Validate `data`; `OutputsError` names each missing or mistyped field."""
        try:
            return cls.model_validate(data)
        except ValidationError as err:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in err.errors()
            )
            raise OutputsError(f"{source} is not a cfai outputs map: {problems}") from None

    @classmethod
    def read(cls, path: Path) -> Outputs:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise OutputsError(f"outputs map {path} does not exist") from None
        except (OSError, ValueError) as err:
            raise OutputsError(f"outputs map {path} is not readable JSON: {err}") from None
        return cls.parse(data, source=str(path))

    def write(self, path: Path) -> None:
        """Write with mode 600 (the map holds tokens)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        write_private_json(path, self.to_json(), indent=2)


def outputs_json_schema() -> dict[str, Any]:
    """The JSON Schema of `Outputs` as published in ``docs/outputs.schema.json``."""
    schema = Outputs.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "cfai outputs map"
    return schema


if __name__ == "__main__":
    print(json.dumps(outputs_json_schema(), indent=2, sort_keys=True))
