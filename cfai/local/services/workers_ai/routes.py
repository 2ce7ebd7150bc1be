"""Routes of the Workers AI service.

Binding (host ``workers-binding.ai``, what workerd's ``env.AI.run`` sends, with an ``ai``
binding token): ``POST /run?version=3`` with ``{"inputs", "options"}`` and header
``cf-consn-model-id``; answered with the bare result (content type exactly
``application/json``), an SSE stream, or the binary bytes; errors as
``{"internalCode", "name", "description"}``, which workerd turns into
``InferenceUpstreamError("<internalCode>: <description>")``.

A model whose input is a binary body (nova-3's ``audio: {body, contentType}``) reaches the
binding as workerd's ai-api.ts sends a ReadableStream input: the raw body with its content
type, the other inputs JSON-encoded in the ``userInputs`` query parameter (and never
through a gateway). ``GET /ai-api/models/search`` answers ``env.AI.models()``.

REST (API token): ``POST /client/v4/accounts/{account_id}/ai/run/{model}`` answers the v4
envelope for JSON results, the raw SSE stream or raw bytes otherwise; a binary-input model
takes the raw audio body with its ``Content-Type``, its options in the query string (the
nova-3 model page's curl example). ``GET .../ai/models/search`` lists the catalog in pages;
the OpenAI-compatible ``.../ai/v1`` routes (chat completions, embeddings, responses) live
in `compat`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from cfai.catalog import AudioInput, Catalog
from cfai.catalog.search import search_object
from cfai.local.services.frontdoor import (
    JSON,
    ApiError,
    ApiToken,
    BindingToken,
    Call,
    Endpoint,
    JsonBody,
    RawMedia,
    Shape,
    envelope,
    json_response,
    loads,
)

from . import compat
from ._core import (
    AiResult,
    Quick,
    Runner,
    bad_body,
    bad_input,
    body_too_large,
    on_loop,
    stream_response,
)

__all__ = ["BINDING_HOST", "MAX_RUN_BODY", "RUN_BODY", "endpoints", "raw_response"]

BINDING_HOST = "workers-binding.ai"
ACCOUNT = "/client/v4/accounts/{account_id}/ai"
MODEL_HEADER = "cf-consn-model-id"
# Images and audio travel base64 inside the JSON inputs; this bounds what the emulator
# buffers for one run (Workers AI's own request limit is not published).
MAX_RUN_BODY = 32 * 1024 * 1024
RUN_BODY = JsonBody(bad_body, limit=MAX_RUN_BODY, too_large=body_too_large, object_only=True)
# Audio travels as the request body itself (what a ReadableStream input becomes).
_MEDIA = ("audio/", "video/", "application/octet-stream")
MEDIA_RUN_BODY = JsonBody(
    bad_body, limit=MAX_RUN_BODY, too_large=body_too_large, object_only=True, raw_types=_MEDIA
)
# Options of /ai/run that are not model inputs (Cloudflare's OpenAPI for ai/run).
_RUN_OPTIONS = ("queueRequest", "tags", "version", "userInputs", "returnRawResponse")


def raw_response(result: AiResult, headers: Mapping[str, str] | None = None) -> Response:
    """The result as the binding sends it: bare JSON, an SSE stream, or binary bytes."""
    head = {**(headers or {}), "content-type": result.content_type}
    if result.chunks is not None:
        return stream_response(result.chunks, {**head, "cache-control": "no-cache"})
    return Response(result.body, headers=head)


def _scalar(text: str) -> Any:
    return {"true": True, "false": False}.get(text, text)


def media_inputs(
    catalog: Catalog, model: str, media: RawMedia, options: dict[str, Any]
) -> dict[str, Any]:
    """The inputs of a run whose body is the audio itself: ``audio: {body, contentType}``
    plus `options` (the other inputs); 3003 for a model that takes no binary body."""
    spec = catalog.get(model)
    if spec is not None and spec.audio_input is not AudioInput.BINARY:
        raise bad_input("body", f"{model} takes JSON inputs, not a {media.content_type} body")
    return {**options, "audio": {"body": media.data, "contentType": media.content_type}}


def endpoints(run: Runner, catalog: Catalog, *, quick: Quick | None = None) -> list[Endpoint]:
    """The binding routes and the REST routes, over `run` (`WorkersAIService.run`) and the
    models of `catalog`; a binding run `quick` vouches for is made on the event loop
    (`on_loop`), every other one in a worker thread."""

    async def binding_run(call: Call) -> Response:
        req_id = {"cf-ai-req-id": str(uuid.uuid4())}
        try:
            model = call.headers.get(MODEL_HEADER)
            if not model:
                raise bad_input(MODEL_HEADER, "header required")
            if isinstance(call.body, RawMedia):
                try:
                    others = loads(call.query.get("userInputs") or "{}")
                except ValueError:
                    raise bad_input("userInputs", "must be a JSON object") from None
                if not isinstance(others, dict):
                    raise bad_input("userInputs", "must be a JSON object")
                inputs = media_inputs(catalog, model, call.body, others)
            else:
                inputs = call.body.get("inputs")
            if not isinstance(inputs, dict):
                raise bad_input("inputs", "must be an object")
            if on_loop(quick, call.headers, model, inputs):
                result = run(model, inputs)
            else:
                result = await run_in_threadpool(run, model, inputs)
        except ApiError as e:
            e.headers.update(req_id)
            raise
        return raw_response(result, req_id)

    async def rest_run(call: Call) -> Any:
        if isinstance(call.body, RawMedia):
            options = {k: _scalar(v) for k, v in call.query.items() if k not in _RUN_OPTIONS}
            inputs = media_inputs(catalog, call.params["model"], call.body, options)
        else:
            inputs = dict(call.body)
        inputs.pop("options", None)  # rejectIfBusy: the emulator is never busy
        result = await run_in_threadpool(run, call.params["model"], inputs)
        if result.content_type == JSON and result.chunks is None:
            return result.result
        return raw_response(result)

    def found(call: Call) -> list[dict[str, Any]]:
        q = call.query
        task, text, author = (q.get(k, "").lower() for k in ("task", "search", "author"))
        return [
            obj
            for obj in (search_object(spec) for spec in catalog.values())
            if (
                not task
                or task
                in (obj["task"]["name"].lower(), obj["task"]["name"].lower().replace(" ", "-"))
            )
            and (not author or obj["name"].split("/")[1].lower() == author)
            and (not text or text in obj["name"].lower())
        ]

    async def search(call: Call) -> Response:
        # Pages end: past the last one the result is empty (the Python SDK stops there,
        # wrangler when a page has fewer than per_page models).
        q = call.query
        try:
            page, per_page = int(q.get("page", "1")), int(q.get("per_page", "50"))
        except ValueError:
            raise ApiError(400, 7003, "page and per_page must be integers") from None
        if not (1 <= page <= 100_000 and 1 <= per_page <= 1000):
            raise ApiError(400, 7003, "page must be 1..100000 and per_page 1..1000")
        models = found(call)
        chunk = models[(page - 1) * per_page : page * per_page]
        info = {"page": page, "per_page": per_page, "count": len(chunk), "total_count": len(models)}
        return envelope(chunk, result_info=info)

    async def binding_search(call: Call) -> Response:
        # env.AI.models(): the same search, answered as {result: [...]} (workerd ai-api.ts).
        return json_response({"result": found(call)})

    binding = BindingToken("ai")
    rest = ApiToken()
    return [
        Endpoint("POST", "/run", binding_run, binding, Shape.AI, MEDIA_RUN_BODY, host=BINDING_HOST),
        Endpoint("GET", "/ai-api/models/search", binding_search, binding, host=BINDING_HOST),
        Endpoint("POST", f"{ACCOUNT}/run/{{model:path}}", rest_run, rest, body=MEDIA_RUN_BODY),
        Endpoint("GET", f"{ACCOUNT}/models/search", search, rest),
        Endpoint(
            "POST", f"{ACCOUNT}/v1/chat/completions", compat.chat(run, catalog), rest, body=RUN_BODY
        ),
        Endpoint(
            "POST", f"{ACCOUNT}/v1/embeddings", compat.embeddings(run, catalog), rest, body=RUN_BODY
        ),
        Endpoint(
            "POST", f"{ACCOUNT}/v1/responses", compat.responses(run, catalog), rest, body=RUN_BODY
        ),
    ]
