"""The gateway URL form: ``POST /v1/{account_id}/{gateway_id}/workers-ai/{model}``.

What a client that is not a Worker uses (``https://gateway.ai.cloudflare.com/v1/...``):
``Authorization: Bearer <Cloudflare API token>`` for Workers AI (checked by the front
door, after the account: a gateway of another account is not found), ``cf-aig-authorization``
for the gateway when it has authentication on, ``cf-aig-*`` headers for per-request
options, and the model inputs as the body. The answer is what REST ``ai/run`` answers (v4
envelope for JSON, raw SSE for streams, raw bytes for binary models) plus ``cf-aig-*``
response headers; the gateway's own refusals (401 code 2009, 429 code 2003) come in the
gateway's body shape.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from cfai.local.services.ai_gateway import _errors as err
from cfai.local.services.ai_gateway._binding import answer_response
from cfai.local.services.ai_gateway.gateway import GatewayPipeline
from cfai.local.services.ai_gateway.options import RunOptions
from cfai.local.services.frontdoor import JSON, ApiError, ApiToken, Call, Endpoint, json_response
from cfai.local.services.workers_ai import RUN_BODY

PATH = "/v1/{account_id}/{gateway_id}/workers-ai/{model:path}"


def _other_account(params: Any) -> ApiError:
    return err.unknown_gateway(str(params.get("gateway_id", "")))


def url_endpoints(pipeline: GatewayPipeline) -> list[Endpoint]:
    """``POST /v1/{account}/{gateway}/workers-ai/{model}`` over `pipeline`."""

    async def run(call: Call) -> Any:
        gateway_id, model = call.params["gateway_id"], call.params["model"]
        answer = await run_in_threadpool(
            pipeline.handle_run, gateway_id, model, call.body,
            RunOptions.from_headers(call.headers), path=model,
            gateway_auth=call.headers.get("cf-aig-authorization"), trusted=False,
        )  # fmt: skip
        if answer.content_type == JSON and answer.chunks is None:
            body = {"result": answer.result, "success": True, "errors": [], "messages": []}
            return json_response(body, headers=answer.headers)
        response: Response = answer_response(answer)
        return response

    auth = ApiToken(wrong_account=_other_account, account_first=True)
    return [Endpoint("POST", PATH, run, auth, body=RUN_BODY)]
