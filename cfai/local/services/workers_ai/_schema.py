"""JSON mode's schemas: checked with `jsonschema`, and the stand-in's instance of one.

`checked(schema)` refuses what is not a JSON Schema (draft 2020-12 unless ``$schema`` names
another), with the path of the bad keyword. `instance(schema, text, max_tokens=n)` builds
a small value that validates against it, strings drawn from `text` (the answer), and
answers it with its size in tokens. The instance is checked with the validator before it
is answered, so what the stand-in says it can meet, it meets.

Covered: ``type`` (one or a list), ``const``, ``enum``, ``default``, ``properties`` /
``required`` / ``additionalProperties`` / ``minProperties``, ``items`` / ``prefixItems`` /
``minItems`` / ``maxItems`` / ``uniqueItems`` / ``contains``, string length bounds (a
``pattern`` only when the answer already matches it), numeric bounds (inclusive and
exclusive, ``multipleOf``), ``anyOf`` / ``oneOf`` (the first branch that validates),
``allOf`` (merged), local ``$ref``; keywords it does not use (``not``, ``if``, ``format``...)
are left to the final check.

Like the real model, the output is bounded by ``max_tokens``: tokens are whitespace-separated
words of the JSON text (as in `_core`) and a token is at most `CHARS_PER_TOKEN` characters.
Strings are shortened to fit before the schema is declared unmeetable, and an array of a
hundred million items fails at once rather than being built.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import partial
from typing import Any

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import SchemaError as _InvalidSchema
from referencing.exceptions import Unresolvable

__all__ = ["CHARS_PER_TOKEN", "InvalidSchema", "SchemaError", "checked", "instance"]

CHARS_PER_TOKEN = 16  # generous: tokenizers average about 4 characters a token
_MAX_DEPTH = 32
_TYPES = ("object", "array", "string", "number", "integer", "boolean", "null")


class SchemaError(ValueError):
    """No instance of the schema fits (unmeetable, unsupported, or over ``max_tokens``)."""


class InvalidSchema(ValueError):
    """The value is not a JSON Schema; the message names the bad keyword's path."""


def checked(schema: Any) -> Any:
    """The jsonschema validator of `schema`; raises `InvalidSchema`."""
    with warnings.catch_warnings():  # an unknown $schema falls back to the latest draft
        warnings.simplefilter("ignore", DeprecationWarning)
        cls = validators.validator_for(schema, default=Draft202012Validator)
    try:
        cls.check_schema(schema)
    except _InvalidSchema as err:
        where = "/".join(str(p) for p in err.absolute_path)
        raise InvalidSchema(f"{err.message}" + (f" (at {where})" if where else "")) from None
    except RecursionError:
        raise InvalidSchema("the schema nests too deeply") from None
    return cls(schema)


def instance(schema: Any, text: str = "", *, max_tokens: int) -> tuple[Any, int]:
    """(a value valid against `schema`, its size in tokens); raises `InvalidSchema` or
    `SchemaError`. Strings are `text`, shortened when the full answer does not fit."""
    validator = checked(schema)
    fills = [text, " ".join(text.split()[:8]), ""]
    for fill in dict.fromkeys(fills):
        try:
            value, words = _Builder(validator, schema, fill, max_tokens).build()
        except _OverBudget:
            continue
        return value, words
    raise SchemaError(f"an instance of the schema needs more than max_tokens={max_tokens} tokens")


class _OverBudget(SchemaError):
    pass


def _dumps(value: Any) -> str:
    try:
        return json.dumps(value, allow_nan=False)
    except (ValueError, TypeError, OverflowError) as err:
        raise SchemaError(f"value cannot be written as JSON: {err}") from None


