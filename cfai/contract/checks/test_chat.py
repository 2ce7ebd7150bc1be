"""chat Workers: JSON answers, SSE framing, the OpenAI-compatible route, limits, schemas."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import httpx2
import openai
import pytest

from cfai.contract._http import (
    SecretGuard,
    assert_sse_chat_stream,
    assert_usage,
    describe,
    json_body,
    schema_errors,
    sse_events,
)
from cfai.contract._outputs import Target, WorkerTarget
from cfai.contract.plugin import ClientFactory

LONG_PROMPT = "Describe, in at least fifty words, how a lighthouse keeper spends a stormy night."


def _prompt() -> str:
    # Unique, so no check is answered from a gateway cache another check filled.
    return f"{LONG_PROMPT} (contract check {uuid.uuid4().hex[:12]})"


@pytest.fixture
def openai_client(chat_worker: WorkerTarget, cfai_target: Target) -> Iterator[openai.OpenAI]:
    http = httpx2.Client(timeout=60.0, event_hooks={"response": [SecretGuard(cfai_target.secrets)]})
    client = openai.OpenAI(
        base_url=f"{chat_worker.url}/v1",
        api_key=cfai_target.auth_token or "no-auth",
        http_client=http,
        max_retries=0,
        default_headers=dict(chat_worker.request_headers),
    )
    yield client
    client.close()


def test_chat_prompt_json_answer(chat_worker: WorkerTarget, worker_client: ClientFactory) -> None:
    r = worker_client(chat_worker.name).post("/chat", json={"prompt": _prompt(), "stream": False})
    body = json_body(r)
    assert isinstance(body.get("response"), str) and body["response"], describe(r)
    assert_usage(body.get("usage"))


def test_chat_messages_json_answer(chat_worker: WorkerTarget, worker_client: ClientFactory) -> None:
    messages = [{"role": "user", "content": _prompt()}]
    r = worker_client(chat_worker.name).post("/chat", json={"messages": messages, "stream": False})
    body = json_body(r)
    assert isinstance(body.get("response"), str) and body["response"], describe(r)
    assert_usage(body.get("usage"))


def test_chat_stream_sse_framing(chat_worker: WorkerTarget, worker_client: ClientFactory) -> None:
    with worker_client(chat_worker.name).stream(
        "POST", "/chat", json={"prompt": _prompt(), "stream": True}
    ) as r:
        assert r.status_code == 200, describe(r)
        ctype = r.headers.get("content-type", "")
        assert ctype.startswith("text/event-stream"), f"content-type {ctype!r}"
        events = sse_events(r)
    text, _ = assert_sse_chat_stream(events)
    assert text.strip(), "the stream carried no text"


def test_chat_max_tokens_honoured(chat_worker: WorkerTarget, worker_client: ClientFactory) -> None:
    r = worker_client(chat_worker.name).post(
        "/chat", json={"prompt": _prompt(), "max_tokens": 5, "stream": False}
    )
    usage = json_body(r).get("usage")
    assert_usage(usage)
    assert usage["completion_tokens"] <= 5, f"max_tokens=5 but completion_tokens={usage}"


def test_chat_bad_field_400_names_it(
    chat_worker: WorkerTarget, worker_client: ClientFactory
) -> None:
    r = worker_client(chat_worker.name).post("/chat", json={"prompt": "hi", "max_tokens": "many"})
    body = json_body(r, 400)
    assert "max_tokens" in body["error"]["message"], describe(r)


def test_openai_completion(chat_worker: WorkerTarget, openai_client: openai.OpenAI) -> None:
    done = openai_client.chat.completions.create(
        model=chat_worker.models[0] if chat_worker.models else "default",
        messages=[{"role": "user", "content": _prompt()}],
    )
    assert done.choices, "no choices"
    assert isinstance(done.choices[0].message.content, str) and done.choices[0].message.content
    assert done.usage is not None and done.usage.completion_tokens >= 1


def test_openai_stream(chat_worker: WorkerTarget, openai_client: openai.OpenAI) -> None:
    stream = openai_client.chat.completions.create(
        model=chat_worker.models[0] if chat_worker.models else "default",
        messages=[{"role": "user", "content": _prompt()}],
        stream=True,
    )
    parts = [c.choices[0].delta.content or "" for c in stream if c.choices]
    assert "".join(parts).strip(), f"the stream carried no content ({len(parts)} chunks)"


def test_openai_max_tokens_honoured(
    chat_worker: WorkerTarget, openai_client: openai.OpenAI
) -> None:
    done = openai_client.chat.completions.create(
        model=chat_worker.models[0] if chat_worker.models else "default",
        messages=[{"role": "user", "content": _prompt()}],
        max_tokens=5,
    )
    assert done.usage is not None, "no usage"
    assert done.usage.completion_tokens <= 5, f"max_tokens=5 but usage {done.usage}"


def test_structured_output_matches_schema(
    schema_worker: WorkerTarget, worker_client: ClientFactory
) -> None:
    assert schema_worker.response_schema is not None
    r = worker_client(schema_worker.name).post(
        "/chat", json={"prompt": "Name one fruit and its colour.", "stream": False}
    )
    answer = json_body(r).get("response")
    if isinstance(answer, str):
        try:
            answer = json.loads(answer)
        except ValueError:
            raise AssertionError(f"structured answer is not JSON: {answer[:200]!r}") from None
    problems = schema_errors(answer, schema_worker.response_schema)
    assert not problems, f"answer {answer!r} breaks the configured schema: {problems}"
