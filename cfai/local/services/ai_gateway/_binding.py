"""Routes of the AI binding's gateway traffic from workerd (host ``workers-binding.ai``,
with an ``ai`` binding token).

workerd's ``cloudflare-internal:ai-api`` sends ``env.AI.run(model, inputs, {gateway})`` as
``POST /ai-gateway/run?version=3``; ``aig-api`` sends ``env.AI.gateway(id).getLog/patchLog``
as ``GET``/``PATCH /ai-gateway/gateways/<id>/logs/<log>`` and ``getUrl`` as
``GET /ai-gateway/gateways/<id>/url/<provider>``. Results go back bare, with the exact
content type (workerd parses only an exact ``application/json``); errors of ``run`` go back
as ``{"internalCode", "name", "description"}``, errors of the log calls as
``{"errors": [{"message"}]}`` (what each side of workerd parses).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from cfai.local.services.ai_gateway import _errors as err
from cfai.local.services.ai_gateway.gateway import GatewayAnswer, GatewayPipeline
from cfai.local.services.ai_gateway.options import RunOptions, flat_metadata
from cfai.local.services.frontdoor import (
    BindingToken,
    Call,
    Endpoint,
    JsonBody,
    Shape,
    envelope,
    json_response,
)
from cfai.local.services.workers_ai import RUN_BODY, AiError, on_loop, stream_response

BINDING_HOST = "workers-binding.ai"
LOG_PATCH_BODY = JsonBody(
    lambda why: err.invalid("Request body must be a JSON object"), empty={}, object_only=True
)


def _missing(what: str) -> AiError:
    return AiError(400, 3003, f"Request is missing headers or body: {what}")


def answer_response(answer: GatewayAnswer, body: bytes | None = None) -> Response:
    """A gateway answer on the wire: SSE stream or bytes, with its exact content type."""
    headers = {**answer.headers, "content-type": answer.content_type}
    if answer.chunks is not None:
        return stream_response(answer.chunks, headers)
    return Response(
        body if body is not None else answer.body or b"", media_type=None, headers=headers
    )


def binding_endpoints(
    pipeline: GatewayPipeline, url_of: Callable[[str, str], str]
) -> list[Endpoint]:
    """The binding's gateway routes; `url_of(gateway, provider)` answers `getUrl`."""

    async def run(call: Call) -> Response:
        model = call.headers.get("cf-consn-model-id", "")
        inputs = call.body.get("inputs", {})
        if not isinstance(inputs, dict):
            raise _missing("body")
        options = call.body.get("options") or {}
        options = options.get("gateway") if isinstance(options, dict) else None
        options = options if isinstance(options, dict) else {}
        gateway_id = options.get("id")
        if not isinstance(gateway_id, str) or not model:
            raise _missing("cf-consn-model-id" if not model else "options.gateway.id")
        run_options = RunOptions.from_binding(options)
        if on_loop(partial(pipeline.quick, gateway_id), call.headers, model, inputs):
            answer = pipeline.handle_run(gateway_id, model, inputs, run_options, path=model)
        else:
            answer = await run_in_threadpool(
                pipeline.handle_run, gateway_id, model, inputs, run_options, path=model
            )
        return answer_response(answer)

    async def get_log(call: Call) -> Response:
        gw, log_id = call.params["gateway_id"], call.params["log_id"]
        return json_response({"result": pipeline.store.get_log(gw, log_id, metadata_text=False)})

    async def patch_log(call: Call) -> Response:
        gw, log_id = call.params["gateway_id"], call.params["log_id"]
        pipeline.store.patch_log(gw, log_id, log_patch(call.body))
        return envelope(None)

    async def url(call: Call) -> Response:
        gw, provider = call.params["gateway_id"], call.params["provider"]
        if pipeline.store.get_gateway(gw) is None:
            raise err.gateway_not_found(gw)
        return json_response({"result": {"url": url_of(gw, provider)}})

    ai = BindingToken("ai")
    log = "/ai-gateway/gateways/{gateway_id}/logs/{log_id}"

    def route(method: str, path: str, handler: Any, shape: Shape, body: Any = None) -> Endpoint:
        if body is None:
            return Endpoint(method, path, handler, ai, shape, host=BINDING_HOST)
        return Endpoint(method, path, handler, ai, shape, body, host=BINDING_HOST)

    return [
        route("POST", "/ai-gateway/run", run, Shape.AI, RUN_BODY),
        route("GET", log, get_log, Shape.ENVELOPE),
        route("PATCH", log, patch_log, Shape.ENVELOPE, LOG_PATCH_BODY),
        route("GET", "/ai-gateway/gateways/{gateway_id}/url/{provider}", url, Shape.ENVELOPE),
    ]


def log_patch(body: Any) -> dict[str, Any]:
    """Validate a `{feedback?, score?, metadata?}` patch (REST PATCH and `patchLog`)."""
    if not isinstance(body, dict):
        raise err.invalid("Request body must be a JSON object")
    patch: dict[str, Any] = {}
    if "feedback" in body:
        if body["feedback"] not in (-1, 1, None) or isinstance(body["feedback"], bool):
            raise err.invalid("feedback: must be -1, 1 or null")
        patch["feedback"] = body["feedback"]
    if "score" in body:
        score = body["score"]
        if score is not None and (
            isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 100
        ):
            raise err.invalid("score: must be a number from 0 to 100 or null")
        patch["score"] = score
    if "metadata" in body:
        if body["metadata"] is not None and not isinstance(body["metadata"], dict):
            raise err.invalid("metadata: must be an object of flat values or null")
        patch["metadata"] = flat_metadata(body["metadata"])
    return patch
