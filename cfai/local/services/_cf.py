"""Cloudflare's wire conventions shared by every emulated service.

Every REST answer uses the v4 envelope ``{"result", "success", "errors", "messages"}``;
errors carry ``[{"code", "message"}]``. Binding answers are bare JSON with the exact
content type ``application/json`` (workerd hands anything else to the Worker as a stream).
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

JSON = "application/json"


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


def api_error(
    status: int, code: int, message: str, headers: dict[str, str] | None = None
) -> Response:
    """A failed v4 REST answer."""
    body = {
        "result": None,
        "success": False,
        "errors": [{"code": code, "message": message}],
        "messages": [],
    }
    return json_response(body, status, headers)


class CloudflareError(Exception):
    """An error the emulator answers with Cloudflare's shape. Raised inside service logic;
    REST routes turn it into `api_error`, binding routes into their own shape."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def check_token(request: Request, token: str) -> Response | None:
    """None when the bearer token is right, else Cloudflare's 401 or 403 answer."""
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("bearer "):
        return api_error(401, 10000, "Authentication error")
    if not hmac.compare_digest(header[7:].strip().encode(), token.encode()):
        return api_error(403, 9109, "Invalid access token")
    return None
