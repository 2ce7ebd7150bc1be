"""Validation of gateway bodies (POST create, PUT full replace) into a stored config.

Required on create, as in Cloudflare's API: ``id``, ``cache_invalidate_on_update``,
``cache_ttl``, ``collect_logs``, ``rate_limiting_interval``, ``rate_limiting_limit``.
``rate_limiting_technique`` was required by the 2025 SDKs and is optional in the 2026 ones;
we default it to ``fixed``. Unknown fields are dropped, not rejected, so newer clients that
send fields we do not model still work.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cfai.local.services.ai_gateway import _errors as err

REQUIRED = (
    "cache_invalidate_on_update",
    "cache_ttl",
    "collect_logs",
    "rate_limiting_interval",
    "rate_limiting_limit",
)
_BOOLS = (
    "cache_invalidate_on_update",
    "collect_logs",
    "authentication",
    "byok_only",
    "logpush",
    "zdr",
)
_NULLABLE_INTS = ("cache_ttl", "rate_limiting_interval", "rate_limiting_limit", "log_management")
_CHOICES: dict[str, tuple[str, ...]] = {
    "rate_limiting_technique": ("fixed", "sliding"),
    "log_management_strategy": ("STOP_INSERTING", "DELETE_OLDEST"),
    "retry_backoff": ("constant", "linear", "exponential"),
    "workers_ai_billing_mode": ("postpaid", "unified"),
}
# Optional fields kept verbatim (objects we store and echo but do not act on).
_OPAQUE = (
    "logpush_public_key",
    "store_id",
    "dlp",
    "guardrails",
    "otel",
    "spend_limits",
    "stripe",
    "log_classification",
)
DEFAULTS: dict[str, Any] = {
    "rate_limiting_technique": "fixed",
    "authentication": False,
    # "Requires customer-provided provider credentials and prevents fallback to Unified
    # Billing" (API schema); stored and answered, nothing to enforce for Workers AI here.
    "byok_only": False,
    "log_management": None,
    "log_management_strategy": None,
    "logpush": False,
    "logpush_public_key": None,
    "retry_max_attempts": None,
    "retry_delay": None,
    "retry_backoff": None,
}


def validate(body: Any, *, gateway_id: str | None = None) -> dict[str, Any]:
    """The stored config for a create (`gateway_id` None: taken from the body) or a
    replace (`gateway_id` from the path). Raises `ApiError` naming the bad field."""
    if not isinstance(body, Mapping):
        raise err.invalid("Request body must be a JSON object")
    if gateway_id is None:
        gateway_id = body.get("id")
        if not isinstance(gateway_id, str):
            raise err.invalid("id: required string")
        check_id(gateway_id)
    missing = [name for name in REQUIRED if name not in body]
    if missing:
        raise err.invalid(f"missing required field(s): {', '.join(missing)}")
    config: dict[str, Any] = {**DEFAULTS, "id": gateway_id}
    for name, value in body.items():
        if name == "id":
            continue
        if name in _BOOLS:
            if not isinstance(value, bool):
                raise err.invalid(f"{name}: must be a boolean")
        elif name in _NULLABLE_INTS:
            _check_int(name, value, minimum=0, nullable=True)
        elif name in _CHOICES:
            if value is not None and value not in _CHOICES[name]:
                raise err.invalid(f"{name}: must be one of {', '.join(_CHOICES[name])}")
        elif name == "retry_max_attempts":
            _check_int(name, value, minimum=1, maximum=5, nullable=True)
        elif name == "retry_delay":
            _check_int(name, value, minimum=0, maximum=5000, nullable=True)
        elif name not in _OPAQUE:
            continue
        config[name] = value
    if config["rate_limiting_technique"] is None:
        config["rate_limiting_technique"] = "fixed"
    cap = config["log_management"]
    if cap is not None and not err.MIN_LOG_MANAGEMENT <= cap <= err.MAX_LOG_MANAGEMENT:
        raise err.invalid(
            f"log_management: must be between {err.MIN_LOG_MANAGEMENT} and {err.MAX_LOG_MANAGEMENT}"
        )
    return config


def check_id(gateway_id: str) -> None:
    if not 1 <= len(gateway_id) <= err.MAX_ID_CHARS:
        raise err.invalid(f"id: must be 1 to {err.MAX_ID_CHARS} characters")
    if not err.ID_PATTERN.match(gateway_id):
        raise err.invalid(
            "id: only lowercase letters, digits, '_' and '-' (not leading, trailing or doubled)"
        )


def _check_int(
    name: str, value: Any, *, minimum: int, maximum: int | None = None, nullable: bool = False
) -> None:
    if value is None and nullable:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise err.invalid(f"{name}: must be an integer{' or null' if nullable else ''}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        raise err.invalid(f"{name}: must be {bound}")
