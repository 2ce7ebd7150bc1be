"""The emulated Vectorize as workerd's ``env.VECTORIZE`` binding reaches it, and the workerd
config fragments the service contributes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from cfai.local.services.base import EmulatorContext, WorkerdBinding, WorkerdService
from cfai.local.services.frontdoor import BindingScope
from cfai.local.services.vectorize import VectorizeService

Serve = Callable[..., Starlette]  # the `serve` fixture (conftest)
Binding = Callable[..., dict[str, str]]  # the `binding` fixture (conftest)

DIMS = 32


def e(i: int) -> list[float]:
    return [1.0 if j == i else 0.0 for j in range(DIMS)]


@pytest.fixture
def service(tmp_path: Path) -> Iterator[VectorizeService]:
    svc = VectorizeService(EmulatorContext(state_dir=tmp_path, account_id="a" * 32, api_token="t"))
    svc.store.create_index("acme-docs", DIMS, "cosine")
    yield svc
    svc.close()


@pytest.fixture
def wire(service: VectorizeService, serve: Serve, binding: Binding) -> TestClient:
    """A client speaking as workerd's vectorize fetcher for index acme-docs (Worker qa)."""
    app = serve(service.ctx, service)
    return TestClient(
        app, base_url="http://vector-search", headers=binding("vectorize", "qa", "acme-docs")
    )


