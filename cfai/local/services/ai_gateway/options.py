"""Per-request gateway options, from a Worker's `options.gateway` or from `cf-aig-*` headers.

=====================  ==========================  =========================================
binding option         header                      effect here
=====================  ==========================  =========================================
``cacheKey``           ``cf-aig-cache-key``        replaces the computed cache key
``cacheTtl``           ``cf-aig-cache-ttl``        seconds; overrides the gateway's cache_ttl
``skipCache``          ``cf-aig-skip-cache``       neither read nor write the cache
``collectLog``         ``cf-aig-collect-log``      overrides the gateway's collect_logs
``metadata``           ``cf-aig-metadata`` (JSON)  ≤5 flat entries kept on the log
``eventId``            ``cf-aig-event-id``         kept on the log, echoed as a header
``requestTimeoutMs``   ``cf-aig-request-timeout``  accepted; stand-in models never time out
``retries``            ``cf-aig-max-attempts`` ..  accepted; stand-in models never fail
=====================  ==========================  =========================================

Legacy ``cf-cache-ttl`` / ``cf-skip-cache`` headers are honoured too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cfai.local.services.ai_gateway import _errors as err
from cfai.local.services.frontdoor import loads

_SCALARS = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class RunOptions:
    cache_key: str | None = None
    cache_ttl: int | None = None
    skip_cache: bool = False
    collect_log: bool | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    event_id: str | None = None

    @classmethod
    def from_binding(cls, options: Mapping[str, Any]) -> RunOptions:
        """From the `options.gateway` object a Worker passes to `env.AI.run`."""
        ttl = options.get("cacheTtl")
        collect = options.get("collectLog")
        event = options.get("eventId")
        return cls(
            cache_key=str(options["cacheKey"]) if options.get("cacheKey") else None,
            cache_ttl=int(ttl)
            if isinstance(ttl, int | float) and not isinstance(ttl, bool)
            else None,
            skip_cache=options.get("skipCache") is True,
            collect_log=collect if isinstance(collect, bool) else None,
            metadata=flat_metadata(options.get("metadata")),
            event_id=str(event) if event is not None else None,
        )

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> RunOptions:
        """From the `cf-aig-*` headers of a request to the gateway URL."""
        ttl = headers.get("cf-aig-cache-ttl") or headers.get("cf-cache-ttl")
        skip = headers.get("cf-aig-skip-cache") or headers.get("cf-skip-cache")
        collect = headers.get("cf-aig-collect-log")
        metadata: Any = None
        if raw := headers.get("cf-aig-metadata"):
            try:
                metadata = loads(raw)
            except ValueError:
                metadata = None
        return cls(
            cache_key=headers.get("cf-aig-cache-key") or None,
            cache_ttl=_int_header("cf-aig-cache-ttl", ttl),
            skip_cache=(skip or "").lower() == "true",
            collect_log=None if collect is None else collect.lower() == "true",
            metadata=flat_metadata(metadata),
            event_id=headers.get("cf-aig-event-id"),
        )


def flat_metadata(raw: Any) -> dict[str, Any]:
    """The first 5 flat (string/number/boolean/null) entries; nested values and extras are
    dropped, as the gateway does."""
    if not isinstance(raw, Mapping):
        return {}
    flat = {str(k): v for k, v in raw.items() if isinstance(v, _SCALARS)}
    return dict(list(flat.items())[: err.MAX_METADATA_ENTRIES])


def _int_header(name: str, value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(float(value))
    except (ValueError, OverflowError):  # "x", "nan"; "inf" (no int is infinite)
        raise err.GatewayError(400, 7001, f"{name}: must be a number of seconds") from None
