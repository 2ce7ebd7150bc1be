"""AI Gateway's limits and error codes, in one place.

Two families of errors. REST management calls (``/client/v4/.../ai-gateway/...``) answer
with the v4 envelope via `ApiError`. Requests *through* a gateway (the URL form and
the Worker binding) answer with the gateway's own body, seen in public code quoting a live
rate-limit answer::

    {"success": false, "result": [], "messages": [],
     "error": [{"code": 2003, "message": "Rate limited"}],
     "name": "AiGatewayError", "httpCode": 429, "internalCode": 2003}

(note the singular ``error``). The binding adds ``description`` so workerd's
``InferenceUpstreamError`` reads ``"2003: Rate limited"`` (it formats
``<internalCode>: <description>``).

=====  ===============================================  ====  ============
code   meaning                                          HTTP  source
=====  ===============================================  ====  ============
2003   rate limited                                     429   community
2009   missing or wrong ``cf-aig-authorization``        401   community
2001   gateway not configured (request through one)     404   community
2011   provider not reachable from the local platform   502   local only
7001   invalid body or query; gateway id already taken  400   chanfana
7002   gateway or log not found (REST)                  404   API schema
10000  authentication error (provider token, account)   401   confirmed
=====  ===============================================  ====  ============

The REST management API is a chanfana service (Cloudflare's OpenAPI framework for
Workers): its schema (https://developers.cloudflare.com/api/resources/ai_gateway/) declares
``{"code": 7002, "message": "Not Found"}`` for a missing log and
``{"errors": [{"code", "message", "path"}]}`` 400s for create, which are chanfana's
``NotFoundException`` (7002) and ``InputValidationException`` (7001) in
``cloudflare/chanfana`` ``src/exceptions.ts``. Create declares no 409, so a taken id is
answered as input validation (400, 7001) naming ``id``; 7003 is the API's "could not
route" and nothing here. The 2001 wording is a live answer quoted in public test notes.

Assumed codes are ours to change when a live answer shows the real ones.
"""

from __future__ import annotations

import re
from typing import Any

from cfai.local.services.frontdoor import ApiError, Shape

MAX_ID_CHARS = 64
# Cloudflare's slug pattern for AI resource names (lowercase, digits, `_`, inner `-`).
ID_PATTERN = re.compile(r"^[a-z0-9_]+(?:-[a-z0-9_]+)*$")
MIN_LOG_MANAGEMENT = 10_000
MAX_LOG_MANAGEMENT = 10_000_000
MAX_METADATA_ENTRIES = 5
DEFAULT_PER_PAGE = 20
MAX_GATEWAYS_PER_PAGE = 100
MAX_LOGS_PER_PAGE = 50
# A cacheKey with the gateway cache off lives 5 minutes (AI Gateway caching docs).
CACHE_KEY_DEFAULT_TTL = 300
# Stored request/response bodies are cut here; `*_size` keeps the true size.
BODY_LIMIT = 1024 * 1024
HEAD_CHARS = 1024


class GatewayError(ApiError):
    """An error of a request through a gateway, answered in the gateway's own shape on the
    URL form (`Shape.ENVELOPE` routes) and the binding (`Shape.AI`, plus ``description``)."""

    def body(self, shape: Shape) -> dict[str, Any]:
        out: dict[str, Any] = {
            "success": False,
            "result": [],
            "messages": [],
            "error": [{"code": self.code, "message": self.message}],
            "name": "AiGatewayError",
            "httpCode": self.status,
            "internalCode": self.code,
        }
        if shape is Shape.AI:
            out["description"] = self.message
        return out


def rate_limited() -> GatewayError:
    return GatewayError(429, 2003, "Rate limited")


def unauthorized() -> GatewayError:
    return GatewayError(401, 2009, "Unauthorized")


def unknown_gateway(gateway_id: str) -> GatewayError:
    # Cloudflare's wording does not name the gateway; the id is in the URL the caller sent.
    return GatewayError(404, 2001, "Please configure AI Gateway in the Cloudflare dashboard")


UNREACHABLE = 2011


def unreachable_provider(provider: str) -> GatewayError:
    """A provider other than Workers AI: the local platform reaches no third party."""
    return GatewayError(
        502,
        2011,
        f"Provider '{provider}' is not reachable from the local platform "
        "(it serves workers-ai only)",
    )


def invalid(message: str) -> ApiError:
    return ApiError(400, 7001, message)


def gateway_not_found(gateway_id: str) -> ApiError:
    return ApiError(404, 7002, f"Not Found: gateway '{gateway_id}'")


def gateway_exists(gateway_id: str) -> ApiError:
    return ApiError(400, 7001, f"id: a gateway with id '{gateway_id}' already exists")


def log_not_found(log_id: str) -> ApiError:
    # "Log Not Found" is what workerd's AiGatewayLogNotFound shows a Worker.
    return ApiError(404, 7002, "Log Not Found")


def bad_query(message: str) -> ApiError:
    return ApiError(400, 7001, message)
