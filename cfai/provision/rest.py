"""The one Cloudflare REST client (API v4), shared by the Pulumi dynamic provider and
``cfai local up`` (which provisions the local emulator through the same API), and the one
place where httpx's exceptions are caught: `send` (every request of the client) and `fetch`
(cfai's other HTTP calls: readiness probes, drift's ``/health``, the demo loader) return a
response or a `NoAnswer`, never raise httpx's errors.

Errors (`cfai.errors`, re-exported here)::

    CloudflareError                 a cfai.errors.CfaiError; ``user_fault`` says who must act
    ├── CloudflareApiError          Cloudflare answered with an error (4xx/5xx, success=false)
    └── CloudflareUnreachableError  no answer: connect error or timeout, after the retries

Every answer is the v4 envelope ``{"result", "success", "errors", "messages"}``; the client
returns ``result`` and turns ``errors`` into `CloudflareApiError`, whose text reads
``404 get vectorize_index 'docs': vectorize.index.not_found (code 3000)``. 429 and 5xx
answers and connect errors are retried with exponential backoff, honouring ``Retry-After``.
The API token is sent on each request and never logged, repr'd or put in an error.

Example::

    with CloudflareClient(token=os.environ["CLOUDFLARE_API_TOKEN"], account_id=acct) as cf:
        cf.vectorize.create_index("docs", dimensions=768, metric="cosine")
        cf.ai_gateway.get("main")
        cf.workers.deploy("acme-chat", {new_version: 10, old_version: 90})
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal
from urllib.parse import quote

import httpx

from cfai.errors import CloudflareApiError, CloudflareError, CloudflareUnreachableError
from cfai.provision._finetune_api import FinetunesApi
from cfai.provision._gateway_api import AiGatewayApi
from cfai.provision._vectorize_api import VectorizeApi
from cfai.provision._workers_api import WorkersScriptsApi

__all__ = [
    "DEFAULT_BASE_URL",
    "CloudflareApiError",
    "CloudflareClient",
    "CloudflareError",
    "CloudflareUnreachableError",
    "NoAnswer",
    "fetch",
    "send",
]

DEFAULT_BASE_URL = "https://api.cloudflare.com/client/v4"

_log = logging.getLogger(__name__)
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE"})
# The request never left the machine: safe to retry whatever the method.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# The request may have been applied: retried for idempotent methods only.
_MAYBE_SENT = (httpx.ReadTimeout, httpx.WriteTimeout, httpx.RemoteProtocolError, httpx.ReadError)


@dataclass(frozen=True)
class NoAnswer:
    """A request that got no HTTP answer: ``error`` is the kind (``ConnectError``,
    ``ReadTimeout``), ``detail`` its text; ``retry`` says when sending it again is safe:
    ``always`` (it never left the machine), ``idempotent`` (it may have been applied) or
    ``never``."""

    error: str
    detail: str
    retry: Literal["always", "idempotent", "never"] = "never"

    def __str__(self) -> str:
        return f"{self.error}: {self.detail}" if self.detail else self.error


def send(
    http: httpx.Client | None, method: str, url: str, *, stream: bool = False, **kwargs: Any
) -> httpx.Response | NoAnswer:
    """One HTTP request on `http` (a one-off client when None): the response, whatever its
    status, or `NoAnswer`. The only place cfai catches httpx's exceptions. `stream`: the
    body is not read yet (`http` required); the caller reads and closes the response."""
    try:
        if stream:
            if http is None:
                raise ValueError("send(stream=True) needs a client")
            return http.send(http.build_request(method, url, **kwargs), stream=True)
        if http is None:
            return httpx.request(method, url, **kwargs)
        return http.request(method, url, **kwargs)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        retry: Literal["always", "idempotent", "never"] = (
            "always"
            if isinstance(exc, _NOT_SENT)
            else "idempotent"
            if isinstance(exc, _MAYBE_SENT)
            else "never"
        )
        return NoAnswer(type(exc).__name__, str(exc), retry)


def fetch(
    method: str,
    url: str,
    *,
    timeout: float,
    json: Any = None,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response | NoAnswer:
    """A one-off request outside the REST client (a ``/health`` probe, a Worker's route).

    Example::

        answer = fetch("GET", "http://127.0.0.1:8787/health", timeout=2)
        ready = not isinstance(answer, NoAnswer) and answer.status_code == 200
    """
    return send(None, method, url, timeout=timeout, json=json, headers=headers)


class CloudflareClient:
    """A sync client for the Cloudflare v4 API of one account.

    ``max_retries`` counts retries after the first attempt. Waits grow as
    ``backoff * 2**n`` up to ``max_backoff``; a ``Retry-After`` header replaces the
    computed wait (capped at ``max_retry_after``). ``sleep`` and ``transport`` are for
    tests (a fake clock, `httpx.MockTransport`).

    Example::

        cf = CloudflareClient(token=token, account_id="0" * 32, base_url="http://127.0.0.1:8787/client/v4")
        try:
            cf.vectorize.list_indexes()
        finally:
            cf.close()
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        token: str,
        account_id: str,
        timeout: float = 30.0,
        max_retries: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        max_retry_after: float = 120.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not token:
            raise ValueError("a Cloudflare API token is required (CLOUDFLARE_API_TOKEN)")
        if not account_id:
            raise ValueError("a Cloudflare account id is required")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        self.base_url = base_url.rstrip("/")
        self.account_id = account_id
        self.max_retries = max_retries
        self._token = token
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._max_retry_after = max_retry_after
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=self.base_url + "/",
            timeout=httpx.Timeout(timeout),
            transport=transport,
            headers={"user-agent": "cfai"},
        )
        self.vectorize = VectorizeApi(self)
        self.ai_gateway = AiGatewayApi(self)
        self.finetunes = FinetunesApi(self)
        self.workers = WorkersScriptsApi(self)

    def __repr__(self) -> str:
        return f"CloudflareClient(base_url={self.base_url!r}, account_id={self.account_id!r})"

    def __getstate__(self) -> Any:
        # Holds a live connection pool and the token: never pickled (a dynamic provider
        # must build its client inside each method).
        raise TypeError("CloudflareClient cannot be pickled; build it where it is used")

    def __enter__(self) -> CloudflareClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def account_path(self, *parts: str) -> str:
        """``accounts/<account_id>/<parts...>`` with each part percent-encoded."""
        encoded = (quote(p, safe="") for p in (self.account_id, *parts))
        return "/".join(["accounts", *encoded])

    def request(
        self,
        method: str,
        path: str,
        *,
        action: str,
        resource: str,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str | int] | None = None,
    ) -> Any:
        """Send one API call (with retries) and return the envelope's ``result``."""
        response, attempts = self._exchange(
            method,
            path,
            action=action,
            resource=resource,
            json=json,
            content=content,
            headers=headers,
            params=params,
        )
        return self._result(response, action, resource, attempts)

    def request_bytes(
        self,
        method: str,
        path: str,
        *,
        action: str,
        resource: str,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str | int] | None = None,
    ) -> tuple[bytes, httpx.Headers]:
        """An API call whose success is not an envelope (script content): the body and
        headers; an error answer raises `CloudflareApiError` as `request` does."""
        response, attempts = self._exchange(
            method, path, action=action, resource=resource, headers=headers, params=params
        )
        if response.is_success:
            return response.content, response.headers
        self._result(response, action, resource, attempts)  # raises: an error envelope
        raise CloudflareApiError(response.status_code, None, "error", action, resource)

    def _exchange(
        self,
        method: str,
        path: str,
        *,
        action: str,
        resource: str,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str | int] | None = None,
    ) -> tuple[httpx.Response, int]:
        # A caller may authenticate otherwise (an assets upload carries its session token).
        send_headers = {"authorization": f"Bearer {self._token}", **(headers or {})}
        attempt = 0
        while True:
            attempt += 1
            last = attempt > self.max_retries
            response = send(
                self._http,
                method,
                path,
                json=json,
                content=content,
                headers=send_headers,
                params=params,
            )
            if isinstance(response, NoAnswer):
                retryable = response.retry == "always" or (
                    response.retry == "idempotent" and method in _IDEMPOTENT
                )
                detail = self._redact(str(response))
                _log.debug("%s %s -> %s (attempt %d)", method, path, response.error, attempt)
                if not retryable or last:
                    raise CloudflareUnreachableError(action, resource, detail, attempt)
                self._sleep(self._delay(attempt, None))
                continue
            _log.debug("%s %s -> %d (attempt %d)", method, path, response.status_code, attempt)
            if (response.status_code == 429 or response.status_code >= 500) and not last:
                self._sleep(self._delay(attempt, response.headers.get("retry-after")))
                continue
            return response, attempt

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        hinted = _parse_retry_after(retry_after)
        if hinted is not None:
            return min(hinted, self._max_retry_after)
        return float(min(self._max_backoff, self._backoff * 2 ** (attempt - 1)))

    def _result(self, response: httpx.Response, action: str, resource: str, attempts: int) -> Any:
        if response.is_success and not response.content:
            return None
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or "success" not in body:
            if response.is_success:
                raise CloudflareApiError(
                    response.status_code,
                    None,
                    "answer is not a v4 envelope",
                    action,
                    resource,
                    attempts=attempts,
                )
            text = response.reason_phrase or "error"
            raise CloudflareApiError(
                response.status_code, None, self._redact(text), action, resource, attempts=attempts
            )
        if body.get("success") is True and response.is_success:
            return body.get("result")
        errors = [e for e in body.get("errors") or [] if isinstance(e, dict)]
        message = (
            "; ".join(str(e.get("message", "")) for e in errors)
            or response.reason_phrase
            or "error"
        )
        code = errors[0].get("code") if errors else None
        raise CloudflareApiError(
            response.status_code,
            code if isinstance(code, int) else None,
            self._redact(message),
            action,
            resource,
            attempts=attempts,
        )

    def _redact(self, text: str) -> str:
        return text.replace(self._token, "[redacted]")


def _parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
