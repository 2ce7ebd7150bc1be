"""The chat Worker's API in Node with stub bindings: /chat (JSON, SSE, JSON mode),
OpenAI-compatible /v1/chat/completions (with the official client), /feedback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import openai
from conftest import TOKEN, env_for, make_platform, render
from node_harness import request, run_worker, serve_worker

from cfai.config import PlatformConfig

SSE = [
    'data: {"response":"Hel","p":"abc"}\n\n',
    'data: {"response":"lo"}\n\ndata: {"response":"","usage":',
    '{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}\n\n',
    "data: [DONE]\n\n",
]


def _run(
    tmp_path: Path, platform: PlatformConfig, key: str, requests: list[dict[str, Any]], **stubs: Any
):
    worker = render(platform, key)
    return run_worker(
        tmp_path, worker.source, {"env": env_for(worker), "requests": requests, **stubs}
    )


def _events(body: bytes) -> list[str]:
    text = body.decode()
    assert text.endswith("data: [DONE]\n\n")
    return [block.removeprefix("data: ") for block in text.split("\n\n") if block]


def test_chat_prepends_system_prompt_and_caps_max_tokens(
    fixture_platform: PlatformConfig, tmp_path: Path
) -> None:
    replies, calls = _run(
        tmp_path,
        fixture_platform,
        "chat",
        [
            request("POST", "/chat", {"prompt": "hi", "max_tokens": 1000}, token=TOKEN),
            request(
                "POST",
                "/chat",
                {"messages": [{"role": "user", "content": "a"}], "max_tokens": 8, "temperature": 1},
                token=TOKEN,
            ),
        ],
    )
    assert [r.status for r in replies] == [200, 200]
    assert replies[0].json() == {
        "response": "ok",
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }
    first, second = (c["inputs"] for c in calls["ai"])
    assert calls["ai"][0]["model"] == "@cf/meta/llama-3.1-8b-instruct"
    assert first == {
        "messages": [
            {"role": "system", "content": "You are concise."},
            {"role": "user", "content": "hi"},
        ],
        "max_tokens": 64,  # capped by the configured max_tokens
        "temperature": 0.2,
    }
    assert second["max_tokens"] == 8 and second["temperature"] == 1


def test_chat_streams_sse_passthrough(fixture_platform: PlatformConfig, tmp_path: Path) -> None:
    replies, calls = _run(
        tmp_path,
        fixture_platform,
        "chat",
        [request("POST", "/chat", {"prompt": "hi", "stream": True}, token=TOKEN)],
        ai_queue=[{"sse": SSE[:3]}],  # upstream without [DONE]: the Worker still ends with it
    )
    reply = replies[0]
    assert reply.status == 200
    assert reply.headers["content-type"] == "text/event-stream"
    assert reply.headers["cf-aig-log-id"] == "log-1"
    events = _events(reply.body)
    assert events[-1] == "[DONE]" and events.count("[DONE]") == 1
    assert [json.loads(e).get("response") for e in events[:-1]] == ["Hel", "lo", ""]
    assert json.loads(events[0])["p"] == "abc"  # passthrough: events verbatim
    assert calls["ai"][0]["inputs"]["stream"] is True


def test_chat_json_mode_from_configured_schema(tmp_path: Path) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    platform = make_platform({"facts": {"kind": "chat", "response_schema": schema}})
    replies, calls = _run(
        tmp_path,
        platform,
        "facts",
        [
            request("POST", "/chat", {"prompt": "where?"}, token=TOKEN),
            request("POST", "/chat", {"prompt": "where?"}, token=TOKEN),
            request("POST", "/chat", {"prompt": "where?", "stream": True}, token=TOKEN),
        ],
        ai_queue=[
            {"json": {"response": {"city": "Oslo"}}},
            {"json": {"response": '{"city": "Rome"}'}},
        ],
    )
    assert calls["ai"][0]["inputs"]["response_format"] == {
        "type": "json_schema",
        "json_schema": schema,
    }
    assert replies[0].json() == {"response": {"city": "Oslo"}, "usage": None}
    assert replies[1].json()["response"] == {"city": "Rome"}
    assert replies[2].status == 400 and "stream" in replies[2].json()["error"]["message"]


def test_chat_request_response_format(fixture_platform: PlatformConfig, tmp_path: Path) -> None:
    schema = {"type": "object"}
    _, calls = _run(
        tmp_path,
        fixture_platform,
        "chat",
        [
            request(
                "POST",
                "/chat",
                {"prompt": "x", "response_format": {"type": "json_object"}},
                token=TOKEN,
            ),
            request(
                "POST",
                "/chat",
                {"prompt": "x", "response_format": {"type": "json_schema", "json_schema": schema}},
                token=TOKEN,
            ),
        ],
        ai_queue=[{"json": {"response": {}}}, {"json": {"response": {}}}],
    )
    assert calls["ai"][0]["inputs"]["response_format"] == {"type": "json_object"}
    assert calls["ai"][1]["inputs"]["response_format"] == {
        "type": "json_schema",
        "json_schema": schema,
    }


def test_feedback_patches_the_gateway_log(fixture_platform: PlatformConfig, tmp_path: Path) -> None:
    replies, calls = _run(
        tmp_path,
        fixture_platform,
        "chat",
        [
            request(
                "POST", "/feedback", {"log_id": "log-9", "feedback": 1, "score": 80}, token=TOKEN
            ),
            request("POST", "/feedback", {"log_id": "log-9", "feedback": 0}, token=TOKEN),
            request("POST", "/feedback", {"feedback": -1}, token=TOKEN),
        ],
    )
    assert replies[0].status == 200 and replies[0].json() == {"ok": True}
    assert calls["feedback"] == [
        {"id": "golden-main", "logId": "log-9", "body": {"feedback": 1, "score": 80}}
    ]
    assert replies[1].status == 400 and "feedback" in replies[1].json()["error"]["message"]
    assert replies[2].status == 400 and "log_id" in replies[2].json()["error"]["message"]


def test_feedback_without_gateway_is_400(tmp_path: Path) -> None:
    platform = make_platform({"plain": {"kind": "chat"}})
    replies, calls = _run(
        tmp_path,
        platform,
        "plain",
        [request("POST", "/feedback", {"log_id": "x", "feedback": 1}, token=TOKEN)],
    )
    assert replies[0].status == 400 and "gateway" in replies[0].json()["error"]["message"].lower()
    assert calls["feedback"] == []


def test_openai_shape_without_client(fixture_platform: PlatformConfig, tmp_path: Path) -> None:
    replies, calls = _run(
        tmp_path,
        fixture_platform,
        "chat",
        [
            request(
                "POST",
                "/v1/chat/completions",
                {
                    "model": "anything",
                    "messages": [{"role": "user", "content": "hi"}],
                    "max_completion_tokens": 1,
                },
                token=TOKEN,
            )
        ],
        ai_queue=[
            {"json": {"response": "yo", "usage": {"prompt_tokens": 4, "completion_tokens": 1}}}
        ],
    )
    body = replies[0].json()
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    assert body["model"] == "@cf/meta/llama-3.1-8b-instruct"
    assert body["choices"] == [
        {"index": 0, "message": {"role": "assistant", "content": "yo"}, "finish_reason": "length"}
    ]
    assert body["usage"] == {"prompt_tokens": 4, "completion_tokens": 1, "total_tokens": 5}
    assert calls["ai"][0]["inputs"]["max_tokens"] == 1


def test_openai_client_against_worker(fixture_platform: PlatformConfig, tmp_path: Path) -> None:
    worker = render(fixture_platform, "chat")
    scenario = {
        "env": env_for(worker),
        "ai_default": {"@cf/meta/llama-3.1-8b-instruct": {"sse": SSE}},
    }
    with (
        serve_worker(tmp_path, worker.source, scenario) as url,
        openai.OpenAI(base_url=f"{url}/v1", api_key=TOKEN, max_retries=0) as client,
        openai.OpenAI(base_url=f"{url}/v1", api_key="wrong", max_retries=0) as bad,
    ):
        stream = client.chat.completions.create(
            model="@cf/meta/llama-3.1-8b-instruct",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == "Hello"
        assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 7
        assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
        try:
            bad.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
        except openai.AuthenticationError as err:
            assert err.status_code == 401
        else:
            raise AssertionError("a wrong api key was accepted")


def test_openai_client_non_streaming(fixture_platform: PlatformConfig, tmp_path: Path) -> None:
    worker = render(fixture_platform, "chat")
    with (
        serve_worker(tmp_path, worker.source, {"env": env_for(worker)}) as url,
        openai.OpenAI(base_url=f"{url}/v1", api_key=TOKEN, max_retries=0) as client,
    ):
        completion = client.chat.completions.create(
            model="whatever", messages=[{"role": "user", "content": "hi"}]
        )
        assert completion.choices[0].message.content == "ok"
        assert completion.choices[0].finish_reason == "stop"
        assert completion.usage is not None and completion.usage.total_tokens == 4
