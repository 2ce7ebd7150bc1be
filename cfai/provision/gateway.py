"""`Gateway`: one declared AI Gateway as a `pulumi_cloudflare.AiGateway`.

Every setting of `cfai.config.GatewayConfig` reaches Cloudflare through
`cfai.provision.settings.gateway_fields`, the mapping `cfai local up` gives the emulator,
so the cloud and local gateways behave alike. A setting left out of the declaration is sent
with Cloudflare's default for a new gateway (caching off, no rate limit, logs on), never
omitted, so the provider has nothing to fill in and nothing to report as drift.

Example::

    main = Gateway("main", GatewayArgs(account_id=account, gateway_id="acme-prod-main",
                                       gateway=platform.gateways["main"]))
    pulumi.export("gateway", main.gateway_id)
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_cloudflare as cloudflare

from cfai.config import models as config
from cfai.provision.rest import DEFAULT_BASE_URL
from cfai.provision.settings import gateway_fields

__all__ = ["Gateway", "GatewayArgs"]


@dataclass(frozen=True)
class GatewayArgs:
    """``gateway_id``: the physical id (`Platform.physical_name`); ``gateway``: its settings;
    ``base_url``: the Cloudflare API root its ``logs_url`` is under (None: Cloudflare's)."""

    account_id: pulumi.Input[str]
    gateway_id: str
    gateway: config.GatewayConfig
    base_url: str | None = None


class Gateway(pulumi.ComponentResource):
    """An AI Gateway with every declared setting (caching, rate limit, logs, authentication)."""

    gateway_id: pulumi.Output[str]
    logs_url: pulumi.Output[str]

    def __init__(
        self, name: str, args: GatewayArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cfai:index:Gateway", name, None, opts)
        fields = gateway_fields(args.gateway_id, args.gateway)
        self.resource = cloudflare.AiGateway(
            name,
            account_id=args.account_id,
            ai_gateway_id=fields.pop("id"),
            **fields,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.gateway_id = self.resource.ai_gateway_id
        self.logs_url = pulumi.Output.concat(
            args.base_url or DEFAULT_BASE_URL,
            "/accounts/",
            args.account_id,
            "/ai-gateway/gateways/",
            self.gateway_id,
            "/logs",
        )
        self.register_outputs({"gateway_id": self.gateway_id, "logs_url": self.logs_url})
