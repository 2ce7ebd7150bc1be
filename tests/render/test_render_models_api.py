"""The chat and rag Workers with every model form, in Node with stub bindings: tool calls and
their round trip, image content parts (vision models only), reasoning apart from the answer,
chat.completion answers, the feedback log id, client mistakes as 400 (issue 11), and rag's
OpenAI-compatible /v1/embeddings."""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path
from typing import Any

import openai
from conftest import TOKEN, env_for, make_platform, render
from node_harness import request, run_worker, serve_worker

from cfai.config import PlatformConfig

ANSWER = {"response": "It is 330 metres.", "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}}  # fmt: skip
WEATHER = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object"}},
}
PNG = "data:image/png;base64," + base64.b64encode(b"\x89PNG fake").decode()


def _chat(model: str, **extra: Any) -> PlatformConfig:
    return make_platform({"c": {"kind": "chat", "model": model, "gateway": "main", **extra}})


def _run(
    tmp: Path, platform: PlatformConfig, key: str, requests: list[dict[str, Any]], **stubs: Any
):
    worker = render(platform, key)
    return run_worker(tmp, worker.source, {"env": env_for(worker), "requests": requests, **stubs})


def _post(path: str, body: Any) -> dict[str, Any]:
    return request("POST", path, body, token=TOKEN)


def _events(body: bytes) -> list[Any]:
    blocks = [b.removeprefix("data: ") for b in body.decode().split("\n\n") if b]
    assert blocks[-1] == "[DONE]"
    return [json.loads(b) for b in blocks[:-1]]


# --- tools ---------------------------------------------------------------------------------------


def test_native_tool_calls_become_openai_tool_calls(tmp_path: Path) -> None:
    platform = _chat("@cf/meta/llama-3.3-70b-instruct-fp8-fast")
    native = {"response": "", "tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}], "usage": ANSWER["usage"]}  # fmt: skip
    replies, calls = _run(
        tmp_path, platform, "c",
        [_post("/v1/chat/completions", {"messages": [{"role": "user", "content": "weather?"}], "tools": [WEATHER], "tool_choice": "auto"})],
        ai_queue=[{"json": native}],
    )  # fmt: skip
    choice = replies[0].json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["tool_calls"] == [
        {"id": "call_0", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}}
    ]  # fmt: skip
    assert (
        calls["ai"][0]["inputs"]["tools"] == [WEATHER]
        and calls["ai"][0]["inputs"]["tool_choice"] == "auto"
    )


def test_openai_client_tool_round_trip_against_the_worker(tmp_path: Path) -> None:
    platform = _chat("@cf/qwen/qwen3-30b-a3b-fp8")
    worker = render(platform, "c")
    call = {"id": "call_abc", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}  # fmt: skip
    first = {"object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", "content": None, "tool_calls": [call]}, "finish_reason": "tool_calls"}], "usage": ANSWER["usage"]}  # fmt: skip
    second = {"object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", "content": "Oslo has snow.", "reasoning_content": "The tool said snow."}, "finish_reason": "stop"}], "usage": ANSWER["usage"]}  # fmt: skip
    scenario = {"env": env_for(worker), "ai_queue": [{"json": first}, {"json": second}]}
    with (
        serve_worker(tmp_path, worker.source, scenario) as url,
        openai.OpenAI(base_url=f"{url}/v1", api_key=TOKEN, max_retries=0) as client,
    ):
        messages: list[Any] = [{"role": "user", "content": "What does get_weather say for Oslo?"}]
        done = client.chat.completions.create(model="x", messages=messages, tools=[WEATHER])
        (tc,) = done.choices[0].message.tool_calls or []
        assert done.choices[0].finish_reason == "tool_calls" and tc.function.name == "get_weather"
        messages += [
            done.choices[0].message,
            {"role": "tool", "tool_call_id": tc.id, "content": "snow"},
        ]
        final = client.chat.completions.create(model="x", messages=messages, tools=[WEATHER])
        assert final.choices[0].message.content == "Oslo has snow."
        assert final.choices[0].message.model_extra["reasoning_content"] == "The tool said snow."


