"""The rag Worker's API in Node with stub bindings: ingest (chunks, ids, metadata, batches,
stale chunks), query (context, matches, streaming), delete."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

from conftest import TOKEN, env_for, render
from node_harness import request, run_worker

from cfai.config import PlatformConfig

EMBED = {"@cf/baai/bge-small-en-v1.5": {"embed": 4}}
TEXT = (
    "Workers AI runs models on Cloudflare's network. Vectorize stores embeddings for search. "
    "AI Gateway caches, logs and rate limits model calls for every application."
)


def _run(tmp_path: Path, platform: PlatformConfig, requests: list[dict[str, Any]], **stubs: Any):
    worker = render(platform, "rag")
    scenario = {"env": env_for(worker), "requests": requests, "ai_default": EMBED, **stubs}
    return run_worker(tmp_path, worker.source, scenario)


def test_ingest_chunks_embeds_and_upserts(fixture_platform: PlatformConfig, tmp_path: Path) -> None:
    docs = {"documents": [{"id": "guide", "text": TEXT, "metadata": {"lang": "en"}}]}
    replies, calls = _run(
        tmp_path, fixture_platform, [request("POST", "/documents", docs, token=TOKEN)]
    )
    assert replies[0].status == 200, replies[0].body
    upserts = [c for c in calls["vectorize"] if c["op"] == "upsert"]
    vectors = upserts[0]["vectors"]
    body = replies[0].json()
    assert body["documents"] == 1 and body["chunks"] == len(vectors) > 2
    assert body["mutation_id"] is not None
    assert [v["id"] for v in vectors] == [f"guide#{n}" for n in range(len(vectors))]
    for n, v in enumerate(vectors):
        meta = v["metadata"]
        assert meta["document_id"] == "guide" and meta["chunk"] == n and meta["lang"] == "en"
        assert 0 < len(meta["text"]) <= 64 and meta["text"] in TEXT
        assert len(v["values"]) == 4
    # Chunks cover the text, end on word boundaries and overlap their neighbours.
    texts = [v["metadata"]["text"] for v in vectors]
    assert texts[0].startswith("Workers AI") and texts[-1].endswith("application.")
    assert all(TEXT[TEXT.index(t) + len(t)] == " " for t in texts[:-1])
    assert any(a.split()[-1] in b for a, b in itertools.pairwise(texts))
    (embed_call,) = calls["ai"]
    assert embed_call["model"] == "@cf/baai/bge-small-en-v1.5"
    assert embed_call["inputs"] == {"text": texts}  # mean pooling is the default: not sent
    # Re-ingest removes chunk ids beyond the new count (bounded by the per-document maximum).
    (delete,) = [c for c in calls["vectorize"] if c["op"] == "deleteByIds"]
    assert delete["ids"][0] == f"guide#{len(vectors)}" and delete["ids"][-1] == "guide#99"


def test_ingest_batches_embeddings_and_writes(
    fixture_platform: PlatformConfig, tmp_path: Path
) -> None:
    docs = {"documents": [{"id": f"d{i}", "text": f"doc {i}"} for i in range(250)]}
    replies, calls = _run(
        tmp_path, fixture_platform, [request("POST", "/documents", docs, token=TOKEN)]
    )
    assert replies[0].json()["chunks"] == 250
    assert [len(c["inputs"]["text"]) for c in calls["ai"]] == [100, 100, 50]
    deletes = [c for c in calls["vectorize"] if c["op"] == "deleteByIds"]
    assert all(len(c["ids"]) <= 100 for c in deletes)
    assert sum(len(c["ids"]) for c in deletes) == 250 * 99


def test_ingest_validates_documents(fixture_platform: PlatformConfig, tmp_path: Path) -> None:
    long_id = "x" * 62
    bad = [
        ({}, "documents"),
        ({"documents": [{"text": "a"}]}, "documents[0].id"),
        ({"documents": [{"id": long_id, "text": "a"}]}, "documents[0].id"),
        ({"documents": [{"id": "a", "text": "x"}, {"id": "a", "text": "y"}]}, "documents[1].id"),
        ({"documents": [{"id": "a", "text": "   "}]}, "documents[0].text"),
        ({"documents": [{"id": "a", "text": 3}]}, "documents[0].text"),
        ({"documents": [{"id": "a", "text": "t", "metadata": {"$x": 1}}]}, "documents[0].metadata"),
    ]
    replies, calls = _run(
        tmp_path, fixture_platform, [request("POST", "/documents", b, token=TOKEN) for b, _ in bad]
    )
    for reply, (_, field) in zip(replies, bad, strict=True):
        assert reply.status == 400, reply.body
        assert reply.json()["error"]["message"].startswith(field)
    assert calls["ai"] == [] and calls["vectorize"] == []
    ok = {"documents": [{"id": "é" * 30, "text": "fits: 60 bytes"}]}
    replies, _ = _run(tmp_path, fixture_platform, [request("POST", "/documents", ok, token=TOKEN)])
    assert replies[0].status == 200


def test_query_builds_context_and_returns_matches(
    fixture_platform: PlatformConfig, tmp_path: Path
) -> None:
    docs = {"documents": [{"id": "guide", "text": TEXT}]}
    replies, calls = _run(
        tmp_path,
        fixture_platform,
        [
            request("POST", "/documents", docs, token=TOKEN),
            request(
                "POST",
                "/query",
                {"question": "What caches calls?", "filter": {"document_id": "guide"}},
                token=TOKEN,
            ),
        ],
    )
    assert replies[1].status == 200, replies[1].body
    body = replies[1].json()
    assert body["answer"] == "ok"
    assert len(body["matches"]) == 2  # top_k from config
    for m in body["matches"]:
        assert set(m) == {"id", "document_id", "score", "text"}
        assert m["document_id"] == "guide" and m["id"].startswith("guide#") and m["text"] in TEXT
    (query,) = [c for c in calls["vectorize"] if c["op"] == "query"]
    assert query["options"] == {
        "topK": 2,
        "returnMetadata": "all",
        "filter": {"document_id": "guide"},
    }
    chat = calls["ai"][-1]
    assert chat["model"] == "@cf/meta/llama-3.1-8b-instruct"
    system, user = chat["inputs"]["messages"]
    assert system == {
        "role": "system",
        "content": "Answer the question using only the context. Say so when the context does not contain the answer.",
    }
    assert user["role"] == "user" and "What caches calls?" in user["content"]
    for m in body["matches"]:
        assert m["text"] in user["content"]
    assert replies[1].headers["cf-aig-log-id"]


def test_query_streams_matches_first(fixture_platform: PlatformConfig, tmp_path: Path) -> None:
    sse = ['data: {"response":"Gate"}\n\n', 'data: {"response":"way"}\n\n', "data: [DONE]\n\n"]
    replies, _ = _run(
        tmp_path,
        fixture_platform,
        [
            request("POST", "/documents", {"documents": [{"id": "g", "text": TEXT}]}, token=TOKEN),
            request("POST", "/query", {"question": "q", "stream": True, "top_k": 1}, token=TOKEN),
        ],
        ai_default={**EMBED, "@cf/meta/llama-3.1-8b-instruct": {"sse": sse}},
    )
    reply = replies[1]
    assert reply.headers["content-type"] == "text/event-stream"
    events = [b.removeprefix("data: ") for b in reply.body.decode().split("\n\n") if b]
    first = json.loads(events[0])
    assert list(first) == ["matches"] and len(first["matches"]) == 1
    assert [json.loads(e)["response"] for e in events[1:-1]] == ["Gate", "way"]
    assert events[-1] == "[DONE]"


def test_query_validates_and_maps_upstream_errors(
    fixture_platform: PlatformConfig, tmp_path: Path
) -> None:
    replies, _ = _run(
        tmp_path,
        fixture_platform,
        [
            request("POST", "/query", {}, token=TOKEN),
            request("POST", "/query", {"question": "q", "top_k": 51}, token=TOKEN),
            request("POST", "/query", {"question": "q", "filter": {}}, token=TOKEN),
            request("POST", "/query", {"question": "q"}, token=TOKEN),
        ],
        vectorize_throw="VECTOR_QUERY_ERROR (code = 40026): internal shard 7",
    )
    assert [r.status for r in replies] == [400, 400, 400, 502]
    assert [r.json()["error"]["message"].split(":")[0] for r in replies[:3]] == [
        "question",
        "top_k",
        "filter",
    ]
    assert "shard" not in replies[3].body.decode()


def test_delete_document_removes_every_chunk_id(
    fixture_platform: PlatformConfig, tmp_path: Path
) -> None:
    replies, calls = _run(
        tmp_path,
        fixture_platform,
        [
            request("DELETE", "/documents/guide%20v2", token=TOKEN),
            request("GET", "/documents/guide", token=TOKEN),
            request("DELETE", "/documents/%E0%A4%A", token=TOKEN),
        ],
    )
    assert replies[0].status == 200
    assert replies[0].json() == {"document": "guide v2", "mutation_id": "m-1"}
    (delete,) = calls["vectorize"]
    assert delete["ids"] == [f"guide v2#{n}" for n in range(100)]
    assert replies[1].status == 405 and replies[1].headers["allow"] == "DELETE"
    assert replies[2].status == 400
