"""Typed declaration of an AI platform: gateways, indexes and workers.

Every model is frozen and closed (`extra="forbid"`): a misspelt key is an error, not a
silently ignored setting. Defaults are Cloudflare's where Cloudflare has one. Field bounds
are the documented limits (``shared/reference/cloudflare-ai-facts.md``); cross-resource
rules live in `cfai.config.checks`.

Example::

    platform = Platform(
        account_id="0123456789abcdef0123456789abcdef",
        indexes={"docs": {"preset": "@cf/baai/bge-base-en-v1.5"}},
        workers={"kb": {"kind": "rag", "index": "docs"}},
    )
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator, model_validator

__all__ = [
    "INDEX_PRESETS",
    "ChatWorker",
    "CustomBindings",
    "CustomWorker",
    "Gateway",
    "GatewayRef",
    "ImageWorker",
    "Index",
    "Platform",
    "RagWorker",
    "RateLimit",
    "VectorizeRef",
    "Worker",
    "WorkerKind",
]

# Vectorize presets fix dimensions and metric (Cloudflare's create-index `config.preset`).
INDEX_PRESETS: dict[str, tuple[int, str]] = {
    "@cf/baai/bge-small-en-v1.5": (384, "cosine"),
    "@cf/baai/bge-base-en-v1.5": (768, "cosine"),
    "@cf/baai/bge-large-en-v1.5": (1024, "cosine"),
    "openai/text-embedding-ada-002": (1536, "cosine"),
    "cohere/embed-multilingual-v2.0": (768, "cosine"),
}

_BINDING_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
_DATE = r"^\d{4}-\d{2}-\d{2}$"
WorkerKind = Literal["chat", "rag", "image", "custom"]
Metric = Literal["cosine", "euclidean", "dot-product"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class RateLimit(_Model):
    """AI Gateway rate limit: at most `limit` requests per `interval` seconds."""

    limit: int = Field(ge=1, description="requests allowed per interval")
    interval: int = Field(ge=1, le=86_400, description="window length in seconds")
    technique: Literal["fixed", "sliding"] = Field(
        "fixed", description="fixed: clock-aligned window; sliding: the last `interval` seconds"
    )


class Gateway(_Model):
    """An AI Gateway. Defaults are Cloudflare's for a new gateway."""

    cache_ttl: int | None = Field(
        None, ge=60, le=2_592_000, description="seconds responses stay cached; null = no caching"
    )
    cache_invalidate_on_update: bool = False
    collect_logs: bool = True
    rate_limit: RateLimit | None = None
    authentication: bool = Field(False, description="require cf-aig-authorization on every call")
    log_management: int | None = Field(
        None, ge=10_000, le=10_000_000, description="maximum stored logs; null = plan limit"
    )
    log_management_strategy: Literal["STOP_INSERTING", "DELETE_OLDEST"] | None = None


class Index(_Model):
    """A Vectorize index: a `preset` or both `dimensions` and `metric`."""

    preset: str | None = Field(None, description="embedding model preset fixing dimensions+metric")
    dimensions: int | None = Field(None, ge=32, le=1536, description="Vectorize allows 32..1536")
    metric: Metric | None = None
    description: str = Field("", max_length=255)
    metadata_indexes: dict[str, Literal["string", "number", "boolean"]] = Field(
        default_factory=dict, description="property -> type, at most 10; needed to filter"
    )

    @model_validator(mode="after")
    def _shape(self) -> Index:
        if self.preset is not None:
            if self.preset not in INDEX_PRESETS:
                known = ", ".join(sorted(INDEX_PRESETS))
                raise ValueError(f"unknown preset {self.preset!r} (known: {known})")
            if self.dimensions is not None or self.metric is not None:
                raise ValueError("give either preset or dimensions+metric, not both")
        elif self.dimensions is None or self.metric is None:
            raise ValueError("give preset, or both dimensions and metric")
        if len(self.metadata_indexes) > 10:
            raise ValueError(f"at most 10 metadata_indexes (got {len(self.metadata_indexes)})")
        return self

    @property
    def resolved_dimensions(self) -> int:
        return INDEX_PRESETS[self.preset][0] if self.preset else int(self.dimensions or 0)

    @property
    def resolved_metric(self) -> str:
        return INDEX_PRESETS[self.preset][1] if self.preset else str(self.metric)


class _Worker(_Model):
    auth: bool = Field(True, description="require Authorization: Bearer <AUTH_TOKEN> (not /health)")
    compatibility_date: str | None = Field(
        None, pattern=_DATE, description="overrides the platform's"
    )
    compatibility_flags: tuple[str, ...] | None = None
    max_request_bytes: int = Field(1_048_576, ge=1024, le=100 * 1_048_576)
    contract: tuple[str, ...] = Field((), description="extra pytest files run by `cfai test`")


class ChatWorker(_Worker):
    """A chat Worker: `/chat`, OpenAI-compatible `/v1/chat/completions`, `/feedback`."""

    kind: Literal["chat"] = "chat"
    model: str = "@cf/meta/llama-3.1-8b-instruct"
    gateway: str | None = None
    system_prompt: str = Field("", max_length=131_072)
    max_tokens: int = Field(256, ge=1, le=131_072)
    temperature: float = Field(0.6, ge=0, le=5)
    response_schema: dict[str, JsonValue] | None = Field(
        None, description="JSON Schema: answers become objects valid against it (JSON mode)"
    )
    stream: bool = Field(False, description="stream when the request does not say")


