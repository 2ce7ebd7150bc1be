"""The AI Gateway service: settings, state, the pipeline and its routes."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from cfai.catalog import Catalog
from cfai.local.services.ai_gateway._binding import binding_endpoints
from cfai.local.services.ai_gateway._rest import rest_endpoints
from cfai.local.services.ai_gateway._url import url_endpoints
from cfai.local.services.ai_gateway.gateway import GatewayPipeline
from cfai.local.services.ai_gateway.memory import RateLimiter, ResponseCache
from cfai.local.services.ai_gateway.state import GatewayStore
from cfai.local.services.base import EmulatorContext, Service, ServiceSettings
from cfai.local.services.frontdoor import Endpoint
from cfai.local.services.workers_ai import AiResult, WorkersAIService

__all__ = ["GatewayService", "GatewaySettings"]


class GatewaySettings(ServiceSettings):
    """``public_url``: where clients reach this emulator (what ``getUrl`` answers)."""

    public_url: str = "http://127.0.0.1"


class GatewayService(Service):
    """The AI Gateway service. State: ``<state_dir>/ai_gateway.sqlite3`` (gateways, logs);
    the cache and rate-limit counters live in memory."""

    name: ClassVar[str] = "ai_gateway"
    settings_model: ClassVar[type[ServiceSettings]] = GatewaySettings

    def __init__(self, ctx: EmulatorContext, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__(ctx)
        self.settings = GatewaySettings.model_validate(ctx.settings)
        self.store = GatewayStore(ctx.state_dir / "ai_gateway.sqlite3")
        self.cache = ResponseCache()
        self.limiter = RateLimiter()
        self.pipeline = GatewayPipeline(
            self.store,
            self.limiter,
            self.cache,
            self._run,
            api_token=ctx.api_token,
            clock=clock,
            quick=self._quick,
        )

    def _run(self, model: str, inputs: Mapping[str, Any]) -> AiResult:
        # Looked up per run: Workers AI is registered with the context after this service.
        return self.ctx.service(WorkersAIService).run(model, inputs)

    def _quick(self, model: str, inputs: Mapping[str, Any]) -> bool:
        return self.ctx.service(WorkersAIService).quick(model, inputs)

    def _catalog(self) -> Catalog:
        # The models Workers AI answers (the built-in catalog and the declared ones).
        return self.ctx.service(WorkersAIService).catalog

    def gateway_url(self, gateway_id: str, provider: str) -> str:
        """The URL clients call the gateway at, on this emulator (``getUrl``)."""
        root = f"{self.settings.public_url.rstrip('/')}/v1/{self.ctx.account_id}/{gateway_id}"
        return f"{root}/" if provider == "universal" else f"{root}/{provider}"

    def endpoints(self) -> list[Endpoint]:
        return [
            *rest_endpoints(self.pipeline, self.ctx.account_id, self.gateway_url),
            *url_endpoints(self.pipeline, self._run, self.ctx.account_id, self._catalog),
            *binding_endpoints(self.pipeline, self.gateway_url),
        ]

    def reset(self) -> None:
        self.store.reset()
        self.cache.clear()
        self.limiter.clear()

    def close(self) -> None:
        self.store.close()