def test_bad_tools_are_400_naming_them(tmp_path: Path) -> None:
    replies, calls = _run(
        tmp_path, _chat("@cf/meta/llama-3.1-8b-instruct"), "c",
        [
            _post("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]}),
            _post("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}], "tools": [WEATHER], "tool_choice": "any"}),
        ],
    )  # fmt: skip
    assert [r.status for r in replies] == [400, 400] and calls["ai"] == []
    assert replies[0].json()["error"]["message"].startswith("tools[0]:")
    assert replies[1].json()["error"]["message"].startswith("tool_choice:")


# --- vision --------------------------------------------------------------------------------------


def test_image_parts_reach_a_vision_model_and_are_refused_naming_another(tmp_path: Path) -> None:
    content = [
        {"type": "text", "text": "What is it?"},
        {"type": "image_url", "image_url": {"url": PNG}},
    ]
    body = {"messages": [{"role": "user", "content": content}]}
    replies, calls = _run(tmp_path / "v", _chat("@cf/google/gemma-3-12b-it"), "c", [_post("/v1/chat/completions", body)])  # fmt: skip
    assert replies[0].status == 200
    assert calls["ai"][0]["inputs"]["messages"][-1]["content"][1] == {"type": "image_url", "image_url": {"url": PNG}}  # fmt: skip
    replies, calls = _run(tmp_path / "n", _chat("@cf/meta/llama-3.1-8b-instruct"), "c", [_post("/v1/chat/completions", body)])  # fmt: skip
    assert replies[0].status == 400 and calls["ai"] == []
    assert (
        "@cf/meta/llama-3.1-8b-instruct does not take images"
        in replies[0].json()["error"]["message"]
    )
    http = {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]}  # fmt: skip
    replies, _ = _run(tmp_path / "h", _chat("@cf/google/gemma-3-12b-it"), "c", [_post("/v1/chat/completions", http)])  # fmt: skip
    assert replies[0].status == 400 and "data: URL" in replies[0].json()["error"]["message"]


def test_the_image_field_model_gets_its_image_as_the_image_input(tmp_path: Path) -> None:
    content = [
        {"type": "text", "text": "What is it?"},
        {"type": "image_url", "image_url": {"url": PNG}},
    ]
    replies, calls = _run(
        tmp_path, _chat("@cf/meta/llama-3.2-11b-vision-instruct"), "c",
        [_post("/chat", {"messages": [{"role": "user", "content": content}]})],
    )  # fmt: skip
    assert replies[0].status == 200
    inputs = calls["ai"][0]["inputs"]
    assert (
        inputs["image"] == PNG.split(",", 1)[1]
        and inputs["messages"][-1]["content"] == "What is it?"
    )


# --- reasoning -----------------------------------------------------------------------------------


def test_think_tag_reasoning_is_returned_apart(tmp_path: Path) -> None:
    thought = {"response": "The user asks about height.\n</think>\n\nIt is 330 metres.", "usage": ANSWER["usage"]}  # fmt: skip
    sse = [
        'data: {"response":"Height "}\n\n', 'data: {"response":"question.\\n</think>\\n\\n"}\n\n',
        'data: {"response":"330 metres."}\n\n', 'data: {"response":"","usage":{"prompt_tokens":1,"completion_tokens":4}}\n\n',
        "data: [DONE]\n\n",
    ]  # fmt: skip
    replies, _ = _run(
        tmp_path, _chat("@cf/deepseek-ai/deepseek-r1-distill-qwen-32b"), "c",
        [
            _post("/chat", {"prompt": "How tall?", "stream": False}),
            _post("/v1/chat/completions", {"messages": [{"role": "user", "content": "How tall?"}]}),
            _post("/v1/chat/completions", {"messages": [{"role": "user", "content": "How tall?"}], "stream": True}),
        ],
        ai_queue=[{"json": thought}, {"json": thought}, {"sse": sse}],
    )  # fmt: skip
    assert replies[0].json()["response"] == "It is 330 metres."
    assert replies[0].json()["reasoning"] == "The user asks about height."
    message = replies[1].json()["choices"][0]["message"]
    assert message == {"role": "assistant", "content": "It is 330 metres.", "reasoning_content": "The user asks about height."}  # fmt: skip
    deltas = [e["choices"][0]["delta"] for e in _events(replies[2].body)]
    assert "".join(d.get("reasoning_content", "") for d in deltas) == "Height question."
    assert "".join(d.get("content", "") for d in deltas) == "330 metres."


def test_chat_completion_models_and_a_json_answer_to_a_stream(tmp_path: Path) -> None:
    completion = {"object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", "content": "330 metres.", "reasoning_content": "Height."}, "finish_reason": "stop"}], "usage": ANSWER["usage"]}  # fmt: skip
    replies, _ = _run(
        tmp_path, _chat("@cf/openai/gpt-oss-120b"), "c",
        [_post("/chat", {"prompt": "How tall?", "stream": True}), _post("/chat", {"prompt": "How tall?"})],
        ai_queue=[{"json": completion}, {"json": completion}],
    )  # fmt: skip
    # gpt-oss answers JSON even when asked to stream: the Worker still streams it.
    assert replies[0].headers["content-type"].startswith("text/event-stream")
    assert _events(replies[0].body)[0]["response"] == "330 metres."
    assert replies[1].json() == {
        "response": "330 metres.",
        "reasoning": "Height.",
        "usage": ANSWER["usage"],
    }


# --- feedback (issue 11) ---------------------------------------------------------------------------


def test_feedback_refuses_a_log_id_that_walks_the_path(tmp_path: Path) -> None:
    replies, calls = _run(
        tmp_path, _chat("@cf/meta/llama-3.1-8b-instruct"), "c",
        [
            _post("/feedback", {"log_id": "../../other-gw/logs/01JADMCQQQBWH3NXZ5GCRN98DP", "feedback": -1}),
            _post("/feedback", {"log_id": "a%2F..", "feedback": 1}),
            _post("/feedback", {"log_id": "01JADMCQQQBWH3NXZ5GCRN98DP", "feedback": 1}),
        ],
    )  # fmt: skip
    assert [r.status for r in replies] == [400, 400, 200]
    assert replies[0].json()["error"]["message"].startswith("log_id:")
    assert [c["logId"] for c in calls["feedback"]] == ["01JADMCQQQBWH3NXZ5GCRN98DP"]


