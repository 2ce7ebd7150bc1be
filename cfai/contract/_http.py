"""HTTP helpers the checks share: clients that refuse leaked secrets, JSON error, SSE and
JSON Schema assertions.

Every client the suite hands out (to the checks, the `openai` client and user checks) runs
`SecretGuard` on each response, so "no secret in any response" is checked on every request
of the run, not only on a sample.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import httpx
from jsonschema import Draft202012Validator

DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
T = TypeVar("T")


class SecretLeakError(AssertionError):
    """A response carried a secret of the target (auth token or API token)."""


class SecretGuard:
    """An httpx response hook failing on any response that contains a secret.

    The message names where the secret was found, never the secret itself.
    """

    def __init__(self, secrets: Sequence[str]) -> None:
        self.secrets = tuple(s for s in secrets if s)

    def __call__(self, response: Any) -> None:
        # Any: also hooked into the `openai` client, which is built on httpx2 (same API).
        response.read()
        where = f"{response.request.method} {response.request.url.path} -> {response.status_code}"
        for i, secret in enumerate(self.secrets):
            for name, value in response.headers.multi_items():
                if secret in value:
                    raise SecretLeakError(f"{where}: secret #{i + 1} appears in header {name!r}")
            if secret.encode() in response.content:
                raise SecretLeakError(f"{where}: secret #{i + 1} appears in the body")


def make_client(
    base_url: str,
    *,
    token: str | None,
    secrets: Sequence[str],
    headers: Mapping[str, str] | None = None,
    **kwargs: Any,
) -> httpx.Client:
    """An httpx client for one Worker (bearer `token` when given, plus `headers` on every
    request) guarded by `SecretGuard`."""
    headers = {**(headers or {}), **({"authorization": f"Bearer {token}"} if token else {})}
    return httpx.Client(
        base_url=base_url,
        headers=headers,
        timeout=DEFAULT_TIMEOUT,
        event_hooks={"response": [SecretGuard(secrets)]},
        **kwargs,
    )


def describe(response: httpx.Response) -> str:
    """`POST /chat -> 502: <first 300 chars of the body>` for assertion messages."""
    body = response.text[:300]
    return (
        f"{response.request.method} {response.request.url.path} -> {response.status_code}: {body}"
    )


def json_body(response: httpx.Response, status: int = 200) -> Any:
    """The response's JSON after asserting its status and content type."""
    assert response.status_code == status, f"expected {status}; got {describe(response)}"
    ctype = response.headers.get("content-type", "")
    assert ctype.startswith("application/json"), (
        f"expected application/json; got {ctype!r} ({describe(response)})"
    )
    try:
        return response.json()
    except ValueError:
        raise AssertionError(f"body is not JSON: {describe(response)}") from None


def assert_json_error(response: httpx.Response, status: int) -> dict[str, Any]:
    """Assert the Worker HTTP API's error form: `status` and ``{"error": {"code", "message"}}``."""
    body = json_body(response, status)
    error = body.get("error") if isinstance(body, dict) else None
    assert isinstance(error, dict), f'expected {{"error": {{...}}}}; got {describe(response)}'
    assert isinstance(error.get("code"), str) and error["code"], (
        f"error.code must be a non-empty string: {describe(response)}"
    )
    assert isinstance(error.get("message"), str) and error["message"], (
        f"error.message must be a non-empty string: {describe(response)}"
    )
    return error


def sse_events(response: httpx.Response) -> list[str]:
    """The `data:` payloads of an event stream, in order (multi-line data joined by newlines)."""
    events: list[str] = []
    data: list[str] = []
    for line in response.iter_lines():
        if line == "":
            if data:
                events.append("\n".join(data))
                data = []
        elif line.startswith("data:"):
            value = line[5:]
            data.append(value[1:] if value.startswith(" ") else value)
        elif line.startswith(":"):
            continue  # a comment (keep-alive)
    if data:
        events.append("\n".join(data))
    return events


def assert_sse_chat_stream(events: list[str]) -> tuple[str, dict[str, Any]]:
    """Assert chat SSE framing; return the joined text and the usage.

    Every event but the last is a JSON object with a string `response`; one of them carries
    `usage`; the last is `[DONE]` and nothing follows it.
    """
    assert events, "the stream had no events"
    assert events[-1] == "[DONE]", f"last event must be [DONE]; got {events[-1][:200]!r}"
    assert events.count("[DONE]") == 1, "[DONE] must appear once, at the end"
    text: list[str] = []
    usage: dict[str, Any] | None = None
    for i, raw in enumerate(events[:-1]):
        try:
            event = json.loads(raw)
        except ValueError:
            raise AssertionError(f"event {i} is not JSON: {raw[:200]!r}") from None
        assert isinstance(event, dict), f"event {i} is not a JSON object: {raw[:200]!r}"
        assert isinstance(event.get("response"), str), (
            f"event {i} lacks a string `response`: {raw[:200]!r}"
        )
        text.append(event["response"])
        if event.get("usage") is not None:
            usage = event["usage"]
    assert usage is not None, "no event carried `usage` before [DONE]"
    assert_usage(usage)
    return "".join(text), usage


def assert_usage(usage: Any) -> None:
    assert isinstance(usage, dict), f"usage must be an object; got {usage!r}"
    for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
        assert isinstance(usage.get(key), int) and usage[key] >= 0, (
            f"usage.{key} must be a non-negative integer; got {usage!r}"
        )


def schema_errors(value: Any, schema: Mapping[str, Any]) -> list[str]:
    """Every way `value` breaks `schema` (JSON Schema 2020-12), each with its JSON path.

    >>> schema_errors({"a": 1}, {"type": "object", "required": ["a", "b"]})
    ["$: 'b' is a required property"]
    """
    validator = Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(value), key=lambda e: list(map(str, e.absolute_path)))
    return [f"{e.json_path}: {e.message}" for e in errors]


def eventually(check: Callable[[], T], wait: float, interval: float = 0.5) -> T:
    """`check()` until it stops raising AssertionError, for at most `wait` seconds (at least
    once): eventual consistency bounded, the last failure reported."""
    deadline = time.monotonic() + wait
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() >= deadline:
                raise
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
