"""Answers in Cloudflare's shapes, and the one error type every emulated route raises.

Three shapes, one per kind of client:

- `Shape.ENVELOPE`: the v4 REST envelope ``{"result", "success", "errors", "messages"}``
  (https://developers.cloudflare.com/fundamentals/api/reference/#responses); errors carry
  ``[{"code", "message"}]``.
- `Shape.VECTORIZE`: what workerd's Vectorize binding reads: bare JSON, errors
  ``{"code", "error"}`` (workerd ``src/cloudflare/internal/vectorize-api.ts`` turns them into
  ``VECTOR_QUERY_ERROR (code = N): error``).
- `Shape.AI`: what workerd's AI binding reads: bare JSON, errors
  ``{"internalCode", "name", "description"}`` (``src/cloudflare/internal/ai-api.ts`` throws
  ``InferenceUpstreamError("<internalCode>: <description>")``).

Bare JSON goes out with the content type exactly ``application/json``: workerd hands any
other content type to the Worker as a stream.
"""

from __future__ import annotations

import json
from enum import Enum
from typing import Any

from starlette.responses import Response

__all__ = [
    "JSON",
    "ApiError",
    "Shape",
    "answer",
    "envelope",
    "json_response",
]

JSON = "application/json"

# Codes the front door itself answers with. 10000/9109 are Cloudflare's for a missing and a
# wrong API token, 7003 its "could not route" and 7001 its "method not allowed"; 10001
# (internal error) and 10013 (body too large) are the emulator's own choice: no public
# source shows Cloudflare's.
AUTHENTICATION = 10000
INVALID_TOKEN = 9109
NO_ROUTE = 7003
METHOD_NOT_ALLOWED = 7001
INTERNAL = 10001
TOO_LARGE = 10013


class Shape(Enum):
    """How a route's answers and errors look on the wire."""

    ENVELOPE = "envelope"
    VECTORIZE = "vectorize"
    AI = "ai"


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """Bare JSON with content type exactly ``application/json`` (no charset)."""
    data = json.dumps(body, separators=(",", ":"), allow_nan=False).encode()
    return Response(
        data, status_code=status, media_type=None, headers={**(headers or {}), "content-type": JSON}
    )


def envelope(
    result: Any, status: int = 200, headers: dict[str, str] | None = None, **extra: Any
) -> Response:
    """A successful v4 REST answer."""
    return json_response(
        {"result": result, "success": True, "errors": [], "messages": [], **extra}, status, headers
    )


def answer(shape: Shape, value: Any, status: int = 200) -> Response:
    """A handler's plain return value in the route's shape."""
    if shape is Shape.ENVELOPE:
        return envelope(value, status)
    return json_response(value, status)


class ApiError(Exception):
    """A refusal the emulator answers in the route's shape: HTTP `status`, Cloudflare `code`,
    `message`. Raised anywhere below a route; the front door shapes it.

    Example::

        raise ApiError(404, 3000, 'vectorize.index.not_found - Index name "docs"')
    """

    # The JS error name workerd's AI binding shows (its InferenceUpstreamError).
    error_name = "InferenceUpstreamError"

    def __init__(
        self, status: int, code: int, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    def body(self, shape: Shape) -> dict[str, Any]:
        """The error body in `shape`."""
        if shape is Shape.VECTORIZE:
            return {"code": self.code, "error": self.message}
        if shape is Shape.AI:
            return {
                "internalCode": self.code,
                "name": self.error_name,
                "description": self.message,
            }
        return {
            "result": None,
            "success": False,
            "errors": [{"code": self.code, "message": self.message}],
            "messages": [],
        }

    def response(self, shape: Shape) -> Response:
        return json_response(self.body(shape), self.status, self.headers or None)


def not_authenticated() -> ApiError:
    return ApiError(401, AUTHENTICATION, "Authentication error")


def invalid_token() -> ApiError:
    return ApiError(403, INVALID_TOKEN, "Invalid access token")


def bad_auth_email() -> ApiError:
    # Cloudflare answers 6003 "Invalid request headers" with 6102 in its error chain.
    return ApiError(400, 6003, "Invalid request headers: Invalid format for X-Auth-Email header")


def unknown_auth_key() -> ApiError:
    # Cloudflare's code and wording for a key or email it does not know.
    return ApiError(403, 9103, "Unknown X-Auth-Key or X-Auth-Email")


def wrong_account() -> ApiError:
    return ApiError(403, AUTHENTICATION, "Authentication error")


def wrong_binding(has: str, needs: str) -> ApiError:
    return ApiError(
        403, AUTHENTICATION, f"Authentication error: a {has} binding cannot call a {needs} route"
    )


def no_route(method: str, path: str) -> ApiError:
    return ApiError(404, NO_ROUTE, f"No route for that URI: {method} {path}")


def method_not_allowed(method: str, allowed: list[str]) -> ApiError:
    return ApiError(
        405, METHOD_NOT_ALLOWED, f"Method not allowed: {method} (allowed: {', '.join(allowed)})"
    )


def too_large(limit: int) -> ApiError:
    return ApiError(413, TOO_LARGE, f"Request body is larger than {limit} bytes")


def internal() -> ApiError:
    return ApiError(500, INTERNAL, "Internal error in the cfai emulator; see emulator.log")