class RagWorker(_Worker):
    """A retrieval Worker: `/documents` ingest and delete, `/query` answer with sources."""

    kind: Literal["rag"] = "rag"
    embedding_model: str = "@cf/baai/bge-base-en-v1.5"
    index: str
    model: str = "@cf/meta/llama-3.1-8b-instruct"
    gateway: str | None = None
    system_prompt: str = Field(
        "Answer the question using only the context. Say so when the context does not contain the answer.",
        max_length=131_072,
    )
    top_k: int = Field(3, ge=1, description="matches fed to the model; at most 50")
    chunk_size: int = Field(800, ge=64, le=8000, description="characters per chunk")
    chunk_overlap: int = Field(100, ge=0, description="characters shared by neighbouring chunks")
    pooling: Literal["mean", "cls"] = "mean"
    max_tokens: int = Field(256, ge=1, le=131_072)
    temperature: float = Field(0.6, ge=0, le=5)

    @model_validator(mode="after")
    def _overlap(self) -> RagWorker:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError(
                f"chunk_overlap ({self.chunk_overlap}) must be smaller than chunk_size ({self.chunk_size})"
            )
        return self


class ImageWorker(_Worker):
    """An image Worker: `POST /image` answers the image bytes."""

    kind: Literal["image"] = "image"
    model: str = "@cf/black-forest-labs/flux-1-schnell"
    steps: int | None = Field(None, ge=1, le=50, description="default steps; null = the model's")
    max_width: int | None = Field(None, ge=64, le=2500, description="null = the model's maximum")
    max_height: int | None = Field(None, ge=64, le=2500, description="null = the model's maximum")


class VectorizeRef(_Model):
    binding: str = Field("VECTORIZE", pattern=_BINDING_NAME)
    index: str


class GatewayRef(_Model):
    binding: str = Field("GATEWAY_ID", pattern=_BINDING_NAME, description="plain-text var name")
    gateway: str


class CustomBindings(_Model):
    """What a custom Worker's code expects, under the binding names the code uses."""

    ai: str | None = Field(None, pattern=_BINDING_NAME)
    vectorize: VectorizeRef | None = None
    gateway: GatewayRef | None = None
    vars: dict[str, str] = Field(default_factory=dict)
    auth_token: str | None = Field(None, pattern=_BINDING_NAME, description="secret binding name")


class CustomWorker(_Worker):
    """The user's own ES module, taken byte-for-byte; cfai provisions, runs and checks it."""

    kind: Literal["custom"] = "custom"
    main: str = Field(description="path of the ES module, relative to the project root")
    bindings: CustomBindings = Field(default_factory=CustomBindings)
    auth: bool = Field(False, description="the code checks auth itself via bindings.auth_token")


Worker = Annotated[ChatWorker | RagWorker | ImageWorker | CustomWorker, Field(discriminator="kind")]


class Platform(_Model):
    """The whole declaration: what `cfai:platform` holds in `Pulumi.<stack>.yaml`."""

    account_id: str = Field(description="Cloudflare account id: 32 lowercase hex digits")
    compatibility_date: str = Field("2025-09-01", pattern=_DATE)
    compatibility_flags: tuple[str, ...] = ()
    name_prefix: str | None = Field(
        None, pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=40, description="prefixes physical names"
    )
    gateways: dict[str, Gateway] = Field(default_factory=dict)
    indexes: dict[str, Index] = Field(default_factory=dict)
    workers: dict[str, Worker] = Field(default_factory=dict)

    @field_validator("account_id", "compatibility_date", mode="before")
    @classmethod
    def _quoted(cls, value: Any) -> Any:
        # YAML reads 0123... as a number and 2025-09-01 as a date; say how to fix it.
        if not isinstance(value, str):
            raise ValueError(
                f"must be a quoted string in YAML (got {type(value).__name__} {value!r})"
            )
        return value

    @field_validator("account_id")
    @classmethod
    def _account(cls, value: str) -> str:
        if not re.fullmatch(r"[0-9a-f]{32}", value):
            raise ValueError(
                "must be the 32 lowercase hex digits of a Cloudflare account id (dashboard URL)"
            )
        return value

    def physical_name(self, key: str) -> str:
        """The Cloudflare name of a gateway, index or worker declared as `key`."""
        return f"{self.name_prefix}-{key}" if self.name_prefix else key

    def worker_compat(self, key: str) -> tuple[str, tuple[str, ...]]:
        """Compatibility date and flags a worker runs with (its override or the platform's)."""
        w = self.workers[key]
        date = w.compatibility_date or self.compatibility_date
        flags = (
            w.compatibility_flags if w.compatibility_flags is not None else self.compatibility_flags
        )
        return date, tuple(flags)


def plain(value: Any) -> Any:
    """JSON-compatible form of a config value (for outputs and round trips)."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_defaults=True)
    return value


NAME_RULES: dict[str, tuple[re.Pattern[str], int, str]] = {
    # kind: (pattern, max length, human rule)
    "worker": (re.compile(r"^[a-z0-9][a-z0-9_-]*$"), 63, "lowercase letters, digits, '-' and '_'"),
    "index": (
        re.compile(r"^[a-z][a-z0-9-]*$"),
        64,
        "lowercase letters, digits and '-', starting with a letter",
    ),
    "gateway": (re.compile(r"^[a-z0-9][a-z0-9_-]*$"), 64, "lowercase letters, digits, '-' and '_'"),
}
