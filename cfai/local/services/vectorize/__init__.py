"""The emulated Vectorize service: binding wire for workerd, v2 REST API, SQLite store.

Example::

    ctx = EmulatorContext(state_dir=Path(".cfai/local"), account_id="0" * 32, api_token="t")
    vectorize = Vectorize(ctx)
    vectorize.store.create_index("docs", dimensions=384, metric="cosine")
    rest = vectorize.routes()  # /client/v4/accounts/{account_id}/vectorize/v2/...
    wire = vectorize.binding_routes()  # {"vector-search": [...]} for workerd's binding

Settings read from ``ctx.settings``: ``vectorize_visibility_delay`` (seconds a write takes
to become visible to reads; default 0).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from cfai.local.services.base import (
    INDEX_HEADER,
    EmulatorContext,
    Service,
    WorkerdBinding,
    WorkerdService,
)
from cfai.local.services.vectorize.app import BINDING_HOST, binding_routes, rest_routes
from cfai.local.services.vectorize.state import VectorizeStore

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

__all__ = ["Vectorize", "VectorizeStore"]

BINDING_MODULE = "cloudflare-internal:vectorize-api"


def _service_name(index: str) -> str:
    return f"vectorize-{index}"


class Vectorize(Service):
    """Vectorize indexes for the local platform; `store` is the Python-level API."""

    name: ClassVar[str] = "vectorize"
    binding_types: ClassVar[tuple[str, ...]] = ("vectorize",)

    def __init__(self, ctx: EmulatorContext) -> None:
        super().__init__(ctx)
        self.store = VectorizeStore(
            ctx.state_dir / "vectorize.sqlite3",
            visibility_delay=float(ctx.settings.get("vectorize_visibility_delay", 0.0)),
        )

    def routes(self) -> list[BaseRoute]:
        return rest_routes(self.ctx, self.store)

    def binding_routes(self) -> dict[str, list[BaseRoute]]:
        return {BINDING_HOST: binding_routes(self.store)}

    def workerd_services(
        self, worker: str, bindings: Sequence[Mapping[str, Any]]
    ) -> list[WorkerdService]:
        indexes = dict.fromkeys(
            str(b["index_name"]) for b in bindings if b.get("type") in self.binding_types
        )
        return [
            WorkerdService(name=_service_name(index), inject_headers={INDEX_HEADER: index})
            for index in indexes
        ]

    def workerd_binding(self, worker: str, binding: Mapping[str, Any]) -> WorkerdBinding:
        if binding.get("type") not in self.binding_types:
            return super().workerd_binding(worker, binding)
        index = str(binding["index_name"])
        return WorkerdBinding(
            name=str(binding["name"]),
            module=BINDING_MODULE,
            inner=[
                ("fetcher", "service", _service_name(index)),
                ("indexId", "text", index),
                ("indexVersion", "text", "v2"),
                ("useNdJson", "json", "true"),
            ],
        )

    def reset(self) -> None:
        self.store.reset()

    def close(self) -> None:
        self.store.close()
