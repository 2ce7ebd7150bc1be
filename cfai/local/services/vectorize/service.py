"""The Vectorize service: settings, store, routes and the workerd fragments of a binding.

A ``vectorize`` binding becomes workerd's ``cloudflare-internal:vectorize-api`` module whose
``fetcher`` is an external service per (Worker, index); its binding token names that index,
so the emulator acts on the index the platform's config bound, whatever the Worker sends.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from pydantic import Field

from cfai.local.services.base import (
    EmulatorContext,
    Service,
    ServiceSettings,
    WorkerdBinding,
    WorkerdService,
)
from cfai.local.services.frontdoor import BindingScope, Endpoint
from cfai.local.services.vectorize.routes import endpoints
from cfai.local.services.vectorize.state import VectorizeStore

__all__ = ["VectorizeService", "VectorizeSettings"]

BINDING_MODULE = "cloudflare-internal:vectorize-api"


class VectorizeSettings(ServiceSettings):
    """``vectorize_visibility_delay``: seconds a write takes to become visible to reads
    (Vectorize applies writes asynchronously; 0 makes them visible at once)."""

    vectorize_visibility_delay: float = Field(0.0, ge=0)


def _service_name(worker: str, index: str) -> str:
    return f"vectorize:{worker}:{index}"


class VectorizeService(Service):
    """Vectorize indexes for the local platform; `store` is the Python-level API."""

    name: ClassVar[str] = "vectorize"
    binding_types: ClassVar[tuple[str, ...]] = ("vectorize",)
    settings_model: ClassVar[type[ServiceSettings]] = VectorizeSettings

    def __init__(self, ctx: EmulatorContext) -> None:
        super().__init__(ctx)
        self.settings = VectorizeSettings.model_validate(ctx.settings)
        self.store = VectorizeStore(
            ctx.state_dir / "vectorize.sqlite3",
            visibility_delay=self.settings.vectorize_visibility_delay,
        )
        # Stored indexes load into memory while the emulator starts serving (a restart's
        # first query then waits for less, or nothing).
        self.store.preload()

    def endpoints(self) -> list[Endpoint]:
        return endpoints(self.store)

    @classmethod
    def workerd_services(
        cls, worker: str, bindings: Sequence[Mapping[str, Any]]
    ) -> list[WorkerdService]:
        indexes = dict.fromkeys(
            str(b["index_name"]) for b in bindings if b.get("type") in cls.binding_types
        )
        return [
            WorkerdService(
                name=_service_name(worker, index),
                scope=BindingScope("vectorize", worker, index),
            )
            for index in indexes
        ]

    @classmethod
    def workerd_binding(cls, worker: str, binding: Mapping[str, Any]) -> WorkerdBinding:
        if binding.get("type") not in cls.binding_types:
            return super().workerd_binding(worker, binding)
        index = str(binding["index_name"])
        return WorkerdBinding(
            name=str(binding["name"]),
            module=BINDING_MODULE,
            inner=[
                ("fetcher", "service", _service_name(worker, index)),
                ("indexId", "text", index),
                ("indexVersion", "text", "v2"),
                ("useNdJson", "json", "true"),
            ],
        )

    def reset(self) -> None:
        self.store.reset()

    def close(self) -> None:
        self.store.close()
