"""Parsing what clients send: vector batches (NDJSON or JSON) and query options.

Both the binding routes and the REST routes parse through here, so a vector or a query is
judged by the same rules whichever way it arrives.
"""

from __future__ import annotations

import json
from array import array as _doubles
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from cfai.local.services.frontdoor import ApiError, Unparsable, loads
from cfai.local.services.vectorize._errors import (
    DEFAULT_TOP_K,
    MAX_ID_BYTES,
    MAX_METADATA_BYTES,
    MAX_NAMESPACE_BYTES,
    MAX_TOP_K,
    MAX_TOP_K_WITH_DATA,
    bad_body,
    bad_ndjson_line,
    bad_vectors,
    utf8_len,
)
from cfai.local.services.vectorize._filters import ParsedFilter, key_problem, parse_filter
from cfai.local.services.vectorize._storage import lossy


@dataclass(frozen=True)
class VectorIn:
    """One vector to write, validated except for its dimensions (the index knows those)."""

    id: str
    values: list[float] | npt.NDArray[np.float64]
    namespace: str | None = None
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True)
class QueryIn:
    vector: list[float] | None
    vector_id: str | None
    top_k: int
    return_values: bool
    return_metadata: str
    filter: ParsedFilter | None
    namespace: str | None


def _check_metadata_keys(node: Any) -> None:
    if isinstance(node, dict):
        for key, child in node.items():
            problem = key_problem(key, dotted=False)
            if problem:
                raise ApiError(400, 40011, f"invalid metadata: {problem}")
            _check_metadata_keys(child)
    elif isinstance(node, list):
        for child in node:
            _check_metadata_keys(child)


# Vectorize stores float32: a value past its range would be infinite there.
_F32_MAX = float(np.finfo(np.float32).max)


def parse_vector_line(line: str | bytes) -> Any:
    """One NDJSON line of a vector batch, read as `frontdoor.loads` reads it, only faster:
    orjson, falling back to `loads` for its verdict (and wording) on what orjson refuses,
    and for a line whose ``metadata`` orjson may have changed: it reads an integer beyond 64
    bits as a float, silently. Elsewhere that makes no difference to `vector_from`: values
    become float32 either way, and a number for an id or namespace is refused either way."""
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        return loads(line)
    if type(record) is dict and lossy(record.get("metadata")):
        return loads(line)
    return record


def _finite_numbers(values: list[Any]) -> npt.NDArray[np.float64] | None:
    """`values` as float64 if every item is a number (not a boolean), finite and within the
    float32 range (Vectorize stores float32: a value past it would be infinite there),
    else None.

    ``array("d", ...)`` converts the list in one C pass and refuses anything that is not a
    real number (TypeError) or beyond a double (OverflowError), about twice as fast as
    numpy's conversion, which first works out a type for the whole list. Booleans pass as
    0 and 1, so only the items equal to 0 or 1 are looked at one by one."""
    try:
        array = np.frombuffer(_doubles("d", values), dtype=np.float64)
    except (TypeError, OverflowError):
        return None
    suspects = (array == 0) | (array == 1)
    if suspects.any() and any(type(values[i]) is bool for i in np.nonzero(suspects)[0].tolist()):
        return None
    return array if _within_float32(array) else None


def _within_float32(array: npt.NDArray[np.float64]) -> bool:
    # NaN compares False and infinity is past the bound. (max and min: no temporary.)
    return array.size == 0 or (float(array.max()) <= _F32_MAX and float(array.min()) >= -_F32_MAX)


# Metadata's size as Cloudflare counts it: compact JSON, UTF-8. One encoder for every call
# (json.dumps with options builds a new one each time).
_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def _oversize(metadata: dict[str, Any]) -> int | None:
    """The size of `metadata` (`_COMPACT`, UTF-8) if it is over the limit, else None.

    orjson's compact UTF-8 text, ten times faster, settles most: it writes every token as
    the stdlib does but a float, which the stdlib writes at most one byte longer
    (``1e-05`` for ``1e-5``, ``1e+16`` for ``1e16``) and which takes at least three bytes,
    so the stdlib's text is at most 4/3 of orjson's."""
    try:
        if len(orjson.dumps(metadata)) * 4 <= MAX_METADATA_BYTES * 3:
            return None
    except TypeError:  # an integer past 64 bits, which orjson does not write
        pass
    size = len(_COMPACT.encode(metadata).encode())
    return size if size > MAX_METADATA_BYTES else None


def vector_from(raw: Any, operation: str, *, values_checked: bool = False) -> VectorIn:
    """Validate one vector object; raises the Cloudflare error a bad one gets.
    `values_checked`: its values are an array `_batch_values_ok` passed."""
    if not isinstance(raw, dict):
        raise bad_vectors(operation, "each vector must be an object")
    vid, values = raw.get("id"), raw.get("values")
    if not isinstance(vid, str) or not vid:
        raise bad_vectors(operation, "vector id must be a non-empty string")
    if utf8_len(vid) > MAX_ID_BYTES:
        raise ApiError(
            400, 40008, f"id too long; max is {MAX_ID_BYTES} bytes, got {utf8_len(vid)} bytes"
        )
    # Numbers only (booleans are not), finite and within float32's range. An array comes from
    # `_plain.read_plain`, which read only numbers.
    if type(values) is np.ndarray:
        array = values if values_checked or _within_float32(values) else None
    else:
        array = _finite_numbers(values) if isinstance(values, list) else None
    if array is None:
        raise bad_vectors(operation, f'values of id="{vid}" must be an array of finite numbers')
    namespace = raw.get("namespace")
    if namespace is not None:
        if not isinstance(namespace, str):
            raise bad_vectors(operation, f'namespace of id="{vid}" must be a string')
        if utf8_len(namespace) > MAX_NAMESPACE_BYTES:
            raise ApiError(
                400,
                40009,
                f"namespace too long; max is {MAX_NAMESPACE_BYTES} bytes, "
                f"got {utf8_len(namespace)} bytes",
            )
    metadata = raw.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise bad_vectors(operation, f'metadata of id="{vid}" must be an object')
        _check_metadata_keys(metadata)
        size = _oversize(metadata)
        if size is not None:
            raise ApiError(
                400,
                40010,
                f'metadata too large for id="{vid}"; max is {MAX_METADATA_BYTES} bytes, '
                f"got {size} bytes",
            )
    return VectorIn(vid, array, namespace or None, metadata or None)


