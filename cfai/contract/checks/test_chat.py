"""chat Workers: JSON answers, SSE framing, the OpenAI-compatible route, limits, schemas."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx2
import openai
import pytest

from cfai.catalog import CATALOG, Vision
from cfai.contract._http import (
    SecretGuard,
    assert_json_error,
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


# --- function calling, images, reasoning --------------------------------------------------------

WEATHER: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather of a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "the city"}},
            "required": ["city"],
        },
    },
}


def _openai(worker: WorkerTarget, target: Target) -> openai.OpenAI:
    http = httpx2.Client(timeout=60.0, event_hooks={"response": [SecretGuard(target.secrets)]})
    return openai.OpenAI(
        base_url=f"{worker.url}/v1",
        api_key=target.auth_token or "no-auth",
        http_client=http,
        max_retries=0,
        default_headers=dict(worker.request_headers),
    )


def test_openai_tool_round_trip(tool_worker: WorkerTarget, openai_client_for: Any) -> None:
    client = openai_client_for(tool_worker)
    messages: list[Any] = [
        {
            "role": "user",
            "content": f"What is the weather in Oslo? Call get_weather. ({uuid.uuid4().hex[:8]})",
        }
    ]
    first = client.chat.completions.create(model="default", messages=messages, tools=[WEATHER])
    choice = first.choices[0]
    calls = choice.message.tool_calls or []
    assert choice.finish_reason == "tool_calls" and calls, f"no tool call: {choice}"
    call = calls[0]
    assert call.type == "function" and call.function.name == "get_weather", call
    args = json.loads(call.function.arguments)
    problems = schema_errors(args, WEATHER["function"]["parameters"])
    assert not problems, f"arguments {args!r} break the tool's schema: {problems}"
    messages += [
        choice.message,
        {
            "role": "tool",
            "tool_call_id": call.id,
            "content": "Oslo: minus three degrees and snowing.",
        },
    ]
    final = client.chat.completions.create(model="default", messages=messages, tools=[WEATHER])
    answer = final.choices[0].message
    assert final.choices[0].finish_reason != "tool_calls" and not answer.tool_calls, answer
    assert isinstance(answer.content, str) and "snow" in answer.content.lower(), (
        f"the final answer does not use the tool's result: {answer.content!r}"
    )


_PIXEL = (  # a 1x1 red PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"
)


def test_image_part_vision_model_or_400_naming_it(
    chat_worker: WorkerTarget, worker_client: ClientFactory
) -> None:
    model = chat_worker.models[0] if chat_worker.models else ""
    spec = CATALOG.get(model)
    content = [
        {"type": "text", "text": "What colour is this picture?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{_PIXEL}"}},
    ]
    r = worker_client(chat_worker.name).post(
        "/v1/chat/completions", json={"messages": [{"role": "user", "content": content}]}
    )
    if spec is not None and spec.vision is not Vision.NONE:
        body = json_body(r)
        text = body["choices"][0]["message"]["content"]
        assert isinstance(text, str) and text, f"no answer about the image: {body}"
    else:
        body = json_body(r, 400)
        assert model in body["error"]["message"], f"the 400 does not name the model: {body}"


def test_openai_reasoning_apart_from_the_answer(
    reasoning_worker: WorkerTarget, openai_client_for: Any
) -> None:
    client = openai_client_for(reasoning_worker)
    done = client.chat.completions.create(
        model="default", messages=[{"role": "user", "content": _prompt()}]
    )
    message = done.choices[0].message
    reasoning = (message.model_extra or {}).get("reasoning_content")
    assert isinstance(reasoning, str) and reasoning.strip(), f"no reasoning_content: {message}"
    assert isinstance(message.content, str) and message.content.strip(), f"no answer: {message}"
    assert "</think>" not in message.content and reasoning not in message.content


@pytest.fixture
def openai_client_for(cfai_target: Target) -> Iterator[Any]:
    made: list[openai.OpenAI] = []

    def make(worker: WorkerTarget) -> openai.OpenAI:
        made.append(_openai(worker, cfai_target))
        return made[-1]

    yield make
    for c in made:
        c.close()


def test_feedback_log_id_traversal_400_unknown_404(
    gateway_worker: WorkerTarget, worker_client: ClientFactory
) -> None:
    client = worker_client(gateway_worker.name)
    answer = client.post("/chat", json={"prompt": _prompt(), "stream": False})
    log_id = answer.headers.get("cf-aig-log-id")
    assert log_id, f"an answer through the gateway carries cf-aig-log-id: {describe(answer)}"
    walk = client.post(
        "/feedback",
        json={"log_id": f"../../{gateway_worker.gateway}/logs/{log_id}", "feedback": -1},
    )
    assert "log_id" in assert_json_error(walk, 400)["message"], describe(walk)
    unknown = client.post("/feedback", json={"log_id": "01JADMCQQQBWH3NXZ5GCRN98DP", "feedback": 1})
    assert_json_error(unknown, 404)
    assert json_body(client.post("/feedback", json={"log_id": log_id, "feedback": 1})) == {
        "ok": True
    }