class _Builder:
    """One attempt at an instance, spending a word and character budget as it goes."""

    def __init__(self, validator: Any, root: Any, text: str, max_tokens: int) -> None:
        self.validator, self.root, self.text = validator, root, text
        self.max_words, self.max_chars = max_tokens, max_tokens * CHARS_PER_TOKEN
        self.words = self.chars = 0
        self.steps_left = 10 * max_tokens + 10_000

    def build(self) -> tuple[Any, int]:
        try:
            value = self.value(self.root, 0)
            error = next(iter(self.validator.iter_errors(value)), None)
        except RecursionError:
            raise SchemaError("the schema nests too deeply") from None
        except Unresolvable as err:
            raise SchemaError(f"unresolvable $ref: {err}") from None
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "the top level"
            raise SchemaError(
                f"the stand-in cannot write a valid value ({error.message} at {where})"
            )
        return value, self.words

    # -- budget -------------------------------------------------------------------------

    def spend(self, words: int, chars: int) -> None:
        self.words += words
        self.chars += chars
        if self.words > self.max_words or self.chars > self.max_chars:
            raise _OverBudget("over max_tokens")

    def leaf(self, value: Any) -> Any:
        text = _dumps(value)
        self.spend(len(text.split()), len(text))
        return value

    def valid(self, schema: Any, value: Any) -> bool:
        try:
            return bool(self.validator.evolve(schema=schema).is_valid(value))
        except Unresolvable:
            return False

    def first(self, whole: Any, makers: Sequence[Callable[[], Any]], why: str) -> Any:
        """The first value a maker builds that `whole` accepts; the budget a failed maker
        spent is given back. Over budget only when every maker was."""
        over = False
        for make in makers:
            saved = (self.words, self.chars)
            try:
                value = make()
            except _OverBudget:
                over = True
            except SchemaError:
                pass
            else:
                if self.valid(whole, value):
                    return value
            self.words, self.chars = saved
        raise _OverBudget(why) if over else SchemaError(why)

    # -- values -------------------------------------------------------------------------

    def value(self, schema: Any, depth: int, variant: int = 0) -> Any:
        self.steps_left -= 1
        if self.steps_left < 0:
            raise SchemaError("the schema is too complex for the stand-in")
        if depth > _MAX_DEPTH:
            raise SchemaError(f"schema nests deeper than {_MAX_DEPTH} levels (recursive $ref?)")
        if schema is True or schema == {}:
            return self.leaf(self.text)
        if schema is False:
            raise SchemaError("schema false accepts no value")
        if "$ref" in schema:
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            return self.value(_merge(rest, _resolve(self.root, schema["$ref"])), depth + 1, variant)
        for key in ("const", "default"):
            if key in schema and self.valid(schema, schema[key]):
                return self.leaf(schema[key])
        if "enum" in schema:
            values = list(schema["enum"])
            turn = variant % len(values) if values else 0
            for value in values[turn:] + values[:turn]:
                if self.valid(schema, value):
                    return self.leaf(value)
            raise SchemaError("no enum value meets the rest of the schema")
        for key in ("anyOf", "oneOf"):
            if key in schema:
                rest = {k: v for k, v in schema.items() if k != key}
                makers = [
                    partial(self.value, _merge(rest, branch), depth + 1, variant)
                    for branch in schema[key]
                ]
                return self.first(schema, makers, f"no branch of {key} can be met")
        if "allOf" in schema:
            merged: Any = {k: v for k, v in schema.items() if k != "allOf"}
            for part in schema["allOf"]:
                if isinstance(part, Mapping) and "$ref" in part:
                    part = _resolve(self.root, part["$ref"])
                merged = _merge(merged, part)
            return self.value(merged, depth + 1, variant)
        kinds = schema.get("type", _guess(schema))
        if isinstance(kinds, str):
            return self.typed(kinds, schema, depth, variant)
        kinds = sorted(kinds, key=lambda k: k == "null")
        makers = [partial(self.typed, k, schema, depth, variant) for k in kinds]
        return self.first(schema, makers, f"no value of type {' or '.join(kinds)} can be met")

    def typed(self, kind: str, schema: Mapping[str, Any], depth: int, variant: int) -> Any:
        if kind == "object":
            return self.object(schema, depth, variant)
        if kind == "array":
            return self.array(schema, depth)
        if kind == "string":
            return self.string(schema, variant)
        if kind in ("number", "integer"):
            return self.leaf(_number(schema, integer=kind == "integer", variant=variant))
        if kind == "boolean":
            return self.leaf(variant % 2 == 0)
        if kind == "null":
            return self.leaf(None)
        raise SchemaError(f"unknown type {kind!r}")

    def object(self, schema: Mapping[str, Any], depth: int, variant: int) -> dict[str, Any]:
        required = list(dict.fromkeys(schema.get("required", [])))
        everything = list(dict.fromkeys([*schema.get("properties", {}), *required]))
        # Every declared property is filled; only the required ones when that is too long.
        saved = (self.words, self.chars)
        try:
            return self.members(schema, everything, depth, variant)
        except _OverBudget:
            if everything == required:
                raise
            self.words, self.chars = saved
        return self.members(schema, required, depth, variant)

    def members(
        self, schema: Mapping[str, Any], names: list[str], depth: int, variant: int
    ) -> dict[str, Any]:
        props: Mapping[str, Any] = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        want = max(len(names), int(schema.get("minProperties", 0)))
        if 2 * want > self.max_words - self.words:  # a key and a value each: refuse at once
            raise _OverBudget("over max_tokens")
        names = names + [f"property_{i}" for i in range(want - len(names))]
        self.spend(0 if names else 1, 2 + 2 * max(0, len(names) - 1))
        out: dict[str, Any] = {}
        for name in names:
            key = _dumps(name)
            self.spend(len(key.split()), len(key) + 2)
            out[name] = self.value(
                props.get(name, {} if isinstance(extra, bool) else extra), depth + 1, variant
            )
        return out

    def array(self, schema: Mapping[str, Any], depth: int) -> list[Any]:
        prefix = list(schema.get("prefixItems", []))
        want = max(int(schema.get("minItems", 1)), len(prefix))
        if "contains" in schema:
            want = max(want, len(prefix) + int(schema.get("minContains", 1)))
        want = min(want, int(schema.get("maxItems", want)))
        items = schema.get("items", {})
        if items is False:
            want = min(want, len(prefix))
        # Each item after the first adds a word and ", ": a huge minItems fails at once.
        gaps = max(0, want - 1)
        if gaps > self.max_words - self.words or 3 * gaps > self.max_chars - self.chars:
            raise _OverBudget("over max_tokens")
        self.spend(0 if want else 1, 2 + 2 * gaps)
        unique = schema.get("uniqueItems") is True
        out: list[Any] = []
        for i in range(want):
            sub = prefix[i] if i < len(prefix) else items
            if i >= len(prefix) and "contains" in schema:
                sub = _merge(sub, schema["contains"])
            out.append(self.value(sub, depth + 1, i if unique else 0))
        return out

    def string(self, schema: Mapping[str, Any], variant: int) -> str:
        lo, hi = int(schema.get("minLength", 0)), schema.get("maxLength")
        if lo > self.max_chars - self.chars:
            raise _OverBudget("over max_tokens")
        value = f"{self.text} {variant}".strip() if variant else self.text
        value = value if hi is None else value[: int(hi)]
        value += "x" * max(0, lo - len(value))
        pattern = schema.get("pattern")
        if pattern is not None:
            try:
                matches = re.search(pattern, value) is not None
            except re.error:
                matches = False
            if not matches:
                raise SchemaError(f"the answer does not match pattern {pattern!r}")
        return str(self.leaf(value))


