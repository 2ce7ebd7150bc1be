"""The emulated Vectorize over its v2 REST API: shapes, semantics, limits, persistence."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from cfai.local.services.base import EmulatorContext
from cfai.local.services.frontdoor import FrontDoor
from cfai.local.services.vectorize import VectorizeService

ACCOUNT = "a" * 32
TOKEN = "test-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}
BASE = f"/client/v4/accounts/{ACCOUNT}/vectorize/v2/indexes"
DIMS = 32


def e(i: int, scale: float = 1.0) -> list[float]:
    """Unit vector along axis i (times scale)."""
    return [scale if j == i else 0.0 for j in range(DIMS)]


def ndjson(*vectors: dict[str, Any]) -> str:
    return "\n".join(json.dumps(v) for v in vectors)


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def make_service(state_dir: Path, **settings: Any) -> VectorizeService:
    ctx = EmulatorContext(
        state_dir=state_dir, account_id=ACCOUNT, api_token=TOKEN, settings=settings
    )
    return VectorizeService(ctx)


def app_of(service: VectorizeService) -> Starlette:
    """The service's routes (REST and binding) through the front door, as the emulator
    app serves them."""
    door = FrontDoor(account_id=ACCOUNT, api_token=TOKEN, binding_key=None)
    return door.app(service.endpoints())


@pytest.fixture
def service(tmp_path: Path) -> Iterator[VectorizeService]:
    svc = make_service(tmp_path)
    yield svc
    svc.close()


@pytest.fixture
def client(service: VectorizeService) -> TestClient:
    return TestClient(app_of(service), headers=AUTH)


def ok(response: Any, status: int = 200) -> Any:
    body = response.json()
    assert response.status_code == status, body
    assert response.headers["content-type"] == "application/json"
    assert body["success"] is True and body["errors"] == [] and body["messages"] == []
    return body["result"]


def fails(response: Any, status: int, code: int) -> str:
    body = response.json()
    assert response.status_code == status, body
    assert body["success"] is False and body["result"] is None
    assert body["errors"][0]["code"] == code, body
    return str(body["errors"][0]["message"])


def create(client: TestClient, name: str = "docs", metric: str = "cosine") -> None:
    config = {"dimensions": DIMS, "metric": metric}
    ok(client.post(BASE, json={"name": name, "config": config}), 201)


def upsert(client: TestClient, body: str, name: str = "docs", verb: str = "upsert") -> str:
    headers = {"content-type": "application/x-ndjson"}
    result = ok(client.post(f"{BASE}/{name}/{verb}", content=body, headers=headers))
    return str(result["mutationId"])


def query(client: TestClient, name: str = "docs", **body: Any) -> Any:
    return ok(client.post(f"{BASE}/{name}/query", json=body))


# -- auth and index lifecycle ----------------------------------------------------------------


def test_rest_without_token_is_401(client: TestClient) -> None:
    fails(client.get(BASE, headers={"authorization": ""}), 401, 10000)
    fails(client.get(BASE, headers={"authorization": "Bearer wrong"}), 403, 9109)


def test_rest_other_account_is_refused(client: TestClient) -> None:
    fails(client.get(f"/client/v4/accounts/{'b' * 32}/vectorize/v2/indexes"), 403, 10000)


def test_create_get_list_delete_index(client: TestClient) -> None:
    body = {"name": "docs", "description": "d", "config": {"dimensions": 64, "metric": "euclidean"}}
    created = ok(client.post(BASE, json=body), 201)
    assert created["name"] == "docs" and created["description"] == "d"
    assert created["config"] == {"dimensions": 64, "metric": "euclidean"}
    assert created["created_on"].endswith("Z") and created["modified_on"]
    assert ok(client.get(f"{BASE}/docs")) == created
    assert [i["name"] for i in ok(client.get(BASE))] == ["docs"]
    assert ok(client.delete(f"{BASE}/docs")) is None
    message = fails(client.get(f"{BASE}/docs"), 404, 3000)
    assert message == 'vectorize.index.not_found - Index name "docs"'
    fails(client.delete(f"{BASE}/docs"), 404, 3000)
    assert ok(client.get(BASE)) == []


def test_create_duplicate_name_is_refused(client: TestClient) -> None:
    create(client)
    body = {"name": "docs", "config": {"dimensions": DIMS, "metric": "cosine"}}
    assert "duplicate_name" in fails(client.post(BASE, json=body), 409, 3002)


def test_deleted_name_can_be_reused(client: TestClient) -> None:
    create(client)
    upsert(client, ndjson({"id": "a", "values": e(0)}))
    ok(client.delete(f"{BASE}/docs"))
    create(client)
    assert ok(client.get(f"{BASE}/docs/info"))["vectorCount"] == 0


@pytest.mark.parametrize(
    ("preset", "dims"),
    [
        ("@cf/baai/bge-small-en-v1.5", 384),
        ("@cf/baai/bge-base-en-v1.5", 768),
        ("@cf/baai/bge-large-en-v1.5", 1024),
        ("openai/text-embedding-ada-002", 1536),
        ("cohere/embed-multilingual-v2.0", 768),
    ],
)
def test_create_from_preset(client: TestClient, preset: str, dims: int) -> None:
    created = ok(client.post(BASE, json={"name": "by-preset", "config": {"preset": preset}}), 201)
    assert created["config"] == {"dimensions": dims, "metric": "cosine"}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"name": "x1", "config": {"dimensions": 1537, "metric": "cosine"}}, 3001),
        ({"name": "x1", "config": {"dimensions": 31, "metric": "cosine"}}, 3001),
        ({"name": "x1", "config": {"dimensions": 64, "metric": "manhattan"}}, 3001),
        ({"name": "x1", "config": {"preset": "@cf/nope"}}, 3001),
        ({"name": "x1"}, 3001),
        ({"name": "Docs", "config": {"dimensions": 64, "metric": "cosine"}}, 3003),
        ({"name": "-docs", "config": {"dimensions": 64, "metric": "cosine"}}, 3003),
        ({"name": "d" * 65, "config": {"dimensions": 64, "metric": "cosine"}}, 3003),
    ],
)
def test_create_invalid_index_is_refused(client: TestClient, body: Any, code: int) -> None:
    fails(client.post(BASE, json=body), 400, code)
    assert ok(client.get(BASE)) == []


def test_longest_valid_name_is_accepted(client: TestClient) -> None:
    body = {"name": "d" * 64, "config": {"dimensions": 1536, "metric": "dot-product"}}
    ok(client.post(BASE, json=body), 201)


# -- search semantics ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metric", "vectors", "expected"),
    [
        # cosine similarity: higher is better, best first
        ("cosine", {"a": e(0), "b": [1.0, 1.0] + [0.0] * 30, "c": e(0, -1)},
         [("a", 1.0), ("b", 0.7071), ("c", -1.0)]),
        # L2 distance: lower is better, best first
        ("euclidean", {"a": e(0), "b": e(0, 2), "c": e(0, -1)},
         [("a", 0.0), ("b", 1.0), ("c", 2.0)]),
        # negative dot product: lower is better, best first
        ("dot-product", {"a": e(0, 3), "b": e(0), "c": e(0, -1)},
         [("a", -3.0), ("b", -1.0), ("c", 1.0)]),
    ],
)  # fmt: skip
def test_query_scores_and_order_per_metric(
    client: TestClient, metric: str, vectors: dict[str, list[float]], expected: list[Any]
) -> None:
    create(client, metric=metric)
    upsert(client, ndjson(*({"id": k, "values": v} for k, v in vectors.items())))
    result = query(client, vector=e(0), topK=3)
    assert result["count"] == 3
    assert [m["id"] for m in result["matches"]] == [i for i, _ in expected]
    for match, (_, score) in zip(result["matches"], expected, strict=True):
        assert match["score"] == pytest.approx(score, abs=1e-4)
        assert set(match) == {"id", "score"}


def test_query_topk_defaults_to_five(client: TestClient) -> None:
    create(client)
    upsert(client, ndjson(*({"id": f"v{i}", "values": e(i)} for i in range(8))))
    assert query(client, vector=e(0))["count"] == 5
    assert query(client, vector=e(0), topK=2)["count"] == 2


def test_query_returns_values_and_metadata_on_request(client: TestClient) -> None:
    create(client)
    upsert(client, ndjson({"id": "a", "values": e(1, 0.5), "metadata": {"title": "A", "n": 2}}))
    [match] = query(client, vector=e(1), returnValues=True, returnMetadata="all")["matches"]
    assert match["values"] == e(1, 0.5)
    assert match["metadata"] == {"title": "A", "n": 2}
    [bare] = query(client, vector=e(1), returnMetadata="none")["matches"]
    assert "metadata" not in bare and "values" not in bare


def test_insert_keeps_first_and_upsert_replaces_whole_vector(client: TestClient) -> None:
    create(client)
    upsert(client, ndjson({"id": "a", "values": e(0), "metadata": {"v": 1}}), verb="insert")
    upsert(client, ndjson({"id": "a", "values": e(1), "metadata": {"v": 2}}), verb="insert")
    [kept] = ok(client.post(f"{BASE}/docs/get_by_ids", json={"ids": ["a"]}))
    assert kept == {"id": "a", "values": e(0), "metadata": {"v": 1}}
    upsert(client, ndjson({"id": "a", "values": e(2)}))
    [replaced] = ok(client.post(f"{BASE}/docs/get_by_ids", json={"ids": ["a"]}))
    assert replaced == {"id": "a", "values": e(2)}  # metadata not merged


def test_namespaces_restrict_the_query(client: TestClient) -> None:
    create(client)
    upsert(
        client,
        ndjson(
            {"id": "t1", "values": e(0), "namespace": "tenant-1"},
            {"id": "t2", "values": e(0, 0.9), "namespace": "tenant-2"},
            {"id": "none", "values": e(0, 0.8)},
        ),
    )
    in_t2 = query(client, vector=e(0), topK=10, namespace="tenant-2")["matches"]
    assert [(m["id"], m.get("namespace")) for m in in_t2] == [("t2", "tenant-2")]
    everywhere = query(client, vector=e(0), topK=10)["matches"]
    assert {m["id"] for m in everywhere} == {"t1", "t2", "none"}
    assert query(client, vector=e(0), namespace="tenant-3")["matches"] == []


def test_delete_by_ids_and_info(client: TestClient) -> None:
    create(client)
    upsert(client, ndjson(*({"id": f"v{i}", "values": e(i)} for i in range(3))))
    result = ok(client.post(f"{BASE}/docs/delete_by_ids", json={"ids": ["v0", "nope"]}))
    info = ok(client.get(f"{BASE}/docs/info"))
    assert info == {
        "dimensions": DIMS,
        "vectorCount": 2,
        "processedUpToDatetime": info["processedUpToDatetime"],
        "processedUpToMutation": result["mutationId"],
    }
    assert info["processedUpToDatetime"].endswith("Z")


def test_list_vectors_pages_with_cursor(client: TestClient) -> None:
    create(client)
    upsert(client, ndjson(*({"id": f"v{i}", "values": e(i)} for i in range(5))))
    first = ok(client.get(f"{BASE}/docs/list", params={"count": 2}))
    assert first["count"] == 2 and first["totalCount"] == 5 and first["isTruncated"] is True
    assert first["cursorExpirationTimestamp"]
    seen = [v["id"] for v in first["vectors"]]
    cursor = first["nextCursor"]
    while cursor:
        page = ok(client.get(f"{BASE}/docs/list", params={"count": 2, "cursor": cursor}))
        seen += [v["id"] for v in page["vectors"]]
        cursor = page["nextCursor"]
    assert seen == [f"v{i}" for i in range(5)]
    fails(client.get(f"{BASE}/docs/list", params={"count": 1001}), 400, 40026)


def test_multipart_insert_and_unparsable_behavior(client: TestClient) -> None:
    create(client)
    body = (
        ndjson({"id": "a", "values": e(0)}) + "\n{not json\n" + ndjson({"id": "b", "values": e(1)})
    )
    files = {"vectors": ("v.ndjson", body.encode(), "application/x-ndjson")}
    fails(client.post(f"{BASE}/docs/insert", files=files), 400, 40023)
    assert ok(client.get(f"{BASE}/docs/info"))["vectorCount"] == 0
    url = f"{BASE}/docs/insert?unparsable-behavior=discard"
    ok(client.post(url, files=files))
    assert ok(client.get(f"{BASE}/docs/info"))["vectorCount"] == 2


def test_write_to_missing_index_is_404(client: TestClient) -> None:
    body = ndjson({"id": "a", "values": e(0)})
    headers = {"content-type": "application/x-ndjson"}
    fails(client.post(f"{BASE}/nope/upsert", content=body, headers=headers), 404, 3000)
    fails(client.post(f"{BASE}/nope/query", json={"vector": e(0)}), 404, 3000)


# -- persistence and consistency ---------------------------------------------------------------


def test_state_survives_a_new_service_on_the_same_dir(tmp_path: Path) -> None:
    first = make_service(tmp_path)
    client = TestClient(app_of(first), headers=AUTH)
    create(client)
    ok(client.post(f"{BASE}/docs/metadata_index/create",
                   json={"propertyName": "k", "indexType": "string"}))  # fmt: skip
    upsert(client, ndjson({"id": "a", "values": e(3), "metadata": {"k": "x"}}))
    first.close()

    second = make_service(tmp_path)
    try:
        client = TestClient(app_of(second), headers=AUTH)
        [match] = query(client, vector=e(3), filter={"k": "x"}, returnMetadata="all")["matches"]
        assert match == {"id": "a", "score": pytest.approx(1.0), "metadata": {"k": "x"}}
    finally:
        second.close()


def test_visibility_delay_hides_writes_until_it_passes(tmp_path: Path) -> None:
    service = make_service(tmp_path, vectorize_visibility_delay=30.0)
    clock = Clock()
    service.store.clock = clock
    client = TestClient(app_of(service), headers=AUTH)
    try:
        create(client)
        first = upsert(client, ndjson({"id": "a", "values": e(0), "metadata": {"v": 1}}))
        info = ok(client.get(f"{BASE}/docs/info"))
        assert info["vectorCount"] == 0 and info["processedUpToMutation"] is None
        assert query(client, vector=e(0))["matches"] == []
        clock.now += 30
        assert ok(client.get(f"{BASE}/docs/info"))["processedUpToMutation"] == first
        upsert(client, ndjson({"id": "a", "values": e(0), "metadata": {"v": 2}}))
        clock.now += 29
        [old] = query(client, vector=e(0), returnMetadata="all")["matches"]
        assert old["metadata"] == {"v": 1}
        clock.now += 1
        [new] = query(client, vector=e(0), returnMetadata="all")["matches"]
        assert new["metadata"] == {"v": 2}
    finally:
        service.close()


def test_pending_writes_survive_a_restart(tmp_path: Path) -> None:
    service = make_service(tmp_path, vectorize_visibility_delay=30.0)
    clock = Clock()
    service.store.clock = clock
    client = TestClient(app_of(service), headers=AUTH)
    create(client)
    mutation = upsert(client, ndjson({"id": "a", "values": e(0)}))
    service.close()
    again = make_service(tmp_path, vectorize_visibility_delay=30.0)
    clock.now += 31
    again.store.clock = clock
    try:
        info = again.store.info("docs")
        assert info["vectorCount"] == 1 and info["processedUpToMutation"] == mutation
    finally:
        again.close()


def test_reset_drops_everything(service: VectorizeService, client: TestClient) -> None:
    create(client)
    service.reset()
    assert ok(client.get(BASE)) == []
