"""Remote mode of the Workers AI service (`cfai local up --remote-ai`): model runs go to the
Workers AI REST API of a real account while everything else stays local — the gateway that
wraps this service still caches, logs and rate-limits locally.

Chosen by the emulator settings ``remote_ai = {"base_url", "account_id"}``; the API token
comes from the emulator's environment (``CFAI_REMOTE_AI_TOKEN``), never argv, never logged.
``POST {base_url}/accounts/{account_id}/ai/run/{model}`` with the inputs: a JSON answer's v4
envelope is unwrapped to the bare result, SSE and binary answers pass through with their
content type, and REST errors become `AiError` (so the binding answers its own error shape).

Example::

    remote = RemoteAi("https://api.cloudflare.com/client/v4", account_id, token)
    remote.run("@cf/meta/llama-3.1-8b-instruct", {"prompt": "hi"}).result["response"]
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import httpx

from cfai.local.services.frontdoor import JSON
from cfai.provision.rest import NoAnswer, send

from ._core import AiError, AiResult

TOKEN_ENV = "CFAI_REMOTE_AI_TOKEN"


class RemoteAi:
    """Runs models on a remote Workers AI REST API."""

    def __init__(self, base_url: str, account_id: str, token: str, *, timeout: float = 120) -> None:
        self._client = httpx.Client(
            base_url=f"{base_url.rstrip('/')}/accounts/{account_id}/ai/run/",
            headers={"authorization": f"Bearer {token}"},
            timeout=timeout,
        )

    def run(self, model: str, inputs: Mapping[str, Any]) -> AiResult:
        response = send(self._client, "POST", model, json=dict(inputs), stream=True)
        if isinstance(response, NoAnswer):
            # The URL is ours and holds no secret; the token is in a header, never printed.
            raise AiError(502, 3040, f"remote Workers AI unreachable ({response.error})")
        content_type = response.headers.get("content-type", "").split(";")[0].strip()
        if response.status_code >= 400 or content_type == JSON:
            try:
                body = json.loads(response.read())
            except ValueError:
                body = None
            finally:
                response.close()
            return _unwrap(response.status_code, body)
        if content_type == "text/event-stream":
            return AiResult(content_type=content_type, chunks=_stream(response))
        try:
            return AiResult(content_type=content_type, body=response.read())
        finally:
            response.close()

    def close(self) -> None:
        self._client.close()


def _stream(response: httpx.Response) -> Iterator[bytes]:
    try:
        yield from response.iter_bytes()
    finally:
        response.close()


def _unwrap(status: int, body: Any) -> AiResult:
    if isinstance(body, dict) and body.get("success") is True and status < 400:
        result = body.get("result")
        usage = result.get("usage") if isinstance(result, dict) else None
        return AiResult.json(result, usage=usage if isinstance(usage, dict) else None)
    errors = body.get("errors") if isinstance(body, dict) else None
    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
    code = first.get("code")
    code = code if isinstance(code, int) else 3040
    message = str(first.get("message") or f"remote Workers AI answered HTTP {status}")
    raise AiError(status if status >= 400 else 502, code, f"remote: {message}")
