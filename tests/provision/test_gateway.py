"""The `Gateway` component under pulumi mocks: every configured setting reaches AiGateway."""

from __future__ import annotations

from typing import Any

import pulumi
import pytest
from support.pulumi_mocks import Mocks, use_mocks

from cfai.config import GatewayConfig
from cfai.provision import gateway as gateway_module
from cfai.provision.gateway import Gateway, GatewayArgs

ACCOUNT = "0123456789abcdef0123456789abcdef"
AI_GATEWAY = "cloudflare:index/aiGateway:AiGateway"


@pytest.fixture
def mocks() -> Mocks:
    return use_mocks()


def _declare(mocks: Mocks, gw: GatewayConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """Declare a Gateway; return the AiGateway's registered inputs and the component's outputs."""
    seen: dict[str, Any] = {}

    @pulumi.runtime.test
    def program() -> Any:
        component = Gateway("main", GatewayArgs(ACCOUNT, "cfai-staging-main", gw))

        async def collect() -> None:
            seen["gateway_id"] = await component.gateway_id.future()
            seen["logs_url"] = await component.logs_url.future()
            seen["urn"] = await component.resource.urn.future()

        return collect()

    program()
    (registered,) = [r for r in mocks.registered if r.typ == AI_GATEWAY]
    assert [r.typ for r in mocks.registered if r is not registered] == ["cfai:index:Gateway"]
    return registered.inputs, seen


def test_gateway_maps_every_setting(mocks: Mocks) -> None:
    inputs, seen = _declare(
        mocks,
        GatewayConfig(
            cache_ttl=3600,
            cache_invalidate_on_update=True,
            collect_logs=False,
            rate_limit={"limit": 100, "interval": 60, "technique": "sliding"},
            authentication=True,
            log_management=100_000,
            log_management_strategy="DELETE_OLDEST",
        ),
    )
    assert inputs == {
        "accountId": ACCOUNT,
        "aiGatewayId": "cfai-staging-main",
        "cacheTtl": 3600,
        "cacheInvalidateOnUpdate": True,
        "collectLogs": False,
        "rateLimitingInterval": 60,
        "rateLimitingLimit": 100,
        "rateLimitingTechnique": "sliding",
        "authentication": True,
        "logManagement": 100_000,
        "logManagementStrategy": "DELETE_OLDEST",
    }
    assert seen["gateway_id"] == "cfai-staging-main"
    assert seen["logs_url"] == (
        f"https://api.cloudflare.com/client/v4/accounts/{ACCOUNT}"
        "/ai-gateway/gateways/cfai-staging-main/logs"
    )
    assert seen["urn"] == (
        "urn:pulumi:staging::cfai::cfai:index:Gateway$cloudflare:index/aiGateway:AiGateway::main"
    )


def test_gateway_sends_cloudflare_defaults_for_unset_settings(mocks: Mocks) -> None:
    inputs, _ = _declare(mocks, GatewayConfig())
    assert inputs == {
        "accountId": ACCOUNT,
        "aiGatewayId": "cfai-staging-main",
        "cacheTtl": 0,
        "cacheInvalidateOnUpdate": False,
        "collectLogs": True,
        "rateLimitingInterval": 0,
        "rateLimitingLimit": 0,
        "rateLimitingTechnique": "fixed",
        "authentication": False,
    }


def test_exported_members() -> None:
    assert sorted(gateway_module.__all__) == ["Gateway", "GatewayArgs"]
