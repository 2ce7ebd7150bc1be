"""Routes of the emulated Vectorize: workerd's binding wire and the v2 REST API.

Binding wire (host ``vector-search``; the index is the one the caller's ``vectorize``
binding token was minted for, never a header the Worker sets): ``POST /insert|/upsert``
(NDJSON or ``{"vectors"}``; REST takes only NDJSON or multipart, see `_writes`) -> ``{"mutationId"}``, ``POST /query`` -> ``{"count",
"matches"}``, ``POST /getByIds`` -> ``[vector]``, ``POST /deleteByIds`` ->
``{"mutationId"}``, ``GET /info``. Errors are a non-200 ``{"code", "error"}``, which the
Worker sees as ``VECTOR_QUERY_ERROR (code = N): error``.

REST: ``/client/v4/accounts/{account_id}/vectorize/v2/indexes[...]`` with the API token,
every answer in the v4 envelope.
"""

from __future__ import annotations

from typing import Any

from cfai.local.services.frontdoor import (
    ApiError,
    ApiToken,
    BindingToken,
    Call,
    Endpoint,
    Handler,
    JsonBody,
    NdjsonBody,
    Shape,
)
from cfai.local.services.vectorize import _errors as E
from cfai.local.services.vectorize._plain import read_plain
from cfai.local.services.vectorize._wire import (
    VectorIn,
    parse_ids,
    parse_query,
    parse_vector_line,
    vectors_from,
)
from cfai.local.services.vectorize.state import VectorizeStore

__all__ = ["BINDING_HOST", "MAX_WRITE_BODY", "endpoints"]

# The dummy host workerd's vectorize binding fetches (``http://vector-search/<op>``).
BINDING_HOST = "vector-search"
# Vectorize's upload limit (https://developers.cloudflare.com/vectorize/platform/limits/).
MAX_WRITE_BODY = 100 * 1024 * 1024
QUERY_BODY = JsonBody(E.bad_body)


def _writes(op: str, *, rest: bool) -> NdjsonBody:
    """Binding writes: NDJSON or ``{"vectors": [...]}`` (workerd sends either). REST writes:
    ``application/x-ndjson`` or multipart field ``vectors`` (wrangler), any other content
    type refused as Cloudflare does (`E.unknown_content_type`)."""
    if not rest:
        return NdjsonBody(
            lambda why: E.bad_vectors(op, why),
            limit=MAX_WRITE_BODY,
            parse_line=parse_vector_line,
            read_plain=read_plain,
        )
    return NdjsonBody(
        lambda why: E.bad_vectors(op, why),
        limit=MAX_WRITE_BODY,
        json_key=None,
        multipart_field="vectors",
        unknown_type=E.unknown_content_type,
        parse_line=parse_vector_line,
        read_plain=read_plain,
    )


def _check_batch(vectors: list[VectorIn], limit: int) -> None:
    if len(vectors) > limit:
        raise ApiError(
            400, 40005, f"too many vectors in payload; max is {limit}, got {len(vectors)}"
        )


def endpoints(store: VectorizeStore) -> list[Endpoint]:
    """Every Vectorize route: the binding wire, then the REST API."""
    return [*_binding(store), *_rest(store)]


def _binding(store: VectorizeStore) -> list[Endpoint]:
    def write(upsert: bool) -> Handler:
        op = "upsert" if upsert else "insert"

        async def handler(call: Call) -> Any:
            vectors = vectors_from(call.body, op)
            _check_batch(vectors, E.MAX_BATCH_BINDING)
            return {"mutationId": store.write(_index(call), vectors, upsert=upsert)}

        return handler

    async def query(call: Call) -> Any:
        return store.query(_index(call), parse_query(call.body))

    async def get_by_ids(call: Call) -> Any:
        return store.get_by_ids(_index(call), parse_ids(call.body))

    async def delete_by_ids(call: Call) -> Any:
        return {"mutationId": store.delete_by_ids(_index(call), parse_ids(call.body))}

    async def info(call: Call) -> Any:
        return store.info(_index(call))

    def route(method: str, path: str, handler: Handler, body: Any = None) -> Endpoint:
        auth = BindingToken("vectorize")
        if body is None:
            return Endpoint(method, path, handler, auth, Shape.VECTORIZE, host=BINDING_HOST)
        return Endpoint(method, path, handler, auth, Shape.VECTORIZE, body, host=BINDING_HOST)

    return [
        route("POST", "/insert", write(False), _writes("insert", rest=False)),
        route("POST", "/upsert", write(True), _writes("upsert", rest=False)),
        route("POST", "/query", query, QUERY_BODY),
        route("POST", "/getByIds", get_by_ids, QUERY_BODY),
        route("POST", "/deleteByIds", delete_by_ids, QUERY_BODY),
        route("GET", "/info", info),
    ]