def test_feedback_on_an_unknown_log_is_404(tmp_path: Path) -> None:
    replies, _ = _run(
        tmp_path, _chat("@cf/meta/llama-3.1-8b-instruct"), "c",
        [_post("/feedback", {"log_id": "01JADMCQQQBWH3NXZ5GCRN98DP", "feedback": 1})],
        feedback_throw={"name": "AiGatewayLogNotFound", "message": "Log Not Found"},
    )  # fmt: skip
    assert replies[0].status == 404 and replies[0].json()["error"]["code"] == "not_found"


# --- client mistakes are 400 (issue 11) --------------------------------------------------------------


def test_workers_ai_refusals_are_400_naming_the_field(tmp_path: Path) -> None:
    replies, _ = _run(
        tmp_path, _chat("@cf/meta/llama-3.1-8b-instruct"), "c",
        [_post("/chat", {"prompt": "x", "response_format": {"type": "json_schema", "json_schema": {"type": "object"}}})] * 3,
        ai_queue=[
            {"throw": "3003: JSON Mode couldn't be met: an instance needs more than max_tokens=1 tokens"},
            {"throw": "8001: Invalid input: tool_choice: must be auto, none, required or {type, function}"},
            {"throw": "3006: Request is too large: 9000 prompt tokens exceed the context window of 7968"},
        ],
    )  # fmt: skip
    assert [r.status for r in replies] == [400, 400, 413]
    assert (
        replies[0]
        .json()["error"]["message"]
        .startswith("response_format: JSON Mode couldn't be met")
    )
    assert replies[1].json()["error"]["message"].startswith("tool_choice: must be auto")


EMBED = {"@cf/baai/bge-small-en-v1.5": {"embed": 384}}


def test_vectorize_refusals_are_400_naming_filter_or_metadata(
    fixture_platform: PlatformConfig, tmp_path: Path
) -> None:
    query = _post("/query", {"question": "q", "filter": {"$regex": "x"}})
    replies, _ = _run(tmp_path / "q", fixture_platform, "rag", [query],
                      vectorize_throw="VECTOR_QUERY_ERROR (code = 40027): invalid metadata filter: key '$regex' starts with '$'", ai_default=EMBED)  # fmt: skip
    assert replies[0].status == 400
    assert replies[0].json()["error"]["message"] == "filter: invalid metadata filter: key '$regex' starts with '$' (Vectorize 40027)"  # fmt: skip
    ingest = _post(
        "/documents",
        {"documents": [{"id": "d", "text": "hello world", "metadata": {"a": {"$x": 1}}}]},
    )
    replies, _ = _run(tmp_path / "m", fixture_platform, "rag", [ingest],
                      upsert_throw="VECTOR_UPSERT_ERROR (code = 40011): invalid metadata key '$x'", ai_default=EMBED)  # fmt: skip
    assert replies[0].status == 400 and replies[0].json()["error"]["message"].startswith(
        "metadata: invalid metadata key"
    )


# --- rag /v1/embeddings ------------------------------------------------------------------------------


def test_rag_embeddings_route_is_openai_compatible(
    fixture_platform: PlatformConfig, tmp_path: Path
) -> None:
    worker = render(fixture_platform, "rag")
    scenario = {"env": env_for(worker), "ai_default": {"@cf/baai/bge-small-en-v1.5": {"embed": 4}}}
    with (
        serve_worker(tmp_path, worker.source, scenario) as url,
        openai.OpenAI(base_url=f"{url}/v1", api_key=TOKEN, max_retries=0) as client,
    ):
        done = client.embeddings.create(model="ignored", input=["gateway caching", "filters"])
        assert [d.index for d in done.data] == [0, 1] and len(done.data[0].embedding) == 4
        assert done.model == "@cf/baai/bge-small-en-v1.5" and done.usage.prompt_tokens == 3
        floats = client.embeddings.create(
            model="x", input="gateway caching", encoding_format="float"
        )
        assert floats.data[0].embedding == done.data[0].embedding
    replies, calls = _run(
        tmp_path / "bad", fixture_platform, "rag",
        [_post("/v1/embeddings", {"input": []}), _post("/v1/embeddings", {"input": ["ok", ""]}),
         _post("/v1/embeddings", {"input": "x", "dimensions": 768}),
         _post("/v1/embeddings", {"input": "x", "encoding_format": "base64"})],
        ai_default={"@cf/baai/bge-small-en-v1.5": {"embed": 384}},
    )  # fmt: skip
    assert [r.status for r in replies] == [400, 400, 400, 200]
    assert [r.json()["error"]["message"].split(":")[0] for r in replies[:3]] == [
        "input",
        "input[1]",
        "dimensions",
    ]
    packed = base64.b64decode(replies[3].json()["data"][0]["embedding"])
    assert len(packed) == 384 * 4 and struct.unpack("<f", packed[:4])[0] == 1.0
    assert calls["ai"][0]["inputs"] == {"text": ["x"]}
