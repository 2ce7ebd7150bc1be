"""A small JSON Schema walker: the minimal valid instance of a schema, for JSON mode and
tool-call arguments.

Handles ``type`` (one or a list), ``const``, ``enum``, ``default``, ``properties`` /
``required`` (every declared property is filled), ``additionalProperties``, ``items`` /
``prefixItems`` / ``minItems``, string ``minLength`` / ``maxLength``, numeric bounds
(inclusive, exclusive, ``multipleOf`` for integers), ``anyOf`` / ``oneOf`` (first branch),
``allOf`` (merged) and local ``$ref`` (``#/$defs/...``, ``#/definitions/...``). Strings are
filled with `text` (the answer), cut or padded to the length bounds; ``pattern`` and
``format`` are not honoured, and ``not`` cannot be met: both raise `SchemaError`, which the
text model reports as "JSON Mode couldn't be met".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


class SchemaError(ValueError):
    """The walker cannot build an instance of this schema."""


def instance(schema: Any, text: str = "", *, root: Any = None, depth: int = 0) -> Any:
    """A value valid against `schema` whose strings are drawn from `text`."""
    root = schema if root is None else root
    if depth > 32:
        raise SchemaError("schema nests deeper than 32 levels (recursive $ref?)")
    if schema is True or schema is None or schema == {}:
        return text
    if not isinstance(schema, Mapping):
        raise SchemaError(f"not a schema: {schema!r}")
    if "$ref" in schema:
        return instance(_resolve(root, schema["$ref"]), text, root=root, depth=depth + 1)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        if not schema["enum"]:
            raise SchemaError("empty enum")
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return instance(
                {**_without(schema, key), **schema[key][0]}, text, root=root, depth=depth + 1
            )
    if "allOf" in schema:
        merged: dict[str, Any] = dict(_without(schema, "allOf"))
        for part in schema["allOf"]:
            part = _resolve(root, part["$ref"]) if "$ref" in part else part
            merged["properties"] = {**merged.get("properties", {}), **part.get("properties", {})}
            merged["required"] = [*merged.get("required", []), *part.get("required", [])]
            merged.update({k: v for k, v in part.items() if k not in ("properties", "required")})
        return instance(merged, text, root=root, depth=depth + 1)
    if "not" in schema or "pattern" in schema:
        raise SchemaError("'not' and 'pattern' are not supported")
    kind = schema.get("type", _guess(schema))
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    return _typed(kind, schema, text, root, depth)


def _typed(kind: str, schema: Mapping[str, Any], text: str, root: Any, depth: int) -> Any:
    if kind == "object":
        props = schema.get("properties", {})
        out = {name: instance(sub, text, root=root, depth=depth + 1) for name, sub in props.items()}
        for name in schema.get("required", []):
            if name not in out:
                extra = schema.get("additionalProperties", True)
                out[name] = instance(
                    {} if extra in (True, False) else extra, text, root=root, depth=depth + 1
                )
        return out
    if kind == "array":
        prefix = [
            instance(s, text, root=root, depth=depth + 1) for s in schema.get("prefixItems", [])
        ]
        want = max(int(schema.get("minItems", 1)), len(prefix))
        want = min(want, int(schema.get("maxItems", want)))
        items = schema.get("items", {})
        rest = [
            instance(items, text, root=root, depth=depth + 1) for _ in range(want - len(prefix))
        ]
        return (prefix + rest)[: max(want, 0)]
    if kind == "string":
        lo, hi = int(schema.get("minLength", 0)), schema.get("maxLength")
        value = text if hi is None else text[: int(hi)]
        return value + "x" * max(0, lo - len(value))
    if kind in ("number", "integer"):
        return _number(schema, integer=kind == "integer")
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    raise SchemaError(f"unknown type {kind!r}")


def _number(schema: Mapping[str, Any], *, integer: bool) -> int | float:
    lo = schema.get("minimum", -math.inf)
    hi = schema.get("maximum", math.inf)
    if "exclusiveMinimum" in schema:
        lo = max(lo, schema["exclusiveMinimum"] + (1 if integer else 1e-9))
    if "exclusiveMaximum" in schema:
        hi = min(hi, schema["exclusiveMaximum"] - (1 if integer else 1e-9))
    value: float = 0 if lo <= 0 <= hi else (lo if lo > 0 else hi)
    if integer:
        step = int(schema.get("multipleOf", 1))
        result = math.ceil(value / step) * step if value != -math.inf else 0
        if not lo <= result <= hi:
            raise SchemaError("no integer meets the bounds")
        return result
    return value


def _guess(schema: Mapping[str, Any]) -> str:
    if "properties" in schema or "required" in schema:
        return "object"
    if "items" in schema or "prefixItems" in schema:
        return "array"
    return "string"


def _without(schema: Mapping[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k != key}


def _resolve(root: Any, ref: Any) -> Any:
    if not isinstance(ref, str) or not ref.startswith("#"):
        raise SchemaError(f"only local $ref is supported, got {ref!r}")
    node = root
    for part in [p for p in ref[1:].split("/") if p]:
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, Mapping) or part not in node:
            raise SchemaError(f"unresolvable $ref {ref!r}")
        node = node[part]
    return node
