"""Typed declaration of an AI platform: gateways, indexes, workers and finetunes.

Every model is frozen and closed (`extra="forbid"`): a misspelt key is an error, not a
silently ignored setting. Defaults are Cloudflare's where Cloudflare has one. Field bounds
are the documented limits (https://developers.cloudflare.com/ai-gateway/,
https://developers.cloudflare.com/vectorize/platform/limits/); cross-resource rules live in
`cfai.config.checks`. Each Worker kind's model is its kind's (`cfai.kinds`).

Example::

    platform = PlatformConfig(
        account_id="0123456789abcdef0123456789abcdef",
        indexes={"docs": {"preset": "@cf/baai/bge-base-en-v1.5"}},
        workers={"kb": {"kind": "rag", "index": "docs"}},
    )
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import BaseModel, Field, field_validator, model_validator

from cfai.config.finetunes import FinetuneConfig, physical_finetune_name
from cfai.kinds import KINDS, ConfigModel, WorkerConfig
from cfai.kinds.base import DATE, NAME_PREFIX

__all__ = [
    "INDEX_PRESETS",
    "NAME_RULES",
    "AnyWorkerConfig",
    "GatewayConfig",
    "IndexConfig",
    "PlatformConfig",
    "RateLimitConfig",
    "plain",
]

# Vectorize presets fix dimensions and metric (Cloudflare's create-index `config.preset`).
INDEX_PRESETS: dict[str, tuple[int, str]] = {
    "@cf/baai/bge-small-en-v1.5": (384, "cosine"),
    "@cf/baai/bge-base-en-v1.5": (768, "cosine"),
    "@cf/baai/bge-large-en-v1.5": (1024, "cosine"),
    "openai/text-embedding-ada-002": (1536, "cosine"),
    "cohere/embed-multilingual-v2.0": (768, "cosine"),
}

Metric = Literal["cosine", "euclidean", "dot-product"]


class RateLimitConfig(ConfigModel):
    """AI Gateway rate limit: at most `limit` requests per `interval` seconds."""

    limit: int = Field(ge=1, description="requests allowed per interval")
    interval: int = Field(ge=1, le=86_400, description="window length in seconds")
    technique: Literal["fixed", "sliding"] = Field(
        "fixed", description="fixed: clock-aligned window; sliding: the last `interval` seconds"
    )


class GatewayConfig(ConfigModel):
    """An AI Gateway. Defaults are Cloudflare's for a new gateway."""

    cache_ttl: int | None = Field(
        None, ge=60, le=2_592_000, description="seconds responses stay cached; null = no caching"
    )
    cache_invalidate_on_update: bool = False
    collect_logs: bool = True
    rate_limit: RateLimitConfig | None = None
    authentication: bool = Field(False, description="require cf-aig-authorization on every call")
    log_management: int | None = Field(
        None, ge=10_000, le=10_000_000, description="maximum stored logs; null = plan limit"
    )
    log_management_strategy: Literal["STOP_INSERTING", "DELETE_OLDEST"] | None = None


class IndexConfig(ConfigModel):
    """A Vectorize index: a `preset` or both `dimensions` and `metric`."""

    preset: str | None = Field(None, description="embedding model preset fixing dimensions+metric")
    dimensions: int | None = Field(None, ge=32, le=1536, description="Vectorize allows 32..1536")
    metric: Metric | None = None
    description: str = Field("", max_length=255)
    metadata_indexes: dict[str, Literal["string", "number", "boolean"]] = Field(
        default_factory=dict, description="property -> type, at most 10; needed to filter"
    )

    @model_validator(mode="after")
    def _shape(self) -> IndexConfig:
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


# The discriminated union of every registered kind's declaration model. Type checkers see
# the common base: code that needs a kind's own fields asks the kind (`cfai.kinds`).
if TYPE_CHECKING:
    AnyWorkerConfig = WorkerConfig
else:
    AnyWorkerConfig = Annotated[
        Union[tuple(k.config for k in KINDS)],  # noqa: UP007 (a runtime-built union)
        Field(discriminator="kind"),
    ]


class PlatformConfig(ConfigModel):
    """The whole declaration: what `cfai:platform` holds in `Pulumi.<stack>.yaml`."""

    account_id: str = Field(description="Cloudflare account id: 32 lowercase hex digits")
    compatibility_date: str = Field("2025-09-01", pattern=DATE)
    compatibility_flags: tuple[str, ...] = ()
    name_prefix: str | None = Field(
        None, pattern=NAME_PREFIX, max_length=40, description="prefixes physical names"
    )
    gateways: dict[str, GatewayConfig] = Field(default_factory=dict)
    indexes: dict[str, IndexConfig] = Field(default_factory=dict)
    workers: dict[str, AnyWorkerConfig] = Field(default_factory=dict)
    finetunes: dict[str, FinetuneConfig] = Field(
        default_factory=dict, description="LoRA adapters uploaded as Workers AI finetunes"
    )

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

    def finetune_name(self, key: str, base_dir: Path) -> str:
        """The Cloudflare name of the finetune declared as `key`: its physical name plus a
        digest of what Cloudflare cannot change (`cfai.finetunes.naming`); reads its files
        under `base_dir`."""
        return physical_finetune_name(key, self.finetunes[key], self.physical_name(key), base_dir)

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
