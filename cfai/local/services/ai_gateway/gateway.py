"""A request through a gateway: auth, rate limit, cache, Workers AI, log.

Order, as AI Gateway applies it: the gateway must exist; `cf-aig-authorization` is checked
when the gateway has ``authentication`` on (Worker binding calls are trusted); the rate
limit is counted (a rejected request is not processed, cached or forwarded, but is logged
with status 429); the cache is looked up; the model runs; the answer is cached and logged.

Example::

    gw = GatewayPipeline(store, RateLimiter(), ResponseCache(), ai.run, api_token="t")
    answer = gw.handle_run("gw", "@cf/meta/llama-3.1-8b-instruct", {"prompt": "hi"},
                           RunOptions(cache_ttl=60), path="@cf/meta/llama-3.1-8b-instruct")
    answer.headers["cf-aig-cache-status"]   # "MISS", then "HIT"
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from cfai.catalog import CATALOG
from cfai.local.services.ai_gateway import _errors as err
from cfai.local.services.ai_gateway._records import NewLog
from cfai.local.services.ai_gateway.memory import CacheEntry, RateLimiter, ResponseCache
from cfai.local.services.ai_gateway.options import RunOptions
from cfai.local.services.ai_gateway.state import GatewayStore
from cfai.local.services.frontdoor import ApiError
from cfai.local.services.workers_ai import AiResult, LocalChunks, Quick, Runner


@dataclass(frozen=True)
class Upstream:
    """Where a request through a gateway goes: `provider` (logged), and `call` producing
    the answer (None: Workers AI runs the model on the inputs). `step` is the index of a
    universal-endpoint step (logged as the log's ``step``)."""

    provider: str = "workers-ai"
    call: Callable[[], AiResult] | None = None
    step: int = 0


@dataclass(frozen=True)
class GatewayAnswer:
    """A model result as the gateway hands it on, plus the ``cf-aig-*`` response headers."""

    content_type: str
    body: bytes | None = None
    chunks: Iterator[bytes] | None = None
    usage: Mapping[str, int] | None = None
    result: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class GatewayPipeline:
    """Runs requests through gateways (Workers AI behind them is `run`). `clock` drives
    TTLs, rate windows and timestamps."""

    def __init__(
        self,
        store: GatewayStore,
        limiter: RateLimiter,
        cache: ResponseCache,
        run: Runner,
        *,
        api_token: str,
        clock: Callable[[], float] = time.time,
        quick: Quick | None = None,
    ) -> None:
        self.store, self.limiter, self.cache = store, limiter, cache
        self._run = run
        self._quick_model = quick  # `WorkersAIService.quick` for `run` (None: never)
        self._api_token = api_token
        self.clock = clock

    def handle_run(
        self,
        gateway_id: str,
        model: str,
        inputs: Mapping[str, Any],
        options: RunOptions,
        *,
        path: str,
        gateway_auth: str | None = None,
        trusted: bool = True,
        upstream: Upstream = Upstream(),  # frozen: one shared default is safe
    ) -> GatewayAnswer:
        """Run `model` through `gateway_id`. `gateway_auth` is the `cf-aig-authorization`
        header of an untrusted (URL form) request; `upstream` says where the request goes
        (default: Workers AI runs `model` on `inputs`; the OpenAI-compatible forms pass
        their own call). Raises `GatewayError` for the gateway's own refusals and the
        upstream `ApiError` (e.g. `AiError`) for model failures, after logging them."""
        gateway = self.store.get_gateway(gateway_id)
        if gateway is None:
            raise err.unknown_gateway(gateway_id)
        if not trusted and gateway.get("authentication") and not self.token_ok(gateway_auth):
            raise err.unauthorized()
        started = time.perf_counter()
        now = self.clock()
        request_body = json.dumps(inputs, separators=(",", ":")).encode()
        log = NewLog(
            model=model, path=path, status_code=200, success=True, cached=False, duration=0,
            model_type=_model_type(model), metadata=options.metadata, event_id=options.event_id,
            request_body=request_body, provider=upstream.provider, step=upstream.step,
        )  # fmt: skip
        limit, interval = gateway.get("rate_limiting_limit"), gateway.get("rate_limiting_interval")
        if limit and interval:
            technique = gateway.get("rate_limiting_technique") or "fixed"
            if not self.limiter.admit(
                gateway_id, limit=limit, interval=interval, technique=technique, now=now
            ):
                refusal = err.rate_limited()
                self._log(gateway, options, _failed(log, refusal, started), now)
                raise refusal
        streaming = inputs.get("stream") is True
        ttl = options.cache_ttl if options.cache_ttl is not None else gateway.get("cache_ttl")
        if not ttl and options.cache_key:
            ttl = err.CACHE_KEY_DEFAULT_TTL
        use_cache = bool(ttl) and not options.skip_cache and not streaming
        key = (options.cache_key or _cache_key(path, model, inputs)) if use_cache else ""
        if use_cache and (hit := self.cache.get(gateway_id, key, now=now)) is not None:
            answer = GatewayAnswer(hit.content_type, hit.body, None, hit.usage, hit.result)
            log = _succeeded(log, answer, started, cached=True)
            return self._finish(gateway, options, log, answer, now, "HIT")
        try:
            result = upstream.call() if upstream.call is not None else self._run(model, inputs)
        except ApiError as failure:
            self._log(gateway, options, _failed(log, failure, started), now)
            raise
        answer = GatewayAnswer(
            result.content_type, result.body, result.chunks, result.usage, result.result
        )
        if use_cache and answer.chunks is None and answer.body is not None:
            entry = CacheEntry(
                answer.content_type, answer.body, answer.usage, answer.result, now + float(ttl or 0)
            )
            self.cache.put(gateway_id, key, entry)
        return self._finish(
            gateway, options, _succeeded(log, answer, started, cached=False), answer, now, "MISS"
        )

    def quick(self, gateway_id: str, model: str, inputs: Mapping[str, Any]) -> bool:
        """Whether `handle_run` of `model` through `gateway_id` does no I/O: the model's
        run does none (the `quick` the pipeline was made with) and the gateway queues its log
        rather than writing it (no log cap: `GatewayStore.insert_log`); a gateway is read
        from memory."""
        if self._quick_model is None or not self._quick_model(model, inputs):
            return False
        gateway = self.store.get_gateway(gateway_id)
        return gateway is not None and not gateway.get("log_management")

    def forget(self, gateway_id: str) -> None:
        """Drop a gateway's volatile state (cache, rate-limit counters)."""
        self.cache.drop_gateway(gateway_id)
        self.limiter.drop_gateway(gateway_id)

    def token_ok(self, header: str | None) -> bool:
        """Whether `header` is ``Bearer <the API token>`` (what Workers AI and an
        authenticated gateway accept)."""
        if not header or not header.lower().startswith("bearer "):
            return False
        return hmac.compare_digest(header[7:].strip().encode(), self._api_token.encode())

    def _finish(
        self,
        gateway: Mapping[str, Any],
        options: RunOptions,
        log: NewLog,
        answer: GatewayAnswer,
        now: float,
        status: str,
    ) -> GatewayAnswer:
        headers = {"cf-aig-cache-status": status}
        if options.event_id:
            headers["cf-aig-event-id"] = options.event_id
        local = isinstance(answer.chunks, LocalChunks)
        if local and answer.chunks is not None:
            # Made at once: read it here, in the caller's worker thread, and log it whole in
            # one row (not a row, then an update once the stream was sent).
            events = list(answer.chunks)
            body = b"".join(events)
            log = replace(log, response_body=body, response_size=len(body))
            if answer.usage is None and (usage := _sse_usage(body)) is not None:
                tokens = (usage.get("prompt_tokens"), usage.get("completion_tokens"))
                log = replace(log, tokens_in=tokens[0], tokens_out=tokens[1])
            answer = replace(answer, chunks=LocalChunks(events))
        log_id = self._log(gateway, options, log, now)
        if log_id is not None:
            headers["cf-aig-log-id"] = log_id
            if answer.chunks is not None and not local:
                answer = replace(answer, chunks=self._logged_stream(log_id, answer.chunks))
        return replace(answer, headers=headers)

    def _log(
        self, gateway: Mapping[str, Any], options: RunOptions, log: NewLog, now: float
    ) -> str | None:
        collect = (
            gateway.get("collect_logs") if options.collect_log is None else options.collect_log
        )
        if not collect:
            return None
        cap, strategy = gateway.get("log_management"), gateway.get("log_management_strategy")
        return self.store.insert_log(gateway["id"], log, now=now, cap=cap, strategy=strategy)

    def _logged_stream(self, log_id: str, chunks: Iterator[bytes]) -> Iterator[bytes]:
        started = time.perf_counter()
        kept, size = bytearray(), 0
        try:
            for chunk in chunks:
                size += len(chunk)
                if len(kept) < err.BODY_LIMIT:
                    kept += chunk
                yield chunk
        finally:
            duration = int((time.perf_counter() - started) * 1000)
            body = bytes(kept)
            self.store.finish_stream_log(
                log_id, body=body, size=size, duration=duration, usage=_sse_usage(body)
            )


def _cache_key(path: str, model: str, inputs: Mapping[str, Any]) -> str:
    # The path keeps an OpenAI-shaped answer and a native one for the same model apart.
    canonical = json.dumps(inputs, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{path}\n{model}\n{canonical}".encode()).hexdigest()


def _model_type(model: str) -> str | None:
    spec = CATALOG.get(model)
    return None if spec is None else str(spec.task)


def _elapsed(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


def _failed(log: NewLog, error: ApiError, started: float) -> NewLog:
    body = json.dumps({"errors": [{"code": error.code, "message": error.message}]}).encode()
    return replace(
        log, status_code=error.status, success=False, duration=_elapsed(started),
        response_content_type="application/json", response_body=body,
    )  # fmt: skip


def _succeeded(log: NewLog, answer: GatewayAnswer, started: float, *, cached: bool) -> NewLog:
    usage = answer.usage or {}
    return replace(
        log, cached=cached, duration=_elapsed(started), response_content_type=answer.content_type,
        response_body=answer.body or b"", tokens_in=usage.get("prompt_tokens"),
        tokens_out=usage.get("completion_tokens"),
    )  # fmt: skip


def _sse_usage(body: bytes) -> Mapping[str, int] | None:
    """The `usage` of the last SSE event that carries one."""
    for line in reversed(body.decode("utf-8", "replace").splitlines()):
        if line.startswith("data:") and '"usage"' in line:
            try:
                usage = json.loads(line[5:].strip()).get("usage")
            except (ValueError, AttributeError):
                continue
            if isinstance(usage, dict):
                return usage
    return None
