"""The emulated Vectorize: metadata indexes, filters and limits, over the REST API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from cfai.local.services.base import EmulatorContext
from cfai.local.services.frontdoor import FrontDoor
from cfai.local.services.vectorize import VectorizeService
from cfai.local.services.vectorize._wire import VectorIn, parse_query

ACCOUNT = "a" * 32
AUTH = {"authorization": "Bearer t"}
BASE = f"/client/v4/accounts/{ACCOUNT}/vectorize/v2/indexes"
DIMS = 32
ZERO = [0.0] * DIMS

DOCS = {
    "a": {"genre": "drama", "year": 1999, "live": True, "info": {"lang": "en"}},
    "b": {"genre": "comedy", "year": 2005, "live": False, "info": {"lang": "fr"}},
    "c": {"genre": "netflix", "year": 2020, "live": True},
    "d": {"genre": "drama", "year": "2020"},  # year of the wrong type: not indexed
    "e": {},
}


@pytest.fixture
def service(tmp_path: Path) -> Iterator[VectorizeService]:
    svc = VectorizeService(EmulatorContext(state_dir=tmp_path, account_id=ACCOUNT, api_token="t"))
    yield svc
    svc.close()


@pytest.fixture
def client(service: VectorizeService) -> TestClient:
    door = FrontDoor(account_id=ACCOUNT, api_token="t", binding_key=None)
    client = TestClient(door.app(service.endpoints()), headers=AUTH)
    body = {"name": "docs", "config": {"dimensions": DIMS, "metric": "cosine"}}
    assert client.post(BASE, json=body).status_code == 201
    return client


def call(client: TestClient, method: str, path: str, **kw: Any) -> tuple[int, Any]:
    response = client.request(method, f"{BASE}/docs{path}", **kw)
    body = response.json()
    if response.status_code < 300:
        return response.status_code, body["result"]
    return response.status_code, body["errors"][0]


def metadata_index(client: TestClient, prop: str, kind: str) -> None:
    status, _ = call(
        client, "POST", "/metadata_index/create", json={"propertyName": prop, "indexType": kind}
    )
    assert status == 200


def upsert(client: TestClient, docs: dict[str, dict[str, Any]]) -> None:
    body = "\n".join(json.dumps({"id": k, "values": ZERO, "metadata": m}) for k, m in docs.items())
    headers = {"content-type": "application/x-ndjson"}
    assert call(client, "POST", "/upsert", content=body, headers=headers)[0] == 200


def ids_for(client: TestClient, filt: Any, **extra: Any) -> set[str]:
    status, result = call(
        client, "POST", "/query", json={"vector": ZERO, "topK": 100, "filter": filt, **extra}
    )
    assert status == 200, result
    return {m["id"] for m in result["matches"]}


@pytest.fixture
def indexed(client: TestClient) -> TestClient:
    for prop, kind in [("genre", "string"), ("year", "number"), ("live", "boolean")]:
        metadata_index(client, prop, kind)
    metadata_index(client, "info.lang", "string")
    upsert(client, DOCS)
    return client


@pytest.mark.parametrize(
    ("filt", "expected"),
    [
        ({"genre": "drama"}, {"a", "d"}),
        ({"genre": {"$eq": "drama"}}, {"a", "d"}),
        ({"genre": {"$ne": "drama"}}, {"b", "c", "e"}),
        ({"genre": {"$in": ["comedy", "netflix"]}}, {"b", "c"}),
        ({"genre": {"$nin": ["comedy", "netflix"]}}, {"a", "d", "e"}),
        ({"year": {"$lt": 2005}}, {"a"}),
        ({"year": {"$lte": 2005}}, {"a", "b"}),
        ({"year": {"$gt": 2005}}, {"c"}),
        ({"year": {"$gte": 2005}}, {"b", "c"}),
        ({"year": {"$gte": 2000, "$lt": 2021}}, {"b", "c"}),
        ({"year": 2020}, {"c"}),  # "2020" (a string) is not a number
        ({"live": True}, {"a", "c"}),
        ({"live": {"$ne": True}}, {"b", "d", "e"}),
        ({"genre": "drama", "live": True}, {"a"}),  # keys are ANDed
        ({"info.lang": "fr"}, {"b"}),  # dotted keys reach nested fields
        ({"genre": {"$gte": "net", "$lt": "neu"}}, {"c"}),  # string prefix search
    ],
)
def test_filter_operators(indexed: TestClient, filt: Any, expected: set[str]) -> None:
    assert ids_for(indexed, filt) == expected


def test_filter_applies_within_namespace(client: TestClient) -> None:
    metadata_index(client, "genre", "string")
    lines = [
        {"id": "x", "values": ZERO, "namespace": "n1", "metadata": {"genre": "g"}},
        {"id": "y", "values": ZERO, "namespace": "n2", "metadata": {"genre": "g"}},
    ]
    body = "\n".join(json.dumps(v) for v in lines)
    call(client, "POST", "/upsert", content=body, headers={"content-type": "application/x-ndjson"})
    assert ids_for(client, {"genre": "g"}, namespace="n2") == {"y"}


def test_filter_on_property_without_metadata_index_matches_nothing(client: TestClient) -> None:
    upsert(client, DOCS)
    assert ids_for(client, {"genre": "drama"}) == set()
    assert ids_for(client, {"genre": {"$ne": "drama"}}) == set(DOCS)


def test_vectors_written_before_metadata_index_are_not_filterable(client: TestClient) -> None:
    upsert(client, {"old": {"genre": "drama"}})
    metadata_index(client, "genre", "string")
    upsert(client, {"new": {"genre": "drama"}})
    assert ids_for(client, {"genre": "drama"}) == {"new"}
    upsert(client, {"old": {"genre": "drama"}})  # re-upserting indexes it
    assert ids_for(client, {"genre": "drama"}) == {"old", "new"}


def test_indexed_strings_keep_their_first_64_bytes(client: TestClient) -> None:
    metadata_index(client, "title", "string")
    long_title = "a" * 63 + "é" + "tail"  # "é" straddles byte 64: cut before it
    upsert(client, {"x": {"title": long_title}})
    assert ids_for(client, {"title": "a" * 63}) == {"x"}
    status, result = call(
        client, "POST", "/query", json={"vector": ZERO, "returnMetadata": "indexed"}
    )
    assert result["matches"][0]["metadata"] == {"title": "a" * 63}
    assert status == 200
    status, result = call(client, "POST", "/query", json={"vector": ZERO, "returnMetadata": "all"})
    assert status == 200 and result["matches"][0]["metadata"] == {"title": long_title}


@pytest.mark.parametrize(
    "filt",
    [
        {},
        {"genre": {}},
        {"$genre": "x"},
        {'ge"nre': "x"},
        {"genre..x": "x"},
        {"k" * 513: "x"},
        {"genre": {"$regex": "x"}},
        {"genre": {"$in": []}},
        {"genre": {"$eq": ["x"]}},
        {"genre": ["x"]},
        {"year": {"$lt": True}},
        {"year": {"$gt": 1, "$gte": 2}},
        {"year": {"$lt": 1, "$lte": 2}},
        {"year": {"$eq": 1, "$lt": 2}},
        {f"k{i}": "v" * 100 for i in range(20)},  # compact JSON >= 2048 bytes
    ],
)
def test_invalid_filters_are_refused(indexed: TestClient, filt: Any) -> None:
    status, error = call(indexed, "POST", "/query", json={"vector": ZERO, "filter": filt})
    assert (status, error["code"]) == (400, 40027), error


def test_metadata_index_lifecycle(client: TestClient) -> None:
    metadata_index(client, "genre", "string")
    status, error = call(
        client,
        "POST",
        "/metadata_index/create",
        json={"propertyName": "genre", "indexType": "number"},
    )
    assert (status, error["code"]) == (409, 3006)
    status, error = call(
        client, "POST", "/metadata_index/create", json={"propertyName": "x", "indexType": "date"}
    )
    assert (status, error["code"]) == (400, 3009)
    assert call(client, "GET", "/metadata_index/list")[1] == {
        "metadataIndexes": [{"propertyName": "genre", "indexType": "string"}]
    }
    status, result = call(client, "POST", "/metadata_index/delete", json={"propertyName": "genre"})
    assert status == 200 and result["mutationId"]
    assert call(client, "GET", "/metadata_index/list")[1] == {"metadataIndexes": []}
    status, error = call(client, "POST", "/metadata_index/delete", json={"propertyName": "genre"})
    assert (status, error["code"]) == (404, 3007)


def test_at_most_ten_metadata_indexes(client: TestClient) -> None:
    for i in range(10):
        metadata_index(client, f"p{i}", "string")
    status, error = call(
        client,
        "POST",
        "/metadata_index/create",
        json={"propertyName": "p10", "indexType": "string"},
    )
    assert (status, error["code"]) == (400, 3008)


# -- limits -------------------------------------------------------------------------------------


def _line(vid: str = "v", values: list[float] | None = None, **extra: Any) -> str:
    return json.dumps({"id": vid, "values": ZERO if values is None else values, **extra})


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (_line(values=[1.0] * (DIMS + 1)), 40012),
        (_line("x" * 65), 40008),
        (_line("é" * 33), 40008),  # 66 bytes in 33 characters
        (_line(namespace="n" * 65), 40009),
        (_line(metadata={"blob": "x" * 10_240}), 40010),
        (_line(metadata={"a.b": 1}), 40011),
        (_line(metadata={"$a": 1}), 40011),
        (_line(values=["1"] * DIMS), 40023),
        ("{nope", 40023),
        ("\n".join(_line(f"v{i}") for i in range(5001)), 40005),
    ],
)
def test_write_limits(client: TestClient, body: str, code: int) -> None:
    headers = {"content-type": "application/x-ndjson"}
    status, error = call(client, "POST", "/insert", content=body, headers=headers)
    assert (status, error["code"]) == (400, code), error
    assert call(client, "GET", "/info")[1]["vectorCount"] == 0


def test_write_at_the_limits_is_accepted(client: TestClient) -> None:
    body = "\n".join(
        [
            _line("x" * 64, namespace="n" * 64, metadata={"blob": "x" * 10_000}),
            *(_line(f"v{i}") for i in range(4999)),
        ]
    )
    headers = {"content-type": "application/x-ndjson"}
    assert call(client, "POST", "/insert", content=body, headers=headers)[0] == 200
    assert call(client, "GET", "/info")[1]["vectorCount"] == 5000


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"vector": [1.0] * 8}, 40006),
        ({"vector": ZERO, "topK": 101}, 40024),
        ({"vector": ZERO, "topK": 51, "returnValues": True}, 40025),
        ({"vector": ZERO, "topK": 51, "returnMetadata": "all"}, 40025),
        ({"vector": ZERO, "returnMetadata": "some"}, 40026),
        ({"vector": ZERO, "topK": "5"}, 40026),
        ({"topK": 5}, 40026),
    ],
)
def test_query_limits(client: TestClient, body: Any, code: int) -> None:
    status, error = call(client, "POST", "/query", json=body)
    assert (status, error["code"]) == (400, code), error


def test_query_topk_at_the_limits_is_accepted(client: TestClient) -> None:
    for body in (
        {"vector": ZERO, "topK": 100, "returnMetadata": "indexed"},
        {"vector": ZERO, "topK": 50, "returnValues": True, "returnMetadata": "all"},
    ):
        assert call(client, "POST", "/query", json=body)[0] == 200


def test_id_count_limits(client: TestClient) -> None:
    ids = [f"v{i}" for i in range(101)]
    status, error = call(client, "POST", "/get_by_ids", json={"ids": ids[:21]})
    assert (status, error["code"]) == (400, 40007)
    assert call(client, "POST", "/get_by_ids", json={"ids": ids[:20]})[0] == 200
    status, error = call(client, "POST", "/delete_by_ids", json={"ids": ids})
    assert (status, error["code"]) == (400, 40007)
    assert call(client, "POST", "/delete_by_ids", json={"ids": ids[:100]})[0] == 200


# -- property ---------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.lists(st.floats(-1, 1, allow_nan=False, width=32), min_size=DIMS, max_size=DIMS),
        min_size=2,
        max_size=12,
    ),
    st.data(),
)
def test_cosine_top1_of_a_stored_vector_is_itself(
    tmp_path_factory: pytest.TempPathFactory, vectors: list[list[float]], data: st.DataObject
) -> None:
    unit = [np.asarray(v) / np.linalg.norm(v) for v in vectors if np.linalg.norm(v) > 1e-3]
    # Distinct directions only: two parallel vectors would tie at score 1.
    distinct = [v for i, v in enumerate(unit) if all(float(v @ u) < 0.999 for u in unit[:i])]
    if not distinct:
        return
    svc = VectorizeService(
        EmulatorContext(state_dir=tmp_path_factory.mktemp("p"), account_id=ACCOUNT, api_token="t")
    )
    try:
        svc.store.create_index("prop", DIMS, "cosine")
        svc.store.write(
            "prop", [VectorIn(f"v{i}", v.tolist()) for i, v in enumerate(distinct)], upsert=True
        )
        i = data.draw(st.integers(0, len(distinct) - 1))
        result = svc.store.query("prop", parse_query({"vector": distinct[i].tolist(), "topK": 1}))
        assert result["matches"][0]["id"] == f"v{i}"
        assert result["matches"][0]["score"] == pytest.approx(1.0, abs=1e-5)
    finally:
        svc.close()


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.floats(-3, 3, allow_nan=False),
    st.sampled_from(["", "a", "ab", "b", "né", "z" * 70]),
)
_conditions = st.lists(
    st.tuples(
        st.sampled_from(["k", "n"]),
        st.one_of(
            st.tuples(st.sampled_from(["$eq", "$ne"]), _scalars),
            st.tuples(st.sampled_from(["$in", "$nin"]), st.lists(_scalars, max_size=3)),
            st.tuples(
                st.sampled_from(["$gt", "$gte", "$lt", "$lte"]),
                st.one_of(st.integers(-3, 3), st.sampled_from(["a", "b", "né"])),
            ),
        ),
    ),
    min_size=1,
    max_size=3,
)


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(st.dictionaries(st.sampled_from(["k", "n"]), _scalars, max_size=2), max_size=12),
    conditions=_conditions,
)
def test_filter_mask_agrees_with_per_vector_matching(
    rows: list[dict[str, Any]], conditions: list[tuple[str, tuple[str, Any]]]
) -> None:
    """The vectorised filter used by queries answers exactly as the per-vector rule."""
    from cfai.local.services.vectorize._filters import _normal, mask, matches

    indexed = [{k: _normal(v) for k, v in row.items()} for row in rows]
    parsed = [(key, [op]) for key, op in conditions]
    expected = [matches(parsed, row) for row in indexed]
    assert mask(parsed, indexed, {}).tolist() == expected
