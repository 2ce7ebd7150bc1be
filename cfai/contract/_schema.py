"""A small JSON Schema validator for structured-output checks (no new dependency).

Covers what response schemas use: type, properties, required, additionalProperties, items,
enum, const, min/max (Length, Items, imum), anyOf, oneOf, allOf. A keyword outside that set
is reported as an error rather than ignored, so an unsupported schema never passes silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_TYPES: dict[str, Any] = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "null": type(None),
}
_ANNOTATIONS = {"title", "description", "$schema", "$id", "default", "examples", "format"}


def _is_type(value: Any, name: str) -> bool:
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, _TYPES.get(name, ()))


def schema_errors(value: Any, schema: Mapping[str, Any], path: str = "$") -> list[str]:
    """Every way `value` breaks `schema`, each prefixed with its JSON path.

    >>> schema_errors({"a": 1}, {"type": "object", "required": ["a", "b"]})
    ['$: missing required property b']
    """
    errors: list[str] = []
    for key, rule in schema.items():
        if key in _ANNOTATIONS:
            continue
        if key == "type":
            names = rule if isinstance(rule, list) else [rule]
            if not any(_is_type(value, n) for n in names):
                errors.append(f"{path}: expected {'|'.join(names)}, got {type(value).__name__}")
                return errors
        elif key == "properties":
            if isinstance(value, dict):
                for name, sub in rule.items():
                    if name in value:
                        errors += schema_errors(value[name], sub, f"{path}.{name}")
        elif key == "required":
            if isinstance(value, dict):
                errors += [f"{path}: missing required property {n}" for n in rule if n not in value]
        elif key == "additionalProperties":
            if isinstance(value, dict):
                extra = [k for k in value if k not in schema.get("properties", {})]
                if rule is False and extra:
                    errors.append(f"{path}: unexpected properties {sorted(extra)}")
                elif isinstance(rule, Mapping):
                    for k in extra:
                        errors += schema_errors(value[k], rule, f"{path}.{k}")
        elif key == "items":
            if isinstance(value, list):
                for i, item in enumerate(value):
                    errors += schema_errors(item, rule, f"{path}[{i}]")
        elif key == "enum":
            if value not in rule:
                errors.append(f"{path}: {value!r} not one of {rule!r}")
        elif key == "const":
            if value != rule:
                errors.append(f"{path}: {value!r} is not {rule!r}")
        elif key in ("minLength", "maxLength", "minItems", "maxItems"):
            if isinstance(value, str | list):
                n = len(value)
                if (key.startswith("min") and n < rule) or (key.startswith("max") and n > rule):
                    errors.append(f"{path}: length {n} breaks {key} {rule}")
        elif key in ("minimum", "maximum"):
            if _is_type(value, "number") and (
                (key == "minimum" and value < rule) or (key == "maximum" and value > rule)
            ):
                errors.append(f"{path}: {value} breaks {key} {rule}")
        elif key in ("anyOf", "oneOf"):
            passing = sum(not schema_errors(value, sub, path) for sub in rule)
            if passing == 0 or (key == "oneOf" and passing > 1):
                errors.append(f"{path}: matches {passing} of the {key} schemas")
        elif key == "allOf":
            for sub in rule:
                errors += schema_errors(value, sub, path)
        else:
            errors.append(f"{path}: schema keyword {key!r} is not supported by the contract suite")
    return errors
