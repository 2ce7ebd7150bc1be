"""AI Gateway calls of `CloudflareClient` (``client.ai_gateway``).

Paths are ``/accounts/{account_id}/ai-gateway/gateways[/{id}]``. ``update`` is a PUT and
Cloudflare treats it as a full replace: send the whole configuration, not a patch.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import Any

from cfai.provision._api import Requester


def _resource(gateway_id: str) -> str:
    return f"ai_gateway '{gateway_id}'"


class AiGatewayApi:
    """AI Gateways of one account."""

    def __init__(self, client: Requester) -> None:
        self._client = client

    def _path(self, *tail: str) -> str:
        return self._client.account_path("ai-gateway", "gateways", *tail)

    def create(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """Create a gateway; ``config`` carries ``id`` and the required settings
        (``cache_invalidate_on_update``, ``cache_ttl``, ``collect_logs``,
        ``rate_limiting_interval``, ``rate_limiting_limit``, ``rate_limiting_technique``)."""
        gateway_id = str(config.get("id", ""))
        if not gateway_id:
            raise ValueError("ai_gateway config needs an 'id'")
        result: dict[str, Any] = self._client.request(
            "POST", self._path(), action="create", resource=_resource(gateway_id), json=dict(config)
        )
        return result

    def get(self, gateway_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._client.request(
            "GET", self._path(gateway_id), action="get", resource=_resource(gateway_id)
        )
        return result

    def list(self, *, search: str | None = None, per_page: int = 50) -> list[dict[str, Any]]:
        """Every gateway of the account (all pages)."""
        gateways: list[dict[str, Any]] = []
        page = 1
        while True:
            params: dict[str, str | int] = {"page": page, "per_page": per_page}
            if search:
                params["search"] = search
            batch = self._client.request(
                "GET", self._path(), action="list", resource="ai_gateway", params=params
            )
            batch = batch or []
            gateways.extend(batch)
            if len(batch) < per_page:
                return gateways
            page += 1

    def update(self, gateway_id: str, config: Mapping[str, Any]) -> dict[str, Any]:
        """Replace the gateway's whole configuration (PUT)."""
        body = {k: v for k, v in config.items() if k != "id"}
        result: dict[str, Any] = self._client.request(
            "PUT",
            self._path(gateway_id),
            action="update",
            resource=_resource(gateway_id),
            json=body,
        )
        return result

    def delete(self, gateway_id: str) -> None:
        self._client.request(
            "DELETE", self._path(gateway_id), action="delete", resource=_resource(gateway_id)
        )

    def logs(self, gateway_id: str, *, per_page: int = 50) -> builtins.list[dict[str, Any]]:
        """The gateway's newest logs first, one page of up to ``per_page`` (50 is
        Cloudflare's maximum per page): id, created_at, model, provider, status_code,
        success, cached, tokens_in, tokens_out, duration, feedback, score."""
        result: builtins.list[dict[str, Any]] = self._client.request(
            "GET",
            self._path(gateway_id, "logs"),
            action="list logs",
            resource=_resource(gateway_id),
            params={"per_page": per_page, "order_by": "created_at", "order_by_direction": "desc"},
        )
        return result or []
