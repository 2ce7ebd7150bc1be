"""The one Cloudflare REST client (API v4), shared by the Pulumi dynamic provider and
``cfai local up`` (which provisions the local emulator through the same API).

Errors::

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
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from cfai.errors import CfaiError
from cfai.provision._gateway_api import AiGatewayApi
from cfai.provision._vectorize_api import VectorizeApi

__all__ = [
    "DEFAULT_BASE_URL",
    "CloudflareApiError",
    "CloudflareClient",
    "CloudflareError",
    "CloudflareUnreachableError",
]

DEFAULT_BASE_URL = "https://api.cloudflare.com/client/v4"

_log = logging.getLogger(__name__)
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE"})
# The request never left the machine: safe to retry whatever the method.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# The request may have been applied: retried for idempotent methods only.
_MAYBE_SENT = (httpx.ReadTimeout, httpx.WriteTimeout, httpx.RemoteProtocolError, httpx.ReadError)


class CloudflareError(CfaiError):
    """Base of every error this client raises (a `cfai.errors.CfaiError`)."""


class CloudflareApiError(CloudflareError):
    """Cloudflare answered an error.

    ``status`` is the HTTP status, ``code`` Cloudflare's error code (None when the body
    carried none), ``action`` what was attempted (``create``) and ``resource`` what on
    (``vectorize_index 'docs'``). 4xx other than 429 are the user's to fix (config, token,
    permissions); 429 and 5xx are Cloudflare's side.
    """

    def __init__(
        self,
        status: int,
        code: int | None,
        message: str,
        action: str,
        resource: str,
        *,
        attempts: int = 1,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.action = action
        self.resource = resource
        self.attempts = attempts
        self.user_fault = 400 <= status < 500 and status != 429
        super().__init__(str(self))

    def __str__(self) -> str:
        text = f"{self.status} {self.action} {self.resource}: {self.message}"
        if self.code is not None:
            text += f" (code {self.code})"
        if self.attempts > 1:
            text += f"; gave up after {self.attempts} attempts"
        return text

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild_api_error,
            (self.status, self.code, self.message, self.action, self.resource, self.attempts),
        )

    @property
    def not_found(self) -> bool:
        """The resource does not exist (404, or 410 which Cloudflare uses for deleted ones)."""
        return self.status in (404, 410)


def _rebuild_api_error(*args: Any) -> CloudflareApiError:
    *head, attempts = args
    return CloudflareApiError(*head, attempts=attempts)


class CloudflareUnreachableError(CloudflareError):
    """No answer from the API (connect error or timeout), after retrying."""

    def __init__(self, action: str, resource: str, detail: str, attempts: int) -> None:
        self.action = action
        self.resource = resource
        self.detail = detail
        self.attempts = attempts
        super().__init__(
            f"{action} {resource}: no answer from the Cloudflare API after {attempts} attempt(s): {detail}"
        )


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
        send_headers = {**(headers or {}), "authorization": f"Bearer {self._token}"}
        attempt = 0
        while True:
            attempt += 1
            last = attempt > self.max_retries
            try:
                response = self._http.request(
                    method, path, json=json, content=content, headers=send_headers, params=params
                )
            except httpx.TransportError as exc:
                retryable = isinstance(exc, _NOT_SENT) or (
                    isinstance(exc, _MAYBE_SENT) and method in _IDEMPOTENT
                )
                detail = self._redact(f"{type(exc).__name__}: {exc}")
                _log.debug("%s %s -> %s (attempt %d)", method, path, type(exc).__name__, attempt)
                if not retryable or last:
                    raise CloudflareUnreachableError(action, resource, detail, attempt) from None
                self._sleep(self._delay(attempt, None))
                continue
            _log.debug("%s %s -> %d (attempt %d)", method, path, response.status_code, attempt)
            if (response.status_code == 429 or response.status_code >= 500) and not last:
                self._sleep(self._delay(attempt, response.headers.get("retry-after")))
                continue
            return self._result(response, action, resource, attempt)

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
