"""The fast paths of vector batches (orjson lines, simdjson for plain bodies, numpy value
checks) answer exactly what the plain path (the front door's stdlib `loads`, a per-item
type check) answers."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfai.local.services.frontdoor import ApiError, NdjsonBody, loads
from cfai.local.services.frontdoor.body import _records
from cfai.local.services.vectorize._plain import read_plain
from cfai.local.services.vectorize._wire import parse_vector_line, vector_from, vectors_from

_json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**62, max_value=2**80),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
_json = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=12,
)


def _plain(line: str) -> Any:
    try:
        return ("ok", loads(line))
    except ValueError as exc:
        return ("error", str(exc))


def _fast(line: str) -> Any:
    try:
        return ("ok", parse_vector_line(line))
    except ValueError as exc:
        return ("error", str(exc))


def _simd(line: str) -> Any:
    """The simdjson reader's record for a one-line body, or the general path's where it
    declines the line (as the front door then does)."""
    raw = line.encode("utf-8", "surrogatepass")
    records = read_plain(raw, [(0, len(raw))]) if raw else None
    return _fast(line) if records is None else ("ok", records[0])


def _outcome(parsed: Any) -> Any:
    """What `vector_from` makes of a parsed line: the vector as stored, or the error."""
    if parsed[0] == "error":
        return parsed
    try:
        v = vector_from(parsed[1], "upsert")
    except ApiError as exc:
        return ("refused", exc.code, exc.message)
    except Exception as exc:  # e.g. a lone surrogate in an id: the same either way
        return ("raised", type(exc).__name__)
    values = np.asarray(v.values, dtype=np.float32).tolist()
    return ("vector", v.id, values, v.namespace, json.dumps(v.metadata))


@settings(max_examples=300, deadline=None)
@given(record=_json, values=st.lists(st.floats(-1e6, 1e6), max_size=8))
def test_a_line_reads_as_the_front_door_reads_it(record: Any, values: list[float]) -> None:
    vector = json.dumps({"id": "a", "values": values, "metadata": record}, ensure_ascii=False)
    fast, plain = _fast(vector), _plain(vector)
    assert fast == plain
    assert json.dumps(fast) == json.dumps(plain)  # ints stay ints, floats floats
    assert _outcome(_simd(vector)) == _outcome(plain)
    # Any other line (ids, namespaces, values of any JSON): the same vector or error.
    for doc in (
        record,
        {"id": record, "values": [record], "namespace": record},
        {"id": "a", "values": record, "metadata": record},
    ):
        line = json.dumps(doc, ensure_ascii=False)
        assert _outcome(_fast(line)) == _outcome(_plain(line))
        assert _outcome(_simd(line)) == _outcome(_plain(line))


@pytest.mark.parametrize(
    "line",
    [
        '{"id": "a", "values": [1, 2], "metadata": {"n": 1180591620717411303424}}',
        '{"id": "a", "values": [1e400]}',
        '{"id": "a", "values": [NaN]}',
        '{"id": "a", "values": [Infinity]}',
        '{"id": "\\ud800", "values": [1]}',
        '{"id": "a", "values": [1, 2]',
        '{"id": "a",, "values": [1]}',
        '{"id": "a", "values": [01]}',
        "[" * 2000 + "]" * 2000,
        '{"id": "a", "metadata": {"x": 1e19}}',
        '{"id": "a", "values": [1180591620717411303424, 0.5]}',
        '{"id": 1180591620717411303424, "values": [1]}',
        '{"id": "a", "values": [[1], 2]}',
        '{"id": "a", "values": [[1, 2], []]}',
        '{"id": "a", "id": "b", "values": [1]}',
        '{"id": "a", "values": [1], "values": [2, 3]}',
        '{"id": "a", "values": [1], "metadata": {"k": 1, "k": 2, "j": {"k": [1]}}}',
        '{"id": "a", "values": [true, 1]}',
        '{"id": "a", "values": [null]}',
        '{"id": "a", "values": [1, "2"]}',
        '{"id": "a", "values": [18446744073709551615, -9223372036854775808]}',
        '{"id": "a", "values": [3.5e38]}',
        '{"id": "a", "values": [1e-400, -0.0]}',
        '{"id": "a", "values": {"0": 1}}',
        '{"id": "a", "values": [1], "metadata": {"k": "\\ud800\\udc00", "e": "\\u00e9"}}',
        '{"id": "a", "values": [1], "metadata": {"k": 18446744073709551615}}',
        '{"id": "a", "values": [1]} {}',
        '{"id": "a", "values": [1]}   ',
        '{"id": "a[", "values": [1]}',
        '{"id": "\u00e9", "values": [1], "namespace": "n\u2027"}',
        "{" * 2000 + "}" * 2000,
        '{"id": "a", "values": [1], "metadata": ' + '{"a":' * 1100 + "1" + "}" * 1101,
    ],
)
def test_edge_lines_read_as_the_front_door_reads_them(line: str) -> None:
    assert _outcome(_fast(line)) == _outcome(_plain(line))
    assert _outcome(_simd(line)) == _outcome(_plain(line))


def _batch(body: bytes, *, plain: bool) -> Any:
    """What an NDJSON upsert body comes to: the vectors (as stored) or the refusal."""
    spec = NdjsonBody(
        lambda why: ApiError(400, 40023, why),
        parse_line=parse_vector_line,
        read_plain=read_plain if plain else None,
    )
    try:
        vectors = vectors_from(_records(body, "application/x-ndjson", spec), "upsert", ndjson=True)
    except ApiError as exc:
        return ("refused", exc.code, exc.message)
    return [
        (v.id, np.asarray(v.values, np.float32).tobytes(), v.namespace, v.metadata) for v in vectors
    ]


_GOOD = '{"id": "v%d", "values": [0.5, -1.25e-3, 7], "metadata": {"t": "x"}}'


@pytest.mark.parametrize(
    "between",
    ["\n", "\n\n", "\n \n", "\r\n", "\r", "\x0b", "\x1c", "\x1f\n", "\u2028", "\u0085", "\n\t\n"],
)
def test_a_body_reads_the_same_with_the_simdjson_reader(between: str) -> None:
    # Line breaks, blank lines and characters str.splitlines breaks at: the vectors and
    # the line named by a refusal are the general path's.
    for tail in ("", "\n", '\n{"id": "x", "values": [1e999]}', '\n{"id": "é", "values": [1]}'):
        body = (between.join(_GOOD % i for i in range(3)) + tail).encode()
        assert _batch(body, plain=True) == _batch(body, plain=False)


def _old_rule(values: Any) -> bool:
    """The check vector_from made item by item: numbers, not booleans, finite and within
    the float32 range."""
    if not isinstance(values, list) or not all(type(v) in (int, float) for v in values):
        return False
    try:
        array = np.asarray(values, dtype=np.float64)
    except OverflowError:
        return False
    return bool(np.isfinite(array).all() and (np.abs(array) <= np.finfo(np.float32).max).all())


_items = st.one_of(
    st.floats(allow_nan=False),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, 0.0, 1.0, True, False, None, "1", [1], {}, 10**400, 2**64, -(2**63)]),
    st.sampled_from([3.4028234663852886e38, 3.402823466385289e38, -3.5e38, 10**39]),
)


@settings(max_examples=500, deadline=None)
@given(st.lists(_items, max_size=6))
def test_values_are_judged_as_before(values: list[Any]) -> None:
    try:
        got = vector_from({"id": "a", "values": values}, "upsert")
    except ApiError as exc:
        assert exc.code == 40023 and "finite numbers" in exc.message
        assert not _old_rule(values)
        return
    assert _old_rule(values)
    want = np.asarray(values, dtype=np.float64)
    assert np.array_equal(np.asarray(got.values, dtype=np.float64), want)
    assert all(math.isfinite(v) for v in np.asarray(got.values).tolist())


def test_the_simdjson_reader_takes_the_lines_clients_send() -> None:
    # The comparisons above hold trivially if it declines everything: it must take the
    # usual shape (what workerd's binding and the Python SDK send), values as float64.
    line = b'{"id":"a","values":[0.5,-2,1e-7],"namespace":"n","metadata":{"k":{"j":null}}}'
    records = read_plain(line + b"\n" + line, [(0, len(line)), (len(line) + 1, 2 * len(line) + 1)])
    assert records is not None and len(records) == 2
    assert records[0]["values"].tolist() == [0.5, -2.0, 1e-7]
    assert records[0]["metadata"] == {"k": {"j": None}} and records[0]["namespace"] == "n"


@settings(max_examples=300, deadline=None)
@given(
    floats=st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=4000),
    text=st.text(max_size=3000),
    big=st.integers(min_value=2**64, max_value=2**80) | st.integers(),
)
def test_metadata_size_is_counted_as_before(floats: list[float], text: str, big: int) -> None:
    # Near the 10 KiB limit, where orjson's estimate must defer to the stdlib's count.
    metadata = {"f": floats, "t": text, "n": big}
    size = len(json.dumps(metadata, separators=(",", ":"), ensure_ascii=False).encode())
    try:
        vector_from({"id": "a", "values": [1], "metadata": metadata}, "upsert")
    except ApiError as exc:
        assert exc.code == 40010 and size > 10 * 1024 and f"got {size} bytes" in exc.message
    else:
        assert size <= 10 * 1024
