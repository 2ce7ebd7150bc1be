"""Routes of the Workers AI service.

Binding (host ``workers-binding.ai``, what workerd's ``env.AI.run`` sends, with an ``ai``
binding token): ``POST /run?version=3`` with ``{"inputs", "options"}`` and header
``cf-consn-model-id``; answered with the bare result (content type exactly
``application/json``), an SSE stream, or the binary bytes; errors as
``{"internalCode", "name", "description"}``, which workerd turns into
``InferenceUpstreamError("<internalCode>: <description>")``.

REST (API token): ``POST /client/v4/accounts/{account_id}/ai/run/{model}`` answers the v4
envelope for JSON results, the raw SSE stream or raw bytes otherwise;
``GET .../ai/models/search`` lists the catalog; the OpenAI-compatible ``.../ai/v1`` routes
live in `compat`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from cfai.catalog import CATALOG, ModelSpec, Task
from cfai.local.services.frontdoor import (
    JSON,
    ApiError,
    ApiToken,
    BindingToken,
    Call,
    Endpoint,
    JsonBody,
    Shape,
    envelope,
)

from . import compat
from ._core import AiResult, Runner, bad_body, bad_input, body_too_large

__all__ = ["BINDING_HOST", "MAX_RUN_BODY", "RUN_BODY", "endpoints", "raw_response"]

BINDING_HOST = "workers-binding.ai"
ACCOUNT = "/client/v4/accounts/{account_id}/ai"
MODEL_HEADER = "cf-consn-model-id"
# Images and audio travel base64 inside the JSON inputs; this bounds what the emulator
# buffers for one run (Workers AI's own request limit is not published).
MAX_RUN_BODY = 32 * 1024 * 1024
RUN_BODY = JsonBody(bad_body, limit=MAX_RUN_BODY, too_large=body_too_large, object_only=True)
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


def endpoints(run: Runner) -> list[Endpoint]:
    """The binding route and the REST routes, over `run` (`WorkersAIService.run`)."""

    async def binding_run(call: Call) -> Response:
        req_id = {"cf-ai-req-id": str(uuid.uuid4())}
        try:
            model = call.headers.get(MODEL_HEADER)
            if not model:
                raise bad_input(MODEL_HEADER, "header required")
            inputs = call.body.get("inputs")
            if not isinstance(inputs, dict):
                raise bad_input("inputs", "must be an object")
            result = await run_in_threadpool(run, model, inputs)
        except ApiError as e:
            e.headers.update(req_id)
            raise
        return raw_response(result, req_id)

    async def rest_run(call: Call) -> Any:
        inputs = dict(call.body)
        inputs.pop("options", None)  # rejectIfBusy: the emulator is never busy
        result = await run_in_threadpool(run, call.params["model"], inputs)
        if result.content_type == JSON and result.chunks is None:
            return result.result
        return raw_response(result)

    async def search(call: Call) -> Response:
        q = call.query
        task, text, author = (q.get(k, "").lower() for k in ("task", "search", "author"))
        try:
            page, per_page = max(1, int(q.get("page", "1"))), max(1, int(q.get("per_page", "50")))
        except ValueError:
            raise ApiError(400, 7003, "page and per_page must be integers") from None
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

    binding = BindingToken("ai")
    rest = ApiToken()
    return [
        Endpoint("POST", "/run", binding_run, binding, Shape.AI, RUN_BODY, host=BINDING_HOST),
        Endpoint("POST", f"{ACCOUNT}/run/{{model:path}}", rest_run, rest, body=RUN_BODY),
        Endpoint("GET", f"{ACCOUNT}/models/search", search, rest),
        Endpoint("POST", f"{ACCOUNT}/v1/chat/completions", compat.chat(run), rest, body=RUN_BODY),
        Endpoint("POST", f"{ACCOUNT}/v1/embeddings", compat.embeddings(run), rest, body=RUN_BODY),
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
