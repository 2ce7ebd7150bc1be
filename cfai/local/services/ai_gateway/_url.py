"""The gateway URL forms (``https://gateway.ai.cloudflare.com/v1/{account}/{gateway}/...``).

What a client that is not a Worker uses, in the forms Cloudflare documents
(https://developers.cloudflare.com/ai-gateway/usage/providers/workersai/,
.../usage/chat-completion/, .../usage/universal/):

- ``POST .../workers-ai/{model}``: the model inputs; answered as REST ``ai/run`` answers
  (v4 envelope for JSON, raw SSE for streams, raw bytes for binary models);
- ``POST .../workers-ai/v1/chat/completions`` and ``.../workers-ai/v1/embeddings``: the
  OpenAI-compatible bodies with ``model: "@cf/..."``, answered in OpenAI's shapes;
- ``POST .../compat/chat/completions`` (and ``.../compat/embeddings``): the unified
  OpenAI-compatible endpoint, ``model: "{provider}/{model}"`` such as
  ``workers-ai/@cf/meta/llama-3.1-8b-instruct``;
- ``POST /v1/{account}/{gateway}``: the universal endpoint, a JSON array of steps
  ``{provider, endpoint, headers, query}`` tried in order until one succeeds; the answer
  carries ``cf-aig-step`` (the index of the step that answered).

``Authorization: Bearer <Cloudflare API token>`` authenticates Workers AI (the front door
checks it, after the account: a gateway of another account is not found; on the universal
endpoint each step carries its own in ``headers``), ``cf-aig-authorization`` the gateway
when it has authentication on, ``cf-aig-*`` headers set per-request options. Every request
is logged with the provider, the model and the path after the provider (``v1/chat/...``),
never a bogus model. The local platform reaches no third-party provider: a step or model
of another provider fails as an unreachable provider does (502, code 2011), and on the
universal endpoint the next step is tried.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from functools import partial
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from cfai.catalog import Catalog
from cfai.local.services.ai_gateway import _errors as err
from cfai.local.services.ai_gateway._binding import answer_response
from cfai.local.services.ai_gateway.gateway import GatewayAnswer, GatewayPipeline, Upstream
from cfai.local.services.ai_gateway.options import RunOptions
from cfai.local.services.frontdoor import (
    JSON,
    ApiError,
    ApiToken,
    Call,
    Endpoint,
    Open,
    json_response,
)
from cfai.local.services.workers_ai import (
    OPENAI_COMPAT,
    RUN_BODY,
    AiResult,
    Runner,
    bad_input,
    on_loop,
)

ROOT = "/v1/{account_id}/{gateway_id}"
WORKERS_AI = "workers-ai"
# The universal endpoint takes an array of steps (or one step object).
STEPS_BODY = replace(RUN_BODY, object_only=False)


def _other_account(params: Any) -> ApiError:
    return err.unknown_gateway(str(params.get("gateway_id", "")))


def url_endpoints(
    pipeline: GatewayPipeline,
    run: Runner,
    account_id: str,
    catalog: Callable[[], Catalog],
) -> list[Endpoint]:
    """The gateway URL forms over `pipeline`; `run` is Workers AI (`WorkersAIService.run`),
    `catalog` the models it answers (looked up per request, as `run` is)."""

    async def provider_path(call: Call) -> Response:
        gateway_id, path = call.params["gateway_id"], call.params["path"]
        args = (pipeline, run, catalog, gateway_id, WORKERS_AI, path, call.body, call.headers)
        # A text stand-in's run on the event loop, as on the binding (`on_loop`).
        if on_loop(partial(pipeline.quick, gateway_id), call.headers, path, call.body):
            answer, openai = _through(*args)
        else:
            answer, openai = await run_in_threadpool(_through, *args)
        return _respond(answer, openai)

    async def compat(call: Call) -> Response:
        gateway_id, operation = call.params["gateway_id"], call.params["operation"]
        model = call.body.get("model")
        provider = model.split("/", 1)[0] if isinstance(model, str) and "/" in model else ""
        answer, openai = await run_in_threadpool(
            _through, pipeline, run, catalog, gateway_id, provider or WORKERS_AI, f"v1/{operation}",
            call.body, call.headers,
        )  # fmt: skip
        return _respond(answer, openai)

    async def universal(call: Call) -> Response:
        gateway_id = call.params["gateway_id"]
        if call.params["account_id"] != account_id:
            raise err.unknown_gateway(gateway_id)
        steps = call.body if isinstance(call.body, list) else [call.body]
        if not steps or not all(_is_step(s) for s in steps):
            raise bad_input("body", "a step {provider, endpoint, headers, query} or a "
                            "non-empty array of them")  # fmt: skip
        failure: ApiError | None = None
        for index, step in enumerate(steps):
            headers = {**_lower(call.headers), **_lower(step.get("headers") or {})}
            try:
                answer, openai = await run_in_threadpool(
                    _through, pipeline, run, catalog, gateway_id, step["provider"],
                    step["endpoint"].lstrip("/"), step["query"], headers, index,
                )  # fmt: skip
            except err.GatewayError as refusal:
                if refusal.code != err.UNREACHABLE:
                    raise  # the gateway's own refusal (auth, rate limit) ends the request
                failure = refusal
            except ApiError as refusal:
                failure = refusal
            else:
                response = _respond(answer, openai)
                response.headers["cf-aig-step"] = str(index)
                return response
        assert failure is not None
        failure.headers["cf-aig-step"] = str(len(steps) - 1)
        raise failure

    auth = ApiToken(wrong_account=_other_account, account_first=True)
    return [
        Endpoint("POST", ROOT + "/workers-ai/{path:path}", provider_path, auth, body=RUN_BODY),
        Endpoint("POST", ROOT + "/compat/{operation:path}", compat, auth, body=RUN_BODY),
        # Open: each step carries its provider's credentials; checked per step below. With
        # and without the trailing slash (`getUrl()` answers the universal URL with one).
        Endpoint("POST", ROOT, universal, Open(), body=STEPS_BODY),
        Endpoint("POST", ROOT + "/", universal, Open(), body=STEPS_BODY),
    ]


def _through(
    pipeline: GatewayPipeline,
    run: Runner,
    catalog: Callable[[], Catalog],
    gateway_id: str,
    provider: str,
    endpoint: str,
    body: Mapping[str, Any],
    headers: Mapping[str, str],
    step: int = 0,
) -> tuple[GatewayAnswer, bool]:
    """One request to `provider`'s `endpoint` through the gateway: the answer, and whether
    it is OpenAI-shaped (``v1/...`` endpoints) rather than Workers AI's own."""
    options = RunOptions.from_headers(headers)
    gateway_auth = headers.get("cf-aig-authorization")
    token = headers.get("authorization")
    openai = endpoint.startswith("v1/")
    model = str(body.get("model") or "") if openai else endpoint
    model = model.removeprefix(f"{provider}/")

    def call() -> AiResult:
        if provider != WORKERS_AI:
            raise err.unreachable_provider(provider)
        if not pipeline.token_ok(token):
            raise ApiError(401, 10000, "Authentication error")
        if not openai:
            return run(model, body)
        operation = OPENAI_COMPAT.get(endpoint.removeprefix("v1/"))
        if operation is None:
            raise ApiError(404, 7003, f"No route for that URI: POST .../{provider}/{endpoint}")
        return operation(run, body, catalog())

    upstream = Upstream(provider=provider, call=call, step=step)
    answer = pipeline.handle_run(
        gateway_id, model, body, options, path=endpoint, gateway_auth=gateway_auth,
        trusted=False, upstream=upstream,
    )  # fmt: skip
    return answer, openai


def _respond(answer: GatewayAnswer, openai: bool) -> Response:
    if answer.content_type == JSON and answer.chunks is None and not openai:
        body = {"result": answer.result, "success": True, "errors": [], "messages": []}
        return json_response(body, headers=answer.headers)
    response: Response = answer_response(answer)
    return response


def _is_step(step: Any) -> bool:
    return (
        isinstance(step, dict)
        and isinstance(step.get("provider"), str)
        and isinstance(step.get("endpoint"), str)
        and isinstance(step.get("query"), dict)
        and isinstance(step.get("headers", {}), dict)
    )


def _lower(headers: Mapping[str, Any]) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in headers.items()}