def vectors_from(
    records: list[Any], operation: str, *, discard_unparsable: bool = False, ndjson: bool = False
) -> list[VectorIn]:
    """Vectors from the records of an NDJSON or JSON body (the front door parsed them;
    lines that were not JSON are `Unparsable`). With `discard_unparsable`, lines that are
    not JSON or not a well-formed vector are skipped, as ``unparsable-behavior=discard``.
    With `ndjson` (REST bodies), a bad line is refused in Cloudflare's NDJSON wording,
    naming the line (0-based among the non-blank lines)."""
    out: list[VectorIn] = []
    checked = _batch_values_ok(records)
    for line, record in enumerate(records):
        if isinstance(record, Unparsable):
            if discard_unparsable:
                continue
            if ndjson:
                raise bad_ndjson_line(operation, line, f"not JSON: {record.reason}")
            raise bad_vectors(operation)
        try:
            out.append(vector_from(record, operation, values_checked=checked))
        except ApiError as exc:
            if exc.code != 40023:
                raise
            if discard_unparsable:
                continue
            if ndjson:
                raise bad_ndjson_line(operation, line, exc.message.partition(": ")[2]) from None
            raise
    return out


def _batch_values_ok(records: list[Any]) -> bool:
    """Whether every record's values are an array (`_plain.read_plain`'s) within float32's
    range: one check over the batch instead of one a vector. False says nothing: each
    vector is then judged alone, and the first bad one named."""
    arrays: list[npt.NDArray[np.float64]] = []
    for record in records:
        values = record.get("values") if type(record) is dict else None
        if type(values) is not np.ndarray:
            return False
        arrays.append(values)
    return bool(arrays) and _within_float32(np.concatenate(arrays))


def parse_ids(raw: Any) -> list[str]:
    """The ``{"ids": [...]}`` body of getByIds / deleteByIds."""
    ids = raw.get("ids") if isinstance(raw, dict) else None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise bad_body("ids: expected an array of strings")
    return ids


def _float32s(values: list[Any]) -> bool:
    """Every value finite and within the float32 range (ints of any size included)."""
    try:
        a = np.asarray(values, dtype=np.float64)
    except OverflowError:
        return False
    return bool(np.isfinite(a).all() and (np.abs(a) <= _F32_MAX).all())


def parse_query(raw: Any) -> QueryIn:
    """Query options as the binding (camelCase) and REST send them."""
    if not isinstance(raw, dict):
        raise bad_body("expected an object")
    vector, vector_id = raw.get("vector"), raw.get("vectorId")
    if vector is None and vector_id is None:
        raise bad_body("missing field `vector`")
    if vector is not None and not (
        isinstance(vector, list)
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in vector)
    ):
        raise bad_body("vector: expected an array of numbers")
    if vector is not None and not _float32s(vector):
        raise bad_body("vector: expected finite numbers within the float32 range")
    if vector is None and not isinstance(vector_id, str):
        raise bad_body("vectorId: expected a string")
    top_k = raw.get("topK", DEFAULT_TOP_K)
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise bad_body("topK: expected a positive integer")
    return_values = raw.get("returnValues", False)
    if not isinstance(return_values, bool):
        raise bad_body("returnValues: expected a boolean")
    return_metadata = raw.get("returnMetadata", "none")
    if isinstance(return_metadata, bool):  # the binding maps booleans; REST clients may not
        return_metadata = "all" if return_metadata else "none"
    if return_metadata not in ("none", "indexed", "all"):
        raise bad_body("returnMetadata: expected value")
    if top_k > MAX_TOP_K:
        raise ApiError(400, 40024, f"max top K is {MAX_TOP_K}, but got {top_k}")
    if (return_values or return_metadata == "all") and top_k > MAX_TOP_K_WITH_DATA:
        raise ApiError(
            400,
            40025,
            f"with returnValues=true or returnMetadata=all, max top K is {MAX_TOP_K_WITH_DATA}, "
            f"but got {top_k}; for a top K up to {MAX_TOP_K}, retry with returnValues=false "
            "and returnMetadata=indexed",
        )
    namespace = raw.get("namespace")
    if namespace is not None and not isinstance(namespace, str):
        raise bad_body("namespace: expected a string")
    raw_filter = raw.get("filter")
    return QueryIn(
        vector=[float(v) for v in vector] if vector is not None else None,
        vector_id=vector_id if vector is None else None,
        top_k=top_k,
        return_values=return_values,
        return_metadata=return_metadata,
        filter=parse_filter(raw_filter) if raw_filter is not None else None,
        namespace=namespace,
    )
