"""The emulated AI Gateway: gateways, per-gateway cache, rate limits, logs, authentication.

It wraps the emulated Workers AI (`ctx.services["workers_ai"]`): a Worker's
``env.AI.run(model, inputs, {gateway: {id, ...}})`` arrives here (binding host
``workers-binding.ai``, path ``/ai-gateway/run``), and so do requests to the gateway URL
form ``/v1/{account}/{gateway}/workers-ai/{model}``. Gateways and logs are managed over REST
under ``/client/v4/accounts/{account}/ai-gateway/gateways``. It backs no binding type of its
own (the ``ai`` binding belongs to Workers AI).

Example::

    ctx = EmulatorContext(state_dir=Path(".cfai/local"), account_id="0" * 32, api_token="t")
    gateway = AiGateway(ctx)                     # clock=... to drive TTLs in tests
    ctx.services.update({"ai_gateway": gateway, "workers_ai": WorkersAI(ctx)})
    routes = gateway.routes()                    # REST + URL form
    binding = gateway.binding_routes()           # {"workers-binding.ai": [...]}
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from cfai.local.services.ai_gateway._binding import binding_routes
from cfai.local.services.ai_gateway._rest import rest_routes
from cfai.local.services.ai_gateway._url import url_routes
from cfai.local.services.ai_gateway.gateway import Gateway, GatewayAnswer, ModelRunner
from cfai.local.services.ai_gateway.memory import RateLimiter, ResponseCache
from cfai.local.services.ai_gateway.options import RunOptions
from cfai.local.services.ai_gateway.state import GatewayStore
from cfai.local.services.base import EmulatorContext, Service

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

__all__ = ["AiGateway", "Gateway", "GatewayAnswer", "RunOptions"]

BINDING_HOST = "workers-binding.ai"


class AiGateway(Service):
    """The AI Gateway service. State: ``<state_dir>/ai_gateway.sqlite3`` (gateways, logs);
    the cache and rate-limit counters live in memory."""

    name = "ai_gateway"

    def __init__(self, ctx: EmulatorContext, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__(ctx)
        self.store = GatewayStore(ctx.state_dir / "ai_gateway.sqlite3")
        self.cache = ResponseCache()
        self.limiter = RateLimiter()
        self.gateway = Gateway(
            self.store,
            self.limiter,
            self.cache,
            self._workers_ai,
            api_token=ctx.api_token,
            clock=clock,
        )

    def _workers_ai(self) -> ModelRunner:
        return cast(ModelRunner, self.ctx.services["workers_ai"])

    def gateway_url(self, gateway_id: str, provider: str) -> str:
        """The URL clients call the gateway at, on this emulator (``getUrl``)."""
        base = str(self.ctx.settings.get("public_url", "http://127.0.0.1")).rstrip("/")
        root = f"{base}/v1/{self.ctx.account_id}/{gateway_id}"
        return f"{root}/" if provider == "universal" else f"{root}/{provider}"

    def forget(self, gateway_id: str) -> None:
        """Drop a gateway's volatile state (cache, counters)."""
        self.cache.drop_gateway(gateway_id)
        self.limiter.drop_gateway(gateway_id)

    def routes(self) -> list[BaseRoute]:
        return [*rest_routes(self), *url_routes(self)]

    def binding_routes(self) -> dict[str, list[BaseRoute]]:
        return {BINDING_HOST: list(binding_routes(self))}

    def reset(self) -> None:
        self.store.reset()
        self.cache.clear()
        self.limiter.clear()

    def close(self) -> None:
        self.store.close()
