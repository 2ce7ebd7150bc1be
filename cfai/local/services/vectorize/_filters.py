"""Metadata filters and metadata indexes, as Vectorize v2 applies them.

A filter is an object of ``key -> value | {operator: value, ...}``; keys are ANDed, a bare
value means ``$eq``, and ``"a.b"`` reaches ``{"a": {"b": ...}}``. A vector is filterable on a
property only through a metadata index that existed when the vector was written: at write
time the store keeps the vector's *indexed values* (strings cut to their first 64 bytes on a
UTF-8 boundary, numbers as float64, booleans), and filters only ever look at those.

Assumed semantics (no public source settles them): a vector without an indexed value for a
key behaves as if the value were ``null``: ``$eq``/``$in`` and ranges do not match it,
``$ne``/``$nin`` do. So a filter on a property that has no metadata index matches nothing
with ``$eq`` (Cloudflare is silent about it, not an error) and everything with ``$ne``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, overload

import numpy as np

from cfai.local.services.vectorize._errors import (
    MAX_FILTER_BYTES,
    MAX_FILTER_KEY_CHARS,
    bad_filter,
    truncate_utf8,
)
from cfai.local.services.vectorize._storage import loads

Condition = tuple[str, Any]
ParsedFilter = list[tuple[str, list[Condition]]]

_EQUALITY = ("$eq", "$ne")
_MEMBERSHIP = ("$in", "$nin")
_LOWER = ("$gt", "$gte")
_UPPER = ("$lt", "$lte")
OPERATORS = _EQUALITY + _MEMBERSHIP + _LOWER + _UPPER


def key_problem(key: str, *, dotted: bool) -> str | None:
    """Why `key` is not a valid filter (dotted) or metadata (plain) key, or None."""
    if not key:
        return "keys cannot be empty"
    if len(key) > MAX_FILTER_KEY_CHARS:
        return f"key longer than {MAX_FILTER_KEY_CHARS} characters: {key[:32]!r}..."
    if '"' in key:
        return f"key {key!r} contains '\"'"
    if key.startswith("$"):
        return f"key {key!r} starts with '$'"
    if "." in key and (not dotted or "" in key.split(".")):
        return f"key {key!r} contains '.' (reserved for nesting)"
    return None


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _check_operand(key: str, op: str, value: Any) -> None:
    if op in _EQUALITY and not _is_scalar(value):
        raise bad_filter(f"{key}.{op} takes a string, number, boolean or null")
    if op in _MEMBERSHIP and not (
        isinstance(value, list) and value and all(_is_scalar(v) for v in value)
    ):
        raise bad_filter(f"{key}.{op} takes a non-empty array of strings, numbers or booleans")
    if (op in _LOWER or op in _UPPER) and (
        isinstance(value, bool) or not isinstance(value, str | int | float)
    ):
        raise bad_filter(f"{key}.{op} takes a string or a number")


def parse_filter(raw: Any) -> ParsedFilter:
    """Validate a filter the way Vectorize does and return its conditions per key."""
    if not isinstance(raw, dict) or not raw:
        raise bad_filter("filter must be a non-empty object")
    size = len(json.dumps(raw, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    if size >= MAX_FILTER_BYTES:
        raise bad_filter(
            f"filter JSON must be less than {MAX_FILTER_BYTES} bytes, got {size} bytes"
        )
    parsed: ParsedFilter = []
    for key, spec in raw.items():
        problem = key_problem(key, dotted=True)
        if problem:
            raise bad_filter(problem)
        if not isinstance(spec, dict):
            if not _is_scalar(spec):
                raise bad_filter(f"{key}: value must be a string, number, boolean or null")
            parsed.append((key, [("$eq", spec)]))
            continue
        if not spec:
            raise bad_filter(f"{key}: operator object cannot be empty")
        unknown = [op for op in spec if op not in OPERATORS]
        if unknown:
            raise bad_filter(f"{key}: unsupported operator {unknown[0]!r}")
        ops = list(spec)
        # More than one operator on a key is only a range: one lower with one upper bound.
        if len(ops) > 1 and not (
            len(ops) == 2
            and sum(op in _LOWER for op in ops) == 1
            and sum(op in _UPPER for op in ops) == 1
        ):
            raise bad_filter(
                f"{key}: operators {ops} cannot be combined; only a lower bound ($gt/$gte) "
                "with an upper bound ($lt/$lte)"
            )
        for op, value in spec.items():
            _check_operand(key, op, value)
        parsed.append((key, list(spec.items())))
    return parsed


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "string"


def _normal(value: Any) -> Any:
    if isinstance(value, str):
        return truncate_utf8(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _equal(a: Any, b: Any) -> bool:
    return _kind(a) == _kind(b) and _normal(a) == _normal(b)


def _compare(op: str, actual: Any, bound: Any) -> bool:
    if actual is None or _kind(actual) != _kind(bound) or isinstance(actual, bool):
        return False
    a, b = _normal(actual), _normal(bound)
    if isinstance(a, str):  # lexicographic on UTF-8 bytes, as a prefix search expects
        a, b = a.encode("utf-8"), b.encode("utf-8")
    if op == "$gt":
        return bool(a > b)
    if op == "$gte":
        return bool(a >= b)
    if op == "$lt":
        return bool(a < b)
    return bool(a <= b)


def _holds(op: str, operand: Any, actual: Any) -> bool:
    if op == "$eq":
        return _equal(actual, operand)
    if op == "$ne":
        return not _equal(actual, operand)
    if op == "$in":
        return any(_equal(actual, v) for v in operand)
    if op == "$nin":
        return not any(_equal(actual, v) for v in operand)
    return _compare(op, actual, operand)


def matches(conditions: ParsedFilter, indexed: Mapping[str, Any]) -> bool:
    """Whether a vector with these indexed values passes the filter."""
    return all(
        _holds(op, operand, indexed.get(key)) for key, ops in conditions for op, operand in ops
    )


def _column(key: str, indexed: Sequence[Mapping[str, Any]]) -> tuple[Any, Any]:
    """(kinds, normalised values) of one property over every row, as numpy object arrays.
    A row without the property holds null, as `matches` reads it."""
    values = [row.get(key) for row in indexed]
    kinds = np.array([_kind(v) for v in values], dtype=object)
    normal = np.empty(len(values), dtype=object)
    normal[:] = [_normal(v) for v in values]
    return kinds, normal


def _eq_mask(kinds: Any, normal: Any, operand: Any) -> Any:
    return (kinds == _kind(operand)) & (normal == _normal(operand))


def _range_mask(op: str, kinds: Any, normal: Any, bound: Any) -> Any:
    kind = _kind(bound)
    ok = kinds == kind
    if kind not in ("number", "string"):
        return np.zeros(len(kinds), dtype=bool)
    out = np.zeros(len(kinds), dtype=bool)
    rows = np.flatnonzero(ok)
    b = _normal(bound)
    if kind == "string":  # lexicographic on UTF-8 bytes, as a prefix search expects
        vals = np.array([normal[i].encode("utf-8") for i in rows], dtype=object)
        b = b.encode("utf-8")
    else:
        vals = normal[rows].astype(np.float64)
    compare = {"$gt": np.greater, "$gte": np.greater_equal, "$lt": np.less, "$lte": np.less_equal}
    out[rows] = compare[op](vals, b).astype(bool)
    return out


class IndexedRows(Sequence[Mapping[str, Any]]):
    """The indexed values of every slot of an index (`_snapshot.Snapshot.filter_rows`),
    parsed from their JSON texts as they are read (each distinct text once), for `mask` to
    build its columns from."""

    def __init__(self, texts: list[str]) -> None:
        self._texts = texts

    def __len__(self) -> int:
        return len(self._texts)

    @overload
    def __getitem__(self, i: int) -> Mapping[str, Any]: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[Mapping[str, Any]]: ...
    def __getitem__(self, i: int | slice) -> Any:
        if isinstance(i, slice):
            return [loads(t) for t in self._texts[i]]
        return loads(self._texts[i])

    def __iter__(self) -> Iterator[Mapping[str, Any]]:
        parsed: dict[str, Any] = {}
        for text in self._texts:
            value = parsed.get(text)
            if value is None:
                value = parsed[text] = loads(text)
            yield value


def mask(
    conditions: ParsedFilter, indexed: Sequence[Mapping[str, Any]], cache: dict[str, Any]
) -> Any:
    """`matches` over every row at once, as a boolean array. `cache` keeps the per-property
    columns between queries (the caller drops it when the rows change)."""
    out = np.ones(len(indexed), dtype=bool)
    for key, ops in conditions:
        if key not in cache:
            cache[key] = _column(key, indexed)
        kinds, normal = cache[key]
        for op, operand in ops:
            if op in ("$eq", "$ne"):
                hit = _eq_mask(kinds, normal, operand)
            elif op in ("$in", "$nin"):
                hit = np.zeros(len(indexed), dtype=bool)
                for v in operand:
                    hit |= _eq_mask(kinds, normal, v)
            else:
                out &= _range_mask(op, kinds, normal, operand)
                continue
            out &= ~hit if op in ("$ne", "$nin") else hit
    return out


def lookup(metadata: Mapping[str, Any], path: str) -> tuple[bool, Any]:
    """(found, value) of a dotted property path in nested metadata."""
    node: Any = metadata
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def indexed_values(
    metadata: Mapping[str, Any] | None, metadata_indexes: Mapping[str, str]
) -> dict[str, Any]:
    """The values a vector is filterable on, given the metadata indexes at write time."""
    out: dict[str, Any] = {}
    if not metadata:
        return out
    for prop, index_type in metadata_indexes.items():
        found, value = lookup(metadata, prop)
        if not found or _kind(value) != index_type:
            continue
        out[prop] = _normal(value)
    return out


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Indexed values keyed by dotted paths, rebuilt as nested metadata."""
    out: dict[str, Any] = {}
    for path, value in flat.items():
        node = out
        *parents, leaf = path.split(".")
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                break
            node = child
        else:
            node[leaf] = value
    return out
