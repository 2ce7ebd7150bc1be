"""Config -> Cloudflare API field mapping, shared by the Pulumi components (cloud) and
`cfai local up` (the emulator), so both targets get the same settings.

Example::

    gateway_fields("acme-main", Gateway(cache_ttl=3600))["cache_ttl"]  # 3600
"""

from __future__ import annotations

from typing import Any

from cfai.config import GatewayConfig, IndexConfig

__all__ = ["gateway_fields", "index_fields"]


def gateway_fields(gateway_id: str, gw: GatewayConfig) -> dict[str, Any]:
    """The AI Gateway create/PUT body (Cloudflare's snake_case names) for `gw`."""
    rl = gw.rate_limit
    fields: dict[str, Any] = {
        "id": gateway_id,
        "cache_ttl": gw.cache_ttl if gw.cache_ttl is not None else 0,
        "cache_invalidate_on_update": gw.cache_invalidate_on_update,
        "collect_logs": gw.collect_logs,
        "rate_limiting_interval": rl.interval if rl else 0,
        "rate_limiting_limit": rl.limit if rl else 0,
        "rate_limiting_technique": rl.technique if rl else "fixed",
        "authentication": gw.authentication,
    }
    if gw.log_management is not None:
        fields["log_management"] = gw.log_management
    if gw.log_management_strategy is not None:
        fields["log_management_strategy"] = gw.log_management_strategy
    return fields


def index_fields(index_name: str, index: IndexConfig) -> dict[str, Any]:
    """The Vectorize index settings (name, dimensions, metric, description, metadata indexes)."""
    return {
        "name": index_name,
        "dimensions": index.resolved_dimensions,
        "metric": index.resolved_metric,
        "description": index.description,
        "metadata_indexes": dict(index.metadata_indexes),
    }
