"""Routes of the emulated Vectorize: workerd's binding wire and the v2 REST API.

Binding wire (host ``vector-search``; workerd injects the index name as ``x-cfai-index``):
``POST /insert|/upsert`` (NDJSON or ``{"vectors"}``) -> ``{"mutationId"}``, ``POST /query``
-> ``{"count", "matches"}``, ``POST /getByIds`` -> ``[vector]``, ``POST /deleteByIds`` ->
``{"mutationId"}``, ``GET /info``. Errors are a non-200 ``{"code", "error"}``, which the
Worker sees as ``VECTOR_QUERY_ERROR (code = N): error``.

REST: ``/client/v4/accounts/{account_id}/vectorize/v2/indexes[...]`` with a bearer token,
every answer in the v4 envelope.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from cfai.local.services._cf import (
    CloudflareError,
    api_error,
    check_token,
    envelope,
    json_response,
)
from cfai.local.services.base import INDEX_HEADER, EmulatorContext
from cfai.local.services.vectorize import _errors as E
from cfai.local.services.vectorize._wire import VectorIn, loads, parse_ids, parse_query
from cfai.local.services.vectorize._wire import parse_vectors as _parse_vectors
from cfai.local.services.vectorize.state import VectorizeStore

Handler = Callable[[Request], Awaitable[Any]]

# The dummy host workerd's vectorize binding fetches (``http://vector-search/<op>``).
BINDING_HOST = "vector-search"


async def _json(request: Request) -> Any:
    try:
        return loads(await request.body())
    except ValueError as exc:
        raise E.bad_body(str(exc)) from exc


def _check_batch(vectors: list[VectorIn], limit: int) -> None:
    if len(vectors) > limit:
        raise CloudflareError(
            400, 40005, f"too many vectors in payload; max is {limit}, got {len(vectors)}"
        )


# -- binding wire --------------------------------------------------------------------------


def _binding(handler: Callable[[Request, str], Awaitable[Any]]) -> Handler:
    async def endpoint(request: Request) -> Response:
        index = request.headers.get(INDEX_HEADER, "")
        try:
            if not index:
                raise CloudflareError(
                    400, 3000, f"vectorize.index.not_found - no {INDEX_HEADER} header"
                )
            return json_response(await handler(request, index))
        except CloudflareError as exc:
            return json_response({"code": exc.code, "error": exc.message}, exc.status)

    return endpoint


def binding_routes(store: VectorizeStore) -> list[BaseRoute]:
    """Routes for workerd's ``cloudflare-internal:vectorize-api`` fetcher (served on host
    `BINDING_HOST` by the emulator app)."""

    def write(upsert: bool) -> Handler:
        op = "upsert" if upsert else "insert"

        async def handler(request: Request, index: str) -> Any:
            vectors = _parse_vectors(
                await request.body(), request.headers.get("content-type", ""), op
            )
            _check_batch(vectors, E.MAX_BATCH_BINDING)
            return {"mutationId": store.write(index, vectors, upsert=upsert)}

        return _binding(handler)

    async def query(request: Request, index: str) -> Any:
        return store.query(index, parse_query(await _json(request)))

    async def get_by_ids(request: Request, index: str) -> Any:
        return store.get_by_ids(index, parse_ids(await _json(request)))

    async def delete_by_ids(request: Request, index: str) -> Any:
        return {"mutationId": store.delete_by_ids(index, parse_ids(await _json(request)))}

    async def info(request: Request, index: str) -> Any:
        return store.info(index)

    return [
        Route("/insert", write(False), methods=["POST"]),
        Route("/upsert", write(True), methods=["POST"]),
        Route("/query", _binding(query), methods=["POST"]),
        Route("/getByIds", _binding(get_by_ids), methods=["POST"]),
        Route("/deleteByIds", _binding(delete_by_ids), methods=["POST"]),
        Route("/info", _binding(info), methods=["GET"]),
    ]


# -- REST ----------------------------------------------------------------------------------


def _multipart_field(body: bytes, content_type: str, field: str) -> bytes | None:
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    if not message.is_multipart():
        return None
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") == field:
            payload = part.get_payload(decode=True)
            return payload if isinstance(payload, bytes) else None
    return None


def rest_routes(ctx: EmulatorContext, store: VectorizeStore) -> list[BaseRoute]:
    """The Vectorize v2 REST API under ``/client/v4/accounts/{account_id}``."""

    def rest(handler: Callable[[Request], Awaitable[Any]], status: int = 200) -> Handler:
        async def endpoint(request: Request) -> Response:
            denied = check_token(request, ctx.api_token)
            if denied is not None:
                return denied
            if request.path_params["account_id"] != ctx.account_id:
                return api_error(403, 10000, "Authentication error")
            try:
                return envelope(await handler(request), status)
            except CloudflareError as exc:
                return api_error(exc.status, exc.code, exc.message)

        return endpoint

    def name_of(request: Request) -> str:
        return str(request.path_params["name"])

    async def create(request: Request) -> Any:
        body = await _json(request)
        if not isinstance(body, dict):
            raise E.bad_body("expected an object")
        config = body.get("config")
        if not isinstance(config, dict):
            raise E.invalid_config("Config must be provided")
        # Untrusted JSON: the store validates types and answers Cloudflare's errors.
        name: Any = body.get("name")
        dimensions: Any = config.get("dimensions")
        metric: Any = config.get("metric")
        if "preset" in config:
            if config["preset"] not in E.PRESETS:
                raise E.invalid_config(f"Unknown preset {config['preset']!r}")
            dimensions, metric = E.PRESETS[config["preset"]]
        description = body.get("description") or ""
        if not isinstance(description, str):
            raise E.bad_body("description: expected a string")
        return store.create_index(name, dimensions, metric, description)

    async def list_indexes(request: Request) -> Any:
        return store.list_indexes()

    async def get(request: Request) -> Any:
        return store.get_index(name_of(request))

    async def delete(request: Request) -> Any:
        store.delete_index(name_of(request))
        return None

    async def info(request: Request) -> Any:
        return store.info(name_of(request))

    def write(upsert: bool) -> Handler:
        op = "upsert" if upsert else "insert"

        async def handler(request: Request) -> Any:
            name = name_of(request)
            store.get_index(name)
            behavior = request.query_params.get("unparsable-behavior", "error")
            if behavior not in ("error", "discard"):
                raise E.bad_body("unparsable-behavior: expected error or discard")
            body = await request.body()
            content_type = request.headers.get("content-type", "")
            if content_type.lower().startswith("multipart/form-data"):
                field = _multipart_field(body, content_type, "vectors")
                if field is None:
                    raise E.bad_vectors(op, "missing multipart field `vectors`")
                body, content_type = field, "application/x-ndjson"
            vectors = _parse_vectors(
                body, content_type, op, discard_unparsable=behavior == "discard"
            )
            _check_batch(vectors, E.MAX_BATCH_HTTP)
            return {"mutationId": store.write(name, vectors, upsert=upsert)}

        return rest(handler)

    async def query(request: Request) -> Any:
        return store.query(name_of(request), parse_query(await _json(request)))

    async def get_by_ids(request: Request) -> Any:
        return store.get_by_ids(name_of(request), parse_ids(await _json(request)))

    async def delete_by_ids(request: Request) -> Any:
        ids = parse_ids(await _json(request))
        return {"mutationId": store.delete_by_ids(name_of(request), ids)}

    async def list_vectors(request: Request) -> Any:
        raw = request.query_params.get("count", str(E.DEFAULT_LIST_COUNT))
        if not raw.isdigit() or not 1 <= int(raw) <= E.MAX_LIST_COUNT:
            raise E.bad_body(f"count: expected an integer from 1 to {E.MAX_LIST_COUNT}")
        cursor = request.query_params.get("cursor") or None
        return store.list_vectors(name_of(request), int(raw), cursor)

    async def metadata_create(request: Request) -> Any:
        body = await _json(request)
        if not isinstance(body, dict):
            raise E.bad_body("expected an object")
        prop: Any = body.get("propertyName")
        kind: Any = body.get("indexType")
        mid = store.create_metadata_index(name_of(request), prop, kind)
        return {"mutationId": mid}

    async def metadata_list(request: Request) -> Any:
        indexes = store.metadata_indexes(name_of(request))
        return {
            "metadataIndexes": [
                {"propertyName": prop, "indexType": kind} for prop, kind in indexes.items()
            ]
        }

    async def metadata_delete(request: Request) -> Any:
        body = await _json(request)
        prop = body.get("propertyName") if isinstance(body, dict) else None
        if not isinstance(prop, str):
            raise E.bad_body("propertyName: expected a string")
        return {"mutationId": store.delete_metadata_index(name_of(request), prop)}

    base = "/client/v4/accounts/{account_id}/vectorize/v2/indexes"
    one = base + "/{name}"
    return [
        Route(base, rest(create, status=201), methods=["POST"]),
        Route(base, rest(list_indexes), methods=["GET"]),
        Route(one, rest(get), methods=["GET"]),
        Route(one, rest(delete), methods=["DELETE"]),
        Route(one + "/info", rest(info), methods=["GET"]),
        Route(one + "/insert", write(False), methods=["POST"]),
        Route(one + "/upsert", write(True), methods=["POST"]),
        Route(one + "/query", rest(query), methods=["POST"]),
        Route(one + "/get_by_ids", rest(get_by_ids), methods=["POST"]),
        Route(one + "/delete_by_ids", rest(delete_by_ids), methods=["POST"]),
        Route(one + "/list", rest(list_vectors), methods=["GET"]),
        Route(one + "/metadata_index/create", rest(metadata_create), methods=["POST"]),
        Route(one + "/metadata_index/list", rest(metadata_list), methods=["GET"]),
        Route(one + "/metadata_index/delete", rest(metadata_delete), methods=["POST"]),
    ]
