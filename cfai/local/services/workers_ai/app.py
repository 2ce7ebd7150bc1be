"""Routes of the Workers AI service.

Binding (host ``workers-binding.ai``, what workerd's ``env.AI.run`` sends):
``POST /run?version=3`` with ``{"inputs", "options"}`` and header ``cf-consn-model-id``;
answered with the bare result (content type exactly ``application/json``), an SSE stream,
or the binary bytes; errors as ``{"internalCode", "name", "description"}``, which workerd
turns into ``InferenceUpstreamError("<internalCode>: <description>")``.

REST (bearer token): ``POST /client/v4/accounts/{account_id}/ai/run/{model}`` answers the
v4 envelope for JSON results, the raw SSE stream or raw bytes otherwise;
``GET .../ai/models/search`` lists the catalog; the OpenAI-compatible ``.../ai/v1`` routes
live in `compat`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from cfai.catalog import CATALOG, ModelSpec, Task
from cfai.local.services._cf import JSON, api_error, check_token, envelope, json_response

from . import compat
from ._core import AiError, AiResult, bad_input

if TYPE_CHECKING:
    from . import WorkersAI

ACCOUNT = "/client/v4/accounts/{account_id}/ai"
MODEL_HEADER = "cf-consn-model-id"
_TASK_NAMES = {
    Task.TEXT_GENERATION: "Text Generation",
    Task.TEXT_EMBEDDINGS: "Text Embeddings",
    Task.TEXT_TO_IMAGE: "Text-to-Image",
    Task.IMAGE_TO_TEXT: "Image-to-Text",
    Task.SPEECH_RECOGNITION: "Automatic Speech Recognition",
    Task.TEXT_TO_SPEECH: "Text-to-Speech",
    Task.TRANSLATION: "Translation",
    Task.TEXT_CLASSIFICATION: "Text Classification",
}


def raw_response(result: AiResult, headers: Mapping[str, str] | None = None) -> Response:
    """The result as the binding sends it: bare JSON, an SSE stream, or binary bytes."""
    head = {**(headers or {}), "content-type": result.content_type}
    if result.chunks is not None:
        return StreamingResponse(result.chunks, headers={**head, "cache-control": "no-cache"})
    return Response(result.body, headers=head)


async def read_object(request: Request, field: str) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError:
        raise bad_input(field, "body is not valid JSON") from None
    if not isinstance(body, dict):
        raise bad_input(field, "must be a JSON object")
    return body


def binding_routes(service: WorkersAI) -> list[BaseRoute]:
    async def run(request: Request) -> Response:
        req_id = {"cf-ai-req-id": str(uuid.uuid4())}
        try:
            model = request.headers.get(MODEL_HEADER)
            if not model:
                raise bad_input(MODEL_HEADER, "header required")
            body = await read_object(request, "body")
            inputs = body.get("inputs")
            if not isinstance(inputs, dict):
                raise bad_input("inputs", "must be an object")
            result = await run_in_threadpool(service.run, model, inputs)
        except AiError as e:
            return json_response(e.binding_body(), e.status, req_id)
        return raw_response(result, req_id)

    return [Route("/run", run, methods=["POST"])]


def authed(
    service: WorkersAI, handler: Callable[[Request], Awaitable[Response]]
) -> Callable[[Request], Awaitable[Response]]:
    """Bearer-token check, account check, and `AiError` -> v4 error envelope."""

    async def endpoint(request: Request) -> Response:
        denied = check_token(request, service.ctx.api_token)
        if denied is not None:
            return denied
        if request.path_params["account_id"] != service.ctx.account_id:
            return api_error(403, 10000, "Authentication error")
        try:
            return await handler(request)
        except AiError as e:
            return api_error(e.status, e.internal_code, e.message)

    return endpoint


def rest_routes(service: WorkersAI) -> list[BaseRoute]:
    async def run(request: Request) -> Response:
        inputs = await read_object(request, "body")
        inputs.pop("options", None)  # rejectIfBusy: the emulator is never busy
        result = await run_in_threadpool(service.run, request.path_params["model"], inputs)
        if result.content_type == JSON and result.chunks is None:
            return envelope(result.result)
        return raw_response(result)

    async def search(request: Request) -> Response:
        q = request.query_params
        task, text, author = (q.get(k, "").lower() for k in ("task", "search", "author"))
        try:
            page, per_page = max(1, int(q.get("page", "1"))), max(1, int(q.get("per_page", "50")))
        except ValueError:
            return api_error(400, 7003, "page and per_page must be integers")
        found = [
            _describe(spec)
            for spec in CATALOG.values()
            if (not task or task in (spec.task.value, _TASK_NAMES[spec.task].lower()))
            and (not author or spec.name.split("/")[1].lower() == author)
            and (not text or text in spec.name.lower())
        ]
        chunk = found[(page - 1) * per_page : page * per_page]
        info = {"page": page, "per_page": per_page, "count": len(chunk), "total_count": len(found)}
        return envelope(chunk, result_info=info)

    return [
        Route(f"{ACCOUNT}/run/{{model:path}}", authed(service, run), methods=["POST"]),
        Route(f"{ACCOUNT}/models/search", authed(service, search), methods=["GET"]),
        Route(
            f"{ACCOUNT}/v1/chat/completions",
            authed(service, compat.chat(service)),
            methods=["POST"],
        ),
        Route(
            f"{ACCOUNT}/v1/embeddings",
            authed(service, compat.embeddings(service)),
            methods=["POST"],
        ),
    ]


def _describe(spec: ModelSpec) -> dict[str, Any]:
    props: list[dict[str, Any]] = []
    if spec.beta:
        props.append({"property_id": "beta", "value": "true"})
    if spec.context_window is not None:
        props.append({"property_id": "context_window", "value": str(spec.context_window)})
    if spec.dimensions is not None:
        props.append({"property_id": "dimensions", "value": str(spec.dimensions)})
    if spec.streams:
        props.append({"property_id": "streaming", "value": "true"})
    props += [
        {
            "property_id": "price",
            "value": [{"unit": f"per {p.per} {p.unit}", "price": p.usd, "currency": "USD"}],
        }
        for p in spec.prices
    ]
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, spec.name)),
        "source": 1,
        "name": spec.name,
        "description": f"{_TASK_NAMES[spec.task]} model {spec.name} (cfai stand-in)",
        "task": {
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, spec.task.value)),
            "name": _TASK_NAMES[spec.task],
            "description": spec.task.value,
        },
        "tags": [],
        "properties": props,
    }