def _index(call: Call) -> str:
    index = call.binding.index
    if not index:
        raise ApiError(400, 3000, "vectorize.index.not_found - the binding names no index")
    return index


def _name(call: Call) -> str:
    return str(call.params["name"])


def _rest(store: VectorizeStore) -> list[Endpoint]:
    async def create(call: Call) -> Any:
        body = call.body
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
            preset = config["preset"]
            if not isinstance(preset, str) or preset not in E.PRESETS:
                raise E.invalid_config(f"Unknown preset {preset!r:.100}")
            dimensions, metric = E.PRESETS[preset]
        description = body.get("description") or ""
        if not isinstance(description, str):
            raise E.bad_body("description: expected a string")
        return store.create_index(name, dimensions, metric, description)

    async def list_indexes(call: Call) -> Any:
        return store.list_indexes()

    async def get(call: Call) -> Any:
        return store.get_index(_name(call))

    async def delete(call: Call) -> Any:
        store.delete_index(_name(call))
        return None

    async def info(call: Call) -> Any:
        return store.info(_name(call))

    def write(upsert: bool) -> Handler:
        op = "upsert" if upsert else "insert"

        async def handler(call: Call) -> Any:
            name = _name(call)
            store.get_index(name)
            behavior = call.query.get("unparsable-behavior", "error")
            if behavior not in ("error", "discard"):
                raise E.bad_body("unparsable-behavior: expected error or discard")
            vectors = vectors_from(
                call.body, op, discard_unparsable=behavior == "discard", ndjson=True
            )
            _check_batch(vectors, E.MAX_BATCH_HTTP)
            return {"mutationId": store.write(name, vectors, upsert=upsert)}

        return handler

    async def query(call: Call) -> Any:
        return store.query(_name(call), parse_query(call.body))

    async def get_by_ids(call: Call) -> Any:
        return store.get_by_ids(_name(call), parse_ids(call.body))

    async def delete_by_ids(call: Call) -> Any:
        return {"mutationId": store.delete_by_ids(_name(call), parse_ids(call.body))}

    async def list_vectors(call: Call) -> Any:
        raw = call.query.get("count", str(E.DEFAULT_LIST_COUNT))
        # isascii: str.isdigit also holds for "²", which int() refuses.
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= E.MAX_LIST_COUNT:
            raise E.bad_body(f"count: expected an integer from 1 to {E.MAX_LIST_COUNT}")
        cursor = call.query.get("cursor") or None
        return store.list_vectors(_name(call), int(raw), cursor)

    async def metadata_create(call: Call) -> Any:
        body = call.body
        if not isinstance(body, dict):
            raise E.bad_body("expected an object")
        prop: Any = body.get("propertyName")
        kind: Any = body.get("indexType")
        return {"mutationId": store.create_metadata_index(_name(call), prop, kind)}

    async def metadata_list(call: Call) -> Any:
        indexes = store.metadata_indexes(_name(call))
        return {
            "metadataIndexes": [
                {"propertyName": prop, "indexType": kind} for prop, kind in indexes.items()
            ]
        }

    async def metadata_delete(call: Call) -> Any:
        prop = call.body.get("propertyName") if isinstance(call.body, dict) else None
        if not isinstance(prop, str):
            raise E.bad_body("propertyName: expected a string")
        return {"mutationId": store.delete_metadata_index(_name(call), prop)}

    base = "/client/v4/accounts/{account_id}/vectorize/v2/indexes"
    one = base + "/{name}"
    auth = ApiToken()
    return [
        Endpoint("POST", base, create, auth, body=QUERY_BODY, status=201),
        Endpoint("GET", base, list_indexes, auth),
        Endpoint("GET", one, get, auth),
        Endpoint("DELETE", one, delete, auth),
        Endpoint("GET", one + "/info", info, auth),
        Endpoint("POST", one + "/insert", write(False), auth, body=_writes("insert", rest=True)),
        Endpoint("POST", one + "/upsert", write(True), auth, body=_writes("upsert", rest=True)),
        Endpoint("POST", one + "/query", query, auth, body=QUERY_BODY),
        Endpoint("POST", one + "/get_by_ids", get_by_ids, auth, body=QUERY_BODY),
        Endpoint("POST", one + "/delete_by_ids", delete_by_ids, auth, body=QUERY_BODY),
        Endpoint("GET", one + "/list", list_vectors, auth),
        Endpoint("POST", one + "/metadata_index/create", metadata_create, auth, body=QUERY_BODY),
        Endpoint("GET", one + "/metadata_index/list", metadata_list, auth),
        Endpoint("POST", one + "/metadata_index/delete", metadata_delete, auth, body=QUERY_BODY),
    ]