def bare(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


def ndjson_upsert(wire: TestClient, vectors: list[dict[str, Any]], op: str = "upsert") -> Any:
    body = "\n".join(json.dumps(v) for v in vectors)  # workerd trims the final newline
    headers = {
        "content-type": "application/x-ndjson",
        "cf-vector-search-dim-width": str(len(vectors[0]["values"])),
        "cf-vector-search-dim-height": str(len(vectors)),
    }
    return wire.post(f"/{op}", content=body, headers=headers)


def test_ndjson_upsert_then_query_returns_bare_json(wire: TestClient) -> None:
    result = bare(
        ndjson_upsert(
            wire,
            [
                {"id": "near", "values": e(0), "metadata": {"t": "n"}, "namespace": "ns"},
                {"id": "far", "values": e(1)},
            ],
        )
    )
    assert set(result) == {"mutationId"} and result["mutationId"]
    body = {"vector": e(0), "topK": 2, "returnMetadata": "all", "returnValues": True}
    result = bare(wire.post("/query", json=body))
    assert result["count"] == 2
    assert result["matches"][0] == {
        "id": "near",
        "score": pytest.approx(1.0),
        "values": e(0),
        "metadata": {"t": "n"},
        "namespace": "ns",
    }
    assert result["matches"][1]["id"] == "far"


def test_json_vectors_body_is_accepted(wire: TestClient) -> None:
    bare(wire.post("/insert", json={"vectors": [{"id": "a", "values": e(2)}]}))
    assert bare(wire.get("/info"))["vectorCount"] == 1


def test_get_by_ids_answers_an_array_of_existing_vectors(wire: TestClient) -> None:
    ndjson_upsert(
        wire, [{"id": "a", "values": e(0), "metadata": {"k": 1}}, {"id": "b", "values": e(1)}]
    )
    got = bare(wire.post("/getByIds", json={"ids": ["b", "missing", "a"]}))
    assert got == [
        {"id": "b", "values": e(1)},
        {"id": "a", "values": e(0), "metadata": {"k": 1}},
    ]


def test_delete_by_ids_then_info(wire: TestClient) -> None:
    ndjson_upsert(wire, [{"id": "a", "values": e(0)}, {"id": "b", "values": e(1)}])
    deleted = bare(wire.post("/deleteByIds", json={"ids": ["a"]}))
    info = bare(wire.get("/info"))
    assert set(info) == {
        "vectorCount",
        "dimensions",
        "processedUpToDatetime",
        "processedUpToMutation",
    }
    assert info["vectorCount"] == 1 and info["dimensions"] == DIMS
    assert info["processedUpToMutation"] == deleted["mutationId"]


def test_query_by_vector_id(wire: TestClient) -> None:
    ndjson_upsert(
        wire, [{"id": "a", "values": e(0)}, {"id": "b", "values": [0.9, 0.1] + [0.0] * 30}]
    )
    result = bare(wire.post("/query", json={"vectorId": "b", "topK": 2}))
    assert [m["id"] for m in result["matches"]] == ["b", "a"]
    error = bare(wire.post("/query", json={"vectorId": "nope"}), 404)
    assert error["code"] == 40013


def test_boolean_return_metadata_means_all(wire: TestClient) -> None:
    ndjson_upsert(wire, [{"id": "a", "values": e(0), "metadata": {"k": "v"}}])
    [match] = bare(wire.post("/query", json={"vector": e(0), "returnMetadata": True}))["matches"]
    assert match["metadata"] == {"k": "v"}


def test_errors_are_code_and_error_with_exact_json_type(wire: TestClient) -> None:
    error = bare(wire.post("/query", json={"vector": [1.0, 2.0]}), 400)
    assert error == {
        "code": 40006,
        "error": "invalid query vector, expected 32 dimensions, and got 2 dimensions",
    }
    error = bare(ndjson_upsert(wire, [{"id": "a", "values": [1.0]}]), 400)
    assert error["code"] == 40012 and 'id="a"' in error["error"]


def test_binding_batch_limit_is_1000(wire: TestClient) -> None:
    error = bare(ndjson_upsert(wire, [{"id": f"v{i}", "values": e(0)} for i in range(1001)]), 400)
    assert error["code"] == 40005
    bare(ndjson_upsert(wire, [{"id": f"v{i}", "values": e(0)} for i in range(1000)]))


def test_unknown_index_or_no_binding_token(wire: TestClient, binding: Binding) -> None:
    error = bare(wire.get("/info", headers=binding("vectorize", "qa", "other")), 404)
    assert error["code"] == 3000
    no_token = TestClient(wire.app, base_url="http://vector-search")
    assert bare(no_token.get("/info"), 401)["code"] == 10000


def test_binding_routes_answer_only_on_their_host(wire: TestClient, binding: Binding) -> None:
    headers = binding("vectorize", "qa", "acme-docs")
    other = TestClient(wire.app, base_url="http://testserver", headers=headers)
    assert other.get("/info").status_code == 404


def test_workerd_fragments() -> None:
    bindings = [
        {"type": "vectorize", "name": "VECTORIZE", "index_name": "acme-docs"},
        {"type": "vectorize", "name": "DOCS_AGAIN", "index_name": "acme-docs"},
        {"type": "vectorize", "name": "FAQ", "index_name": "acme-faq"},
        {"type": "ai", "name": "AI"},
    ]
    assert VectorizeService.workerd_services("qa", bindings) == [
        WorkerdService("vectorize:qa:acme-docs", BindingScope("vectorize", "qa", "acme-docs")),
        WorkerdService("vectorize:qa:acme-faq", BindingScope("vectorize", "qa", "acme-faq")),
    ]
    assert VectorizeService.workerd_binding("qa", bindings[0]) == WorkerdBinding(
        name="VECTORIZE",
        module="cloudflare-internal:vectorize-api",
        inner=[
            ("fetcher", "service", "vectorize:qa:acme-docs"),
            ("indexId", "text", "acme-docs"),
            ("indexVersion", "text", "v2"),
            ("useNdJson", "json", "true"),
        ],
    )
    with pytest.raises(NotImplementedError):
        VectorizeService.workerd_binding("qa", bindings[3])


def test_ndjson_lines_end_in_crlf_blank_lines_and_non_ascii(wire: TestClient) -> None:
    lines = [
        json.dumps({"id": "crlf", "values": e(3)}),
        "",
        json.dumps({"id": "é", "values": e(4), "metadata": {"t": "ü"}}, ensure_ascii=False),
    ]
    headers = {"content-type": "application/x-ndjson"}
    bare(wire.post("/upsert", content="\r\n".join(lines).encode(), headers=headers))
    got = bare(wire.post("/getByIds", json={"ids": ["crlf", "é"]}))
    assert [v["id"] for v in got] == ["crlf", "é"]
    assert got[1]["metadata"] == {"t": "ü"}
    # A line that is not JSON is refused whichever way the body was read.
    bad = "\n".join([json.dumps({"id": "x", "values": e(5)}), "{nope"])
    assert wire.post("/upsert", content=bad.encode(), headers=headers).status_code == 400
    assert bare(wire.get("/info"))["vectorCount"] == 2
