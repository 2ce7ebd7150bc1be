"""The fast path of vector batches (orjson lines, numpy value checks) answers exactly what
the plain path (the front door's stdlib `loads`, a per-item type check) answers."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfai.local.services.frontdoor import ApiError, loads
from cfai.local.services.vectorize._wire import parse_vector_line, vector_from

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
    # Any other line (ids, namespaces, values of any JSON): the same vector or error.
    for doc in (record, {"id": record, "values": [record], "namespace": record}):
        line = json.dumps(doc, ensure_ascii=False)
        assert _outcome(_fast(line)) == _outcome(_plain(line))


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
    ],
)
def test_edge_lines_read_as_the_front_door_reads_them(line: str) -> None:
    assert _outcome(_fast(line)) == _outcome(_plain(line))


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