def _merge(a: Any, b: Any) -> Any:
    """Both schemas at once, as far as building a value goes (the final check decides)."""
    if not isinstance(a, Mapping) or not isinstance(b, Mapping):
        return b if a in ({}, True) else a if b in ({}, True) else {"allOf": [a, b]}
    out = {**a, **b}
    if "properties" in a and "properties" in b:
        out["properties"] = {**a["properties"], **b["properties"]}
    if "required" in a and "required" in b:
        out["required"] = [*a["required"], *b["required"]]
    return out


def _guess(schema: Mapping[str, Any]) -> str:
    if "properties" in schema or "required" in schema:
        return "object"
    if "items" in schema or "prefixItems" in schema:
        return "array"
    if any(k in schema for k in ("minimum", "maximum", "multipleOf")):
        return "number"
    return "string"


def _resolve(root: Any, ref: Any) -> Any:
    if not isinstance(ref, str) or not ref.startswith("#"):
        raise SchemaError(f"only local $ref is supported, got {ref!r}")
    node = root
    for part in [p for p in ref[1:].split("/") if p]:
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, Mapping) and part in node:
            node = node[part]
        else:
            raise SchemaError(f"unresolvable $ref {ref!r}")
    return node


def _multiple(value: float, step: float) -> bool:
    """jsonschema's own multipleOf test (float division for floats)."""
    if isinstance(step, float) or isinstance(value, float):
        try:
            quotient = value / step
            return bool(quotient == int(quotient))
        except (OverflowError, ZeroDivisionError):
            return False
    return value % step == 0


