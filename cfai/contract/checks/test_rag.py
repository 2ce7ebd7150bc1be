"""rag Workers: ingest, query finds the document first with its text, filters, delete.

Vectorize is eventually consistent on Cloudflare: reads are retried for at most
`consistency_wait` seconds (0 locally, where writes are visible at once).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import httpx2
import openai
import pytest

from cfai.catalog import CATALOG
from cfai.contract._http import SecretGuard, assert_json_error, describe, eventually, json_body
from cfai.contract._outputs import Target, WorkerTarget
from cfai.contract.plugin import ClientFactory


@dataclass(frozen=True)
class Doc:
    id: str
    text: str


@dataclass(frozen=True)
class Ingested:
    client: httpx.Client
    target: Doc
    other: Doc


def _doc(run: str, topic: str) -> Doc:
    words = " ".join(uuid.uuid4().hex[:8] for _ in range(4))
    return Doc(
        id=f"cfai-contract-{run}-{topic}",
        text=f"Contract note on {topic}: {words}. The {topic} procedure is reviewed every quarter.",
    )


def _query(client: httpx.Client, question: str, **extra: Any) -> list[dict[str, Any]]:
    body = json_body(client.post("/query", json={"question": question, **extra}))
    assert isinstance(body.get("answer"), str), f"query answer must be a string: {body!r}"
    matches = body.get("matches")
    assert isinstance(matches, list), f"query matches must be a list: {body!r}"
    for m in matches:
        assert {"id", "document_id", "score", "text"} <= set(m), f"match fields: {m!r}"
    return matches


@pytest.fixture
def ingested(rag_worker: WorkerTarget, worker_client: ClientFactory) -> Iterator[Ingested]:
    client = worker_client(rag_worker.name)
    run = uuid.uuid4().hex[:10]
    target, other = _doc(run, "lighthouse"), _doc(run, "greenhouse")
    r = client.post(
        "/documents",
        json={
            "documents": [
                {"id": d.id, "text": d.text, "metadata": {"source": "cfai-contract"}}
                for d in (target, other)
            ]
        },
    )
    body = json_body(r)
    assert body.get("documents") == 2, f"ingest answer: {body!r}"
    assert isinstance(body.get("chunks"), int) and body["chunks"] >= 2, f"ingest answer: {body!r}"
    assert "mutation_id" in body, f"ingest answer: {body!r}"
    yield Ingested(client, target, other)
    for d in (target, other):
        client.delete(f"/documents/{d.id}")


def test_query_finds_ingested_document_first(ingested: Ingested, consistency_wait: float) -> None:
    def found() -> list[dict[str, Any]]:
        matches = _query(ingested.client, ingested.target.text)
        assert matches, "no matches"
        first = matches[0]
        assert first["document_id"] == ingested.target.id, (
            f"first match is {first['document_id']!r}, expected {ingested.target.id!r}"
        )
        return matches

    matches = eventually(found, consistency_wait)
    assert matches[0]["text"] and matches[0]["text"] in ingested.target.text, (
        f"match text {matches[0]['text']!r} is not the document's"
    )


def test_query_filter_honoured(ingested: Ingested, consistency_wait: float) -> None:
    def filtered() -> None:
        # Ask with the target's text but filter to the other document.
        matches = _query(
            ingested.client, ingested.target.text, filter={"document_id": ingested.other.id}
        )
        assert matches, "no matches for the filtered document"
        ids = {m["document_id"] for m in matches}
        assert ids == {ingested.other.id}, f"filter document_id={ingested.other.id} returned {ids}"

    eventually(filtered, consistency_wait)


def test_delete_removes_document(ingested: Ingested, consistency_wait: float) -> None:
    def visible() -> None:
        first = _query(ingested.client, ingested.target.text)[0]["document_id"]
        assert first == ingested.target.id, f"{ingested.target.id} not yet first ({first})"

    eventually(visible, consistency_wait)
    json_body(ingested.client.delete(f"/documents/{ingested.target.id}"))

    def gone() -> None:
        ids = {m["document_id"] for m in _query(ingested.client, ingested.target.text)}
        assert ingested.target.id not in ids, f"{ingested.target.id} still matches after DELETE"

    eventually(gone, consistency_wait)


def test_openai_embeddings_have_the_index_dimensions(
    rag_worker: WorkerTarget, cfai_target: Target
) -> None:
    spec = CATALOG.get(rag_worker.models[1]) if len(rag_worker.models) > 1 else None
    http = httpx2.Client(timeout=60.0, event_hooks={"response": [SecretGuard(cfai_target.secrets)]})
    client = openai.OpenAI(
        base_url=f"{rag_worker.url}/v1",
        api_key=cfai_target.auth_token or "no-auth",
        http_client=http,
        max_retries=0,
        default_headers=dict(rag_worker.request_headers),
    )
    try:
        texts = ["gateway caching keeps answers", "vectorize filters need an index"]
        done = client.embeddings.create(model="default", input=texts)
        again = client.embeddings.create(model="default", input=texts[0], encoding_format="float")
    finally:
        client.close()
    vectors = [d.embedding for d in sorted(done.data, key=lambda d: d.index)]
    assert len(vectors) == 2 and len(vectors[0]) == len(vectors[1]) > 0, done
    if spec is not None and spec.dimensions:
        assert len(vectors[0]) == spec.dimensions, (
            f"{len(vectors[0])} dimensions; {spec.name} makes {spec.dimensions}"
        )
    assert all(abs(a - b) < 1e-4 for a, b in zip(again.data[0].embedding, vectors[0], strict=True))


@pytest.mark.parametrize(
    "bad", [{"$regex": "x"}, {"document_id": {"$in": []}}], ids=["unknown-operator", "empty-in"]
)
def test_query_filter_vectorize_refuses_400_names_filter(
    rag_worker: WorkerTarget, worker_client: ClientFactory, bad: dict[str, Any]
) -> None:
    r = worker_client(rag_worker.name).post("/query", json={"question": "caching?", "filter": bad})
    error = assert_json_error(r, 400)
    assert error["message"].startswith("filter"), describe(r)
