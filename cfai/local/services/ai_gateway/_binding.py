"""Routes of the AI binding's gateway traffic from workerd (host ``workers-binding.ai``).

workerd's ``cloudflare-internal:ai-api`` sends ``env.AI.run(model, inputs, {gateway})`` as
``POST /ai-gateway/run?version=3``; ``aig-api`` sends ``env.AI.gateway(id).getLog/patchLog``
as ``GET``/``PATCH /ai-gateway/gateways/<id>/logs/<log>`` and ``getUrl`` as
``GET /ai-gateway/gateways/<id>/url/<provider>``. Results go back bare, with the exact
content type (workerd parses only an exact ``application/json``); errors of ``run`` go back
as ``{"internalCode", "name", "description"}``, errors of the log calls as
``{"errors": [{"message"}]}`` (what each side of workerd parses).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from cfai.local.services._cf import CloudflareError, api_error, envelope, json_response
from cfai.local.services.ai_gateway import _errors as err
from cfai.local.services.ai_gateway.gateway import GatewayAnswer
from cfai.local.services.ai_gateway.options import RunOptions, flat_metadata

if TYPE_CHECKING:
    from cfai.local.services.ai_gateway import AiGateway


def answer_response(answer: GatewayAnswer, body: bytes | None = None) -> Response:
    """A gateway answer on the wire: SSE stream or bytes, with its exact content type."""
    headers = {**answer.headers, "content-type": answer.content_type}
    if answer.chunks is not None:
        return StreamingResponse(answer.chunks, media_type=None, headers=headers)
    return Response(
        body if body is not None else answer.body or b"", media_type=None, headers=headers
    )


def binding_routes(service: AiGateway) -> list[Route]:
    async def run(request: Request) -> Response:
        model = request.headers.get("cf-consn-model-id", "")
        try:
            payload = json.loads(await request.body())
        except ValueError:
            payload = None
        if not isinstance(payload, dict) or not isinstance(payload.get("inputs", {}), dict):
            return json_response({"internalCode": 3003, "name": "InferenceUpstreamError",
                                  "description": "Request is missing headers or body: body"}, 400)  # fmt: skip
        options = (payload.get("options") or {}).get("gateway") or {}
        gateway_id = options.get("id")
        if not isinstance(gateway_id, str) or not model:
            missing = "cf-consn-model-id" if not model else "options.gateway.id"
            return json_response({"internalCode": 3003, "name": "InferenceUpstreamError",
                                  "description": f"Request is missing headers or body: {missing}"}, 400)  # fmt: skip
        try:
            answer = await run_in_threadpool(
                service.gateway.handle_run, gateway_id, model, payload.get("inputs", {}),
                RunOptions.from_binding(options), path=model,
            )  # fmt: skip
        except err.GatewayError as refusal:
            return json_response(refusal.body(binding=True), refusal.status)
        except CloudflareError as upstream:
            return json_response(_upstream_body(upstream), upstream.status)
        return answer_response(answer)

    async def log(request: Request) -> Response:
        gw, log_id = request.path_params["gateway_id"], request.path_params["log_id"]
        try:
            if request.method == "GET":
                return json_response({"result": service.store.get_log(gw, log_id)})
            patch = log_patch(await request.body())
            service.store.patch_log(gw, log_id, patch)
        except CloudflareError as e:
            return api_error(e.status, e.code, e.message)
        return envelope(None)

    async def url(request: Request) -> Response:
        gw, provider = request.path_params["gateway_id"], request.path_params["provider"]
        if service.store.get_gateway(gw) is None:
            e = err.gateway_not_found(gw)
            return api_error(e.status, e.code, e.message)
        return json_response({"result": {"url": service.gateway_url(gw, provider)}})

    return [
        Route("/ai-gateway/run", run, methods=["POST"]),
        Route("/ai-gateway/gateways/{gateway_id}/logs/{log_id}", log, methods=["GET", "PATCH"]),
        Route("/ai-gateway/gateways/{gateway_id}/url/{provider}", url, methods=["GET"]),
    ]


def _upstream_body(error: CloudflareError) -> dict[str, Any]:
    binding_body = getattr(error, "binding_body", None)
    if callable(binding_body):
        body: dict[str, Any] = binding_body()
        return body
    return {
        "internalCode": error.code,
        "name": "InferenceUpstreamError",
        "description": error.message,
    }


def log_patch(raw: bytes) -> dict[str, Any]:
    """Validate a `{feedback?, score?, metadata?}` patch (REST PATCH and `patchLog`)."""
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise err.invalid("Request body must be a JSON object") from None
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