def _number(schema: Mapping[str, Any], *, integer: bool, variant: int = 0) -> int | float:
    lo, hi = schema.get("minimum", -math.inf), schema.get("maximum", math.inf)
    lo_open = hi_open = False
    ex_lo, ex_hi = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if isinstance(ex_lo, bool):  # draft 4: a flag on minimum
        lo_open = ex_lo
    elif ex_lo is not None and ex_lo >= lo:
        lo, lo_open = ex_lo, True
    if isinstance(ex_hi, bool):
        hi_open = ex_hi
    elif ex_hi is not None and ex_hi <= hi:
        hi, hi_open = ex_hi, True
    step = schema.get("multipleOf")

    def fits(v: int | float) -> bool:
        inside = (lo < v if lo_open else lo <= v) and (v < hi if hi_open else v <= hi)
        return inside and (step is None or _multiple(v, step))

    try:
        for v in _number_candidates(lo, hi, step, integer, variant):
            if fits(v):
                return v
    except (OverflowError, ValueError, ZeroDivisionError):
        raise SchemaError("the numeric bounds are out of range") from None
    raise SchemaError("no number meets the bounds and multipleOf")


def _anchors(lo: float, hi: float, variant: int) -> Iterator[float]:
    yield variant
    yield 0
    finite_lo, finite_hi = math.isfinite(lo), math.isfinite(hi)
    steps: list[Callable[[], float]] = []
    if finite_lo:
        steps += [lambda: lo, lambda: math.floor(lo) + 1, lambda: math.nextafter(lo, math.inf)]
    if finite_hi:
        steps += [lambda: hi, lambda: math.ceil(hi) - 1, lambda: math.nextafter(hi, -math.inf)]
    if finite_lo and finite_hi:
        steps.append(lambda: (lo + hi) / 2)
    for step in steps:
        try:  # bounds past a double's range have fewer candidates
            yield step()
        except OverflowError:
            continue


def _number_candidates(
    lo: float, hi: float, step: Any, integer: bool, variant: int
) -> Iterator[int | float]:
    for anchor in _anchors(lo, hi, variant):
        if step is None:
            values: list[int | float] = [anchor]
        else:
            both_int = isinstance(anchor, int) and isinstance(step, int)
            k = -(-anchor // step) if both_int else math.ceil(anchor / step)
            values = [j * step for j in range(int(k) - 1, int(k) + 3)]
        for v in values:
            if not integer:
                yield v
            elif isinstance(v, int) or v.is_integer():
                yield int(v)
