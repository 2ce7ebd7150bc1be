"""The emulator's OpenAPI document, generated from its `Endpoint` declarations.

Everything the front door knows about a route goes in: method and path (Starlette's
``{model:path}`` becomes ``{model}``), the binding host it answers on (a required ``host``
header), who may call it (the ``apiToken`` bearer scheme or a ``bindingToken`` of the
binding type in ``x-cfai-binding``), the body it takes (media types, whether it may be
empty, its byte limit in ``x-cfai-body-limit``) and the shape of its answers and errors
(``x-cfai-shape``; every 4XX has the shape's error schema). Property tests and API tools
(schemathesis, an SDK generator) read it; the emulator serves it at
``GET /__cfai/openapi.json`` with the API token.

What it does not say: the fields a handler reads from a body or a query string, which the
route checks itself and answers in Cloudflare's words.

Example::

    doc = openapi_document(endpoints, title="cfai local emulator")
    doc["paths"]["/__cfai/health"]["get"]["security"]  # []
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from cfai.local.services.frontdoor.errors import Shape
from cfai.local.services.frontdoor.routes import (
    REQUIRED,
    ApiToken,
    BindingToken,
    Endpoint,
    JsonBody,
    MultipartBody,
    NdjsonBody,
    NoBody,
)
from cfai.local.services.frontdoor.tokens import BINDING_HEADER

__all__ = ["ERROR_SCHEMAS", "openapi_document"]

_CONVERTER = re.compile(r"\{(\w+)(?::\w+)?\}")

_CODES = {
    "type": "array",
    "minItems": 1,
    "items": {
        "type": "object",
        "required": ["code", "message"],
        "properties": {"code": {"type": "integer"}, "message": {"type": "string"}},
    },
}

#: The error body of each shape (`cfai.local.services.frontdoor.errors.ApiError.body`). A
#: request through an AI gateway (its URL form) may also be refused in the gateway's own
#: body, singular ``error`` (``ai_gateway._errors.GatewayError``); on the binding that body
#: carries the AI shape's fields too.
ERROR_SCHEMAS: dict[Shape, dict[str, Any]] = {
    Shape.ENVELOPE: {
        "anyOf": [
            {
                "type": "object",
                "required": ["result", "success", "errors", "messages"],
                "properties": {"success": {"const": False}, "errors": _CODES},
            },
            {
                "type": "object",
                "required": ["result", "success", "error", "messages", "name"],
                "properties": {
                    "success": {"const": False},
                    "error": _CODES,
                    "name": {"const": "AiGatewayError"},
                },
            },
        ]
    },
    Shape.VECTORIZE: {
        "type": "object",
        "required": ["code", "error"],
        "properties": {"code": {"type": "integer"}, "error": {"type": "string"}},
    },
    Shape.AI: {
        "type": "object",
        "required": ["internalCode", "name", "description"],
        "properties": {
            "internalCode": {"type": "integer"},
            "name": {"type": "string"},
            "description": {"type": "string"},
        },
    },
}
_SCHEMA_NAMES = {
    Shape.ENVELOPE: "EnvelopeError",
    Shape.VECTORIZE: "VectorizeError",
    Shape.AI: "AiError",
}


def openapi_document(
    endpoints: Sequence[Endpoint], *, title: str, version: str = "1"
) -> dict[str, Any]:
    """An OpenAPI 3.0 document of `endpoints`. Two hosts serving the same method and path
    share one operation whose ``host`` header takes either."""
    paths: dict[str, dict[str, Any]] = {}
    for ep in endpoints:
        path = _CONVERTER.sub(r"{\1}", ep.path)
        method = ep.method.lower()
        existing = paths.setdefault(path, {}).get(method)
        if existing is not None:
            _add_host(existing, ep.host)
            continue
        paths[path][method] = _operation(ep, path)
    return {
        "openapi": "3.0.3",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "securitySchemes": {
                "apiToken": {"type": "http", "scheme": "bearer"},
                "bindingToken": {
                    "type": "apiKey",
                    "in": "header",
                    "name": BINDING_HEADER,
                    "description": "minted by the emulator's per-run key for one binding "
                    "(type, Worker, index); see x-cfai-binding",
                },
            },
            "schemas": {_SCHEMA_NAMES[s]: schema for s, schema in ERROR_SCHEMAS.items()},
        },
    }


def _operation(ep: Endpoint, path: str) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _CONVERTER.findall(path)
    ]
    op: dict[str, Any] = {
        "operationId": f"{ep.host + ' ' if ep.host else ''}{ep.method} {path}",
        "parameters": params,
        "responses": {
            str(ep.status): {"description": "the route's answer"},
            "4XX": {
                "description": f"a refusal in the {ep.shape.value} shape",
                "content": {
                    "application/json": {
                        "schema": {"$ref": f"#/components/schemas/{_SCHEMA_NAMES[ep.shape]}"}
                    }
                },
            },
        },
        "x-cfai-shape": ep.shape.value,
    }
    if ep.host is not None:
        params.append(
            {"name": "host", "in": "header", "required": True, "schema": {"enum": [ep.host]}}
        )
    if isinstance(ep.auth, ApiToken):
        op["security"] = [{"apiToken": []}]
    elif isinstance(ep.auth, BindingToken):
        op["security"] = [{"bindingToken": []}]
        op["x-cfai-binding"] = ep.auth.type
    else:
        op["security"] = []
    if not isinstance(ep.body, NoBody):
        op["requestBody"] = _request_body(ep.body)
        op["x-cfai-body-limit"] = ep.body.limit
    return op


def _request_body(body: JsonBody | NdjsonBody | MultipartBody) -> dict[str, Any]:
    binary = {"type": "string", "format": "binary"}
    if isinstance(body, JsonBody):
        schema: dict[str, Any] = {"type": "object"} if body.object_only else {}
        content: dict[str, Any] = {"application/json": {"schema": schema}}
        # A raw type is a media-type prefix (``audio/``) or a whole type: a range or the type.
        for raw in body.raw_types:
            content[f"{raw}*" if raw.endswith("/") else raw] = {"schema": binary}
        return {"required": body.empty is REQUIRED, "content": content}
    if isinstance(body, MultipartBody):
        # The parts a handler reads are its own to check (the module docstring).
        return {
            "required": True,
            "content": {"multipart/form-data": {"schema": {"type": "object"}}},
        }
    content = {"application/x-ndjson": {"schema": {"type": "string"}}}
    if body.json_key is not None:
        content["application/json"] = {
            "schema": {"type": "object", "properties": {body.json_key: {"type": "array"}}}
        }
    if body.multipart_field is not None:
        content["multipart/form-data"] = {
            "schema": {"type": "object", "properties": {body.multipart_field: binary}}
        }
    return {"required": True, "content": content}


def _add_host(op: dict[str, Any], host: str | None) -> None:
    for param in op["parameters"]:
        if param["name"] == "host" and param["in"] == "header":
            if host is not None and host not in param["schema"]["enum"]:
                param["schema"]["enum"].append(host)
            if host is None:
                param["required"] = False
            return
    if host is not None:
        op["parameters"].append(
            {"name": "host", "in": "header", "required": False, "schema": {"enum": [host]}}
        )
