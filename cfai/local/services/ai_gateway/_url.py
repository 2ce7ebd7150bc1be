"""The gateway URL form: ``POST /v1/{account_id}/{gateway_id}/workers-ai/{model}``.

What a client that is not a Worker uses (``https://gateway.ai.cloudflare.com/v1/...``):
``Authorization: Bearer <Cloudflare API token>`` for Workers AI, ``cf-aig-authorization``
for the gateway when it has authentication on, ``cf-aig-*`` headers for per-request
options, and the model inputs as the body. The answer is what REST ``ai/run`` answers (v4
envelope for JSON, raw SSE for streams, raw bytes for binary models) plus ``cf-aig-*``
response headers; the gateway's own refusals (401 code 2009, 429 code 2003) come in the
gateway's body shape.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cfai.local.services._cf import JSON, CloudflareError, api_error, check_token, json_response
from cfai.local.services.ai_gateway import _errors as err
from cfai.local.services.ai_gateway._binding import answer_response
from cfai.local.services.ai_gateway.options import RunOptions

if TYPE_CHECKING:
    from cfai.local.services.ai_gateway import AiGateway


def url_routes(service: AiGateway) -> list[Route]:
    async def run(request: Request) -> Response:
        gateway_id, model = request.path_params["gateway_id"], request.path_params["model"]
        if request.path_params["account_id"] != service.ctx.account_id:
            refusal = err.unknown_gateway(gateway_id)
            return json_response(refusal.body(binding=False), refusal.status)
        if (denied := check_token(request, service.ctx.api_token)) is not None:
            return denied
        try:
            inputs = json.loads(await request.body())
        except ValueError:
            inputs = None
        if not isinstance(inputs, dict):
            return api_error(
                400, 3003, "Request is missing headers or body: body must be a JSON object"
            )
        try:
            answer = await run_in_threadpool(
                service.gateway.handle_run, gateway_id, model, inputs,
                RunOptions.from_headers(request.headers), path=model,
                gateway_auth=request.headers.get("cf-aig-authorization"), trusted=False,
            )  # fmt: skip
        except err.GatewayError as refusal:
            return json_response(refusal.body(binding=False), refusal.status)
        except CloudflareError as upstream:
            return api_error(upstream.status, upstream.code, upstream.message)
        if answer.content_type == JSON and answer.chunks is None:
            body = {"result": answer.result, "success": True, "errors": [], "messages": []}
            return json_response(body, headers=answer.headers)
        return answer_response(answer)

    return [Route("/v1/{account_id}/{gateway_id}/workers-ai/{model:path}", run, methods=["POST"])]
