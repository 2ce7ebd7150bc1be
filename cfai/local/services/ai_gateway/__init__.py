"""The emulated AI Gateway: gateways, per-gateway cache, rate limits, logs, authentication.

It wraps the emulated Workers AI (``ctx.service(WorkersAIService)``): a Worker's
``env.AI.run(model, inputs, {gateway: {id, ...}})`` arrives here (binding host
``workers-binding.ai``, path ``/ai-gateway/run``), and so do requests to the gateway URL
form ``/v1/{account}/{gateway}/workers-ai/{model}``. Gateways and logs are managed over REST
under ``/client/v4/accounts/{account}/ai-gateway/gateways``. It backs no binding type of its
own (the ``ai`` binding belongs to Workers AI).

Example::

    ctx = EmulatorContext(state_dir=Path(".cfai/local"), account_id="0" * 32, api_token="t")
    gateway = GatewayService(ctx)                # clock=... to drive TTLs in tests
    ctx.register(gateway, WorkersAIService(ctx))
    routes = gateway.endpoints()                 # REST, URL form and binding, for the front door
"""

from __future__ import annotations

from cfai.local.services.ai_gateway.gateway import GatewayAnswer, GatewayPipeline
from cfai.local.services.ai_gateway.options import RunOptions
from cfai.local.services.ai_gateway.service import GatewayService, GatewaySettings

__all__ = ["GatewayAnswer", "GatewayPipeline", "GatewayService", "GatewaySettings", "RunOptions"]
