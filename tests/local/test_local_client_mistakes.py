"""Issue 11 on the real local stack (workerd + emulator): /feedback refuses a log id that
walks the log path (400) and answers 404 for an unknown log; what Vectorize or Workers AI
refuse of a client's input is a 400 naming the field, with the upstream reason, not a 502."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.platform


def _client(outputs: dict[str, Any], worker: str) -> httpx.Client:
    return httpx.Client(
        base_url=outputs["endpoints"][worker],
        headers={"authorization": f"Bearer {outputs['auth_token']}"},
        timeout=30,
    )


def test_feedback_log_id_traversal_is_400_and_unknown_log_404(
    local_platform: dict[str, Any],
) -> None:
    gateway = local_platform["workers"]["assistant"]["gateway"]
    with _client(local_platform, "assistant") as chat:
        answer = chat.post(
            "/chat", json={"prompt": f"feedback probe {uuid.uuid4().hex}", "stream": False}
        )
        log_id = answer.headers["cf-aig-log-id"]
        walk = chat.post(
            "/feedback", json={"log_id": f"../../{gateway}/logs/{log_id}", "feedback": -1}
        )
        assert walk.status_code == 400, walk.text
        assert walk.json()["error"]["message"].startswith("log_id:")
        unknown = chat.post(
            "/feedback", json={"log_id": "01JADMCQQQBWH3NXZ5GCRN98DP", "feedback": 1}
        )
        assert unknown.status_code == 404, unknown.text
        assert chat.post("/feedback", json={"log_id": log_id, "feedback": 1}).status_code == 200


@pytest.mark.parametrize(
    "bad_filter",
    [{"$regex": "x"}, {"document_id": {"$in": []}}, {"n": {"$gt": True}}, {"a..b": "x"}],
    ids=["regex", "empty-in", "gt-bool", "double-dot"],
)
def test_rag_filter_vectorize_refuses_is_400_naming_filter(
    local_platform: dict[str, Any], bad_filter: dict[str, Any]
) -> None:
    with _client(local_platform, "kb") as kb:
        r = kb.post("/query", json={"question": "gateway caching?", "filter": bad_filter})
    assert r.status_code == 400, r.text
    message = r.json()["error"]["message"]
    assert message.startswith("filter: ") and "(Vectorize 40027)" in message


@pytest.mark.parametrize(
    "metadata",
    [{"a": {"$x": 1}}, {"a": {"b.c": 1}}, {"blob": "x" * 11_000}],
    ids=["dollar-key", "dotted-key", "over-10kib"],
)
def test_rag_metadata_vectorize_refuses_is_400_naming_metadata(
    local_platform: dict[str, Any], metadata: dict[str, Any]
) -> None:
    doc = {"id": f"mistake-{uuid.uuid4().hex[:8]}", "text": "a short note", "metadata": metadata}
    with _client(local_platform, "kb") as kb:
        r = kb.post("/documents", json={"documents": [doc]})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["message"].startswith("metadata: ")


def test_unsatisfiable_response_format_is_400_naming_it(local_platform: dict[str, Any]) -> None:
    schema = {"type": "array", "minItems": 1500, "items": {"type": "array", "minItems": 1500, "items": {"type": "string"}}}  # fmt: skip
    body = {
        "prompt": f"x {uuid.uuid4().hex}",
        "response_format": {"type": "json_schema", "json_schema": schema},
    }
    with _client(local_platform, "assistant") as chat:
        r = chat.post("/chat", json=body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["message"].startswith("response_format: JSON Mode couldn't be met")
