"""Each model family answers in its own form: reasoning, tool calls, gpt-oss's Responses API,
OpenAI chat completions, vision content parts, nova-3's binary audio, and the OpenAI
routes (/v1/chat/completions with tools, images and reasoning; /v1/responses)."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from PIL import Image
from starlette.applications import Starlette
from starlette.testclient import TestClient

from cfai.catalog import CATALOG, ToolShape
from cfai.local.services.base import EmulatorContext
from cfai.local.services.workers_ai import AiError, AiResult, WorkersAIService

Serve = Callable[..., Starlette]
Binding = Callable[..., dict[str, str]]
ACCOUNT = "0123456789abcdef0123456789abcdef"
AUTH = {"authorization": "Bearer t"}
BASE = f"/client/v4/accounts/{ACCOUNT}/ai"
CONTEXT = "The Eiffel Tower is 330 metres tall. Bananas are rich in potassium."
ASK = [{"role": "system", "content": CONTEXT}, {"role": "user", "content": "How tall is the Eiffel Tower?"}]  # fmt: skip
WEATHER = {
    "name": "get_weather",
    "description": "Current weather of a city",
    "parameters": {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "the city"},
            "unit": {"type": "string", "enum": ["c", "f"], "description": "the unit"},
        },
        "required": ["city", "unit"],
    },
}


@pytest.fixture
def ai(tmp_path: Path) -> WorkersAIService:
    return WorkersAIService(EmulatorContext(state_dir=tmp_path, account_id=ACCOUNT, api_token="t"))


@pytest.fixture
def app(ai: WorkersAIService, serve: Serve) -> Starlette:
    return serve(ai.ctx, ai)


@pytest.fixture
def rest(app: Starlette) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


def _events(result: AiResult) -> list[Any]:
    assert result.content_type == "text/event-stream" and result.chunks is not None
    raw = b"".join(result.chunks).decode()
    return [json.loads(e[6:]) for e in raw.strip().split("\n\n") if e != "data: [DONE]"]


def png(colour: tuple[int, int, int] = (200, 20, 20), size: tuple[int, int] = (64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


def data_url(image: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(image).decode()


# --- reasoning ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model", ["@cf/deepseek-ai/deepseek-r1-distill-qwen-32b", "@cf/qwen/qwq-32b"]
)
def test_think_tag_models_reason_inline_then_close_the_tag(
    ai: WorkersAIService, model: str
) -> None:
    out = ai.run(model, {"messages": ASK}).result
    thought, _, answer = out["response"].partition("\n</think>\n\n")
    assert thought.startswith("The user asks: How tall is the Eiffel Tower?")
    assert "<think>" not in out["response"]  # Workers AI sends no opening tag
    assert "330 metres" in answer and "330 metres" not in thought
    assert out["usage"]["completion_tokens"] == len(out["response"].split())
    streamed = "".join(
        e["response"] for e in _events(ai.run(model, {"messages": ASK, "stream": True}))
    )
    assert streamed == out["response"]


def test_reasoning_content_model_streams_reasoning_first(ai: WorkersAIService) -> None:
    model = "@cf/qwen/qwen3-30b-a3b-fp8"
    out = ai.run(model, {"messages": ASK}).result
    assert out["object"] == "chat.completion"
    message = out["choices"][0]["message"]
    assert message["reasoning_content"].startswith("The user asks:")
    assert "330 metres" in message["content"]
    events = _events(ai.run(model, {"messages": ASK, "stream": True}))
    deltas = [e["choices"][0]["delta"] for e in events]
    kinds = [k for d in deltas for k in ("reasoning_content", "content") if d.get(k)]
    assert kinds[0] == "reasoning_content" and kinds[-1] == "content"
    assert kinds == sorted(kinds, key=lambda k: k == "content")  # all reasoning, then answer
    assert "".join(d.get("reasoning_content", "") for d in deltas) == message["reasoning_content"]
    assert (
        events[-1]["usage"] == out["usage"] and events[-1]["choices"][0]["finish_reason"] == "stop"
    )


def test_granite_prompt_answers_a_text_completion(ai: WorkersAIService) -> None:
    out = ai.run(
        "@cf/ibm-granite/granite-4.0-h-micro", {"prompt": f"{CONTEXT} How tall is it?"}
    ).result
    assert out["object"] == "text_completion" and "330 metres" in out["choices"][0]["text"]


def test_reasoning_counts_against_max_tokens(ai: WorkersAIService) -> None:
    out = ai.run("@cf/qwen/qwq-32b", {"messages": ASK, "max_tokens": 4}).result
    assert out["usage"]["completion_tokens"] == len(out["response"].split()) == 4


# --- gpt-oss -----------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["@cf/openai/gpt-oss-120b", "@cf/openai/gpt-oss-20b"])
def test_gpt_oss_answers_the_responses_api(ai: WorkersAIService, model: str) -> None:
    inputs = {
        "instructions": CONTEXT,
        "input": "How tall is the Eiffel Tower?",
        "reasoning": {"effort": "high"},
    }
    out = ai.run(model, inputs).result
    assert out["object"] == "response" and out["model"] == model and out["status"] == "completed"
    reasoning, message = out["output"]
    assert reasoning["type"] == "reasoning" and reasoning["content"][0]["type"] == "reasoning_text"
    assert (
        "Then I answer only from those sentences" in reasoning["content"][0]["text"]
    )  # high effort
    assert message["type"] == "message" and message["role"] == "assistant"
    assert "330 metres" in message["content"][0]["text"] == out["output_text"]
    assert set(out["usage"]) == {"input_tokens", "output_tokens", "total_tokens"}
    low = ai.run(model, {**inputs, "reasoning": {"effort": "low"}}).result
    assert len(low["output"][0]["content"][0]["text"]) < len(reasoning["content"][0]["text"])


def test_gpt_oss_function_call_then_output_round_trip(ai: WorkersAIService) -> None:
    model = "@cf/openai/gpt-oss-120b"
    tool = {"type": "function", **WEATHER}
    first = ai.run(model, {"input": "Use get_weather for Paris", "tools": [tool]}).result
    call = next(item for item in first["output"] if item["type"] == "function_call")
    assert call["name"] == "get_weather" and first["output_text"] == ""
    jsonschema.validate(json.loads(call["arguments"]), WEATHER["parameters"])
    items = [
        {"role": "user", "content": "Use get_weather for Paris"},
        call,
        {
            "type": "function_call_output",
            "call_id": call["call_id"],
            "output": "Paris is sunny, 21 C.",
        },
    ]
    final = ai.run(model, {"input": items, "tools": [tool]}).result
    assert "sunny, 21 C" in final["output_text"]


def test_gpt_oss_responses_do_not_stream_and_bad_effort_is_named(ai: WorkersAIService) -> None:
    with pytest.raises(AiError) as err:
        ai.run("@cf/openai/gpt-oss-20b", {"input": "hi", "stream": True})
    assert err.value.status == 400 and "stream" in err.value.message
    with pytest.raises(AiError, match=r"reasoning\.effort"):
        ai.run("@cf/openai/gpt-oss-20b", {"input": "hi", "reasoning": {"effort": "max"}})


def test_gpt_oss_messages_answer_a_chat_completion_even_when_streaming_is_asked(
    ai: WorkersAIService,
) -> None:
    out = ai.run("@cf/openai/gpt-oss-20b", {"messages": ASK, "stream": True})
    assert out.content_type == "application/json"
    assert out.result["object"] == "chat.completion"
    assert out.result["choices"][0]["message"]["reasoning_content"]


# --- tools -------------------------------------------------------------------------------------


TOOL_MODELS = [n for n, s in CATALOG.items() if s.tools]


@pytest.mark.parametrize("model", TOOL_MODELS)
def test_tool_calls_come_in_the_models_shape_with_valid_arguments(
    ai: WorkersAIService, model: str
) -> None:
    spec = CATALOG[model]
    tools = [{"type": "function", "function": WEATHER}]
    messages = [{"role": "user", "content": "Please call get_weather for Paris"}]
    out = ai.run(model, {"messages": messages, "tools": tools}).result
    if "choices" in out:  # chat.completion models
        (call,) = out["choices"][0]["message"]["tool_calls"]
        assert call["type"] == "function" and call["id"]
        args = json.loads(call["function"]["arguments"])
        assert out["choices"][0]["finish_reason"] == "tool_calls"
    elif spec.tool_shape is ToolShape.NESTED_OBJECT:
        (call,) = out["tool_calls"]
        assert call["type"] == "function" and call["function"]["name"] == "get_weather"
        args = call["function"]["arguments"]
    else:
        (call,) = out["tool_calls"]
        assert call["name"] == "get_weather"
        args = call["arguments"]
    jsonschema.validate(args, WEATHER["parameters"])
    again = ai.run(model, {"messages": messages, "tools": tools}).result
    assert again == out or again["choices"][0]["message"] == out["choices"][0]["message"]


def test_tool_choice_none_forces_text_and_required_forces_a_call(ai: WorkersAIService) -> None:
    model = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"
    named = [{"role": "user", "content": "call get_weather"}]
    plain = [{"role": "user", "content": "hello"}]
    assert (
        "tool_calls"
        not in ai.run(model, {"messages": named, "tools": [WEATHER], "tool_choice": "none"}).result
    )
    forced = ai.run(
        model, {"messages": plain, "tools": [WEATHER], "tool_choice": "required"}
    ).result
    assert forced["tool_calls"][0]["name"] == "get_weather"
    with pytest.raises(AiError) as err:
        ai.run(model, {"messages": plain, "tools": [WEATHER], "tool_choice": "any"})
    assert err.value.internal_code == 8001


# --- vision ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model",
    ["@cf/google/gemma-3-12b-it", "@cf/mistralai/mistral-small-3.1-24b-instruct", "@cf/meta/llama-4-scout-17b-16e-instruct"],
)  # fmt: skip
def test_vision_models_describe_image_parts(ai: WorkersAIService, model: str) -> None:
    def ask(image: bytes) -> str:
        content = [{"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": data_url(image)}}]  # fmt: skip
        return str(
            ai.run(model, {"messages": [{"role": "user", "content": content}]}).result["response"]
        )

    assert "64x48 PNG, mostly red" in ask(png())
    assert "mostly green" in ask(png((30, 170, 60)))
    with pytest.raises(AiError) as err:
        ask(b"not an image at all")
    assert (err.value.status, err.value.internal_code) == (400, 5004)


def test_image_parts_need_a_data_url_and_a_vision_model(ai: WorkersAIService) -> None:
    part = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    with pytest.raises(AiError, match="HTTP URL will not be accepted"):
        ai.run("@cf/google/gemma-3-12b-it", {"messages": [{"role": "user", "content": [part]}]})
    part = {"type": "image_url", "image_url": {"url": data_url(png())}}
    with pytest.raises(AiError) as err:
        ai.run(
            "@cf/meta/llama-3.1-8b-instruct", {"messages": [{"role": "user", "content": [part]}]}
        )
    assert err.value.internal_code == 8001 and "does not take image input" in err.value.message


# --- speech over the wire ------------------------------------------------------------------------


def test_nova3_takes_the_raw_audio_body_over_rest_and_the_binding(
    rest: TestClient, app: Starlette, binding: Binding, ai: WorkersAIService
) -> None:
    audio = ai.run("@cf/deepgram/aura-2-en", {"text": "Ship it on Friday."}).body or b""
    r = rest.post(
        f"{BASE}/run/@cf/deepgram/nova-3?detect_language=true",
        content=audio,
        headers={**AUTH, "content-type": "audio/mpeg"},
    )
    alt = r.json()["result"]["results"]["channels"][0]["alternatives"][0]
    assert r.status_code == 200 and alt["transcript"] == "Ship it on Friday."
    assert [w["word"] for w in alt["words"]] == ["Ship", "it", "on", "Friday."]
    with TestClient(app, base_url="http://workers-binding.ai", headers=binding("ai")) as b:
        headers = {"cf-consn-model-id": "@cf/deepgram/nova-3", "content-type": "audio/mpeg"}
        user_inputs = json.dumps({"punctuate": True})
        r = b.post(f"/run?version=3&userInputs={user_inputs}", content=audio, headers=headers)
        assert r.headers["content-type"] == "application/json"
        assert (
            r.json()["results"]["channels"][0]["alternatives"][0]["transcript"]
            == "Ship it on Friday."
        )
        r = b.post(
            "/run?version=3",
            content=b"x",
            headers={**headers, "cf-consn-model-id": "@cf/openai/whisper-large-v3-turbo"},
        )
        assert r.status_code == 400 and r.json()["internalCode"] == 3003


def test_nova3_bad_option_is_named(rest: TestClient) -> None:
    r = rest.post(
        f"{BASE}/run/@cf/deepgram/nova-3?mode=poetry",
        content=b"\x00" * 100,
        headers={**AUTH, "content-type": "audio/wav"},
    )
    assert r.status_code == 400 and "mode" in r.json()["errors"][0]["message"]


def test_aura_voices_are_the_models_own(ai: WorkersAIService) -> None:
    with pytest.raises(AiError, match="speaker: must be one of aquila"):
        ai.run("@cf/deepgram/aura-2-es", {"text": "Hola", "speaker": "luna"})
    with pytest.raises(AiError, match="text: must be at most 2000 characters"):
        ai.run("@cf/deepgram/aura-2-en", {"text": "x" * 2001})


# --- OpenAI-compatible routes --------------------------------------------------------------------


def test_openai_chat_tool_round_trip(rest: TestClient) -> None:
    model = "@cf/mistralai/mistral-small-3.1-24b-instruct"
    tools = [{"type": "function", "function": WEATHER}]
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "What does get_weather say for Oslo?"}
    ]
    first = rest.post(f"{BASE}/v1/chat/completions", json={"model": model, "messages": messages, "tools": tools}, headers=AUTH).json()  # fmt: skip
    choice = first["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    (call,) = choice["message"]["tool_calls"]
    jsonschema.validate(json.loads(call["function"]["arguments"]), WEATHER["parameters"])
    messages += [
        choice["message"],
        {"role": "tool", "tool_call_id": call["id"], "content": "Oslo: snow, -3 C."},
    ]
    final = rest.post(f"{BASE}/v1/chat/completions", json={"model": model, "messages": messages, "tools": tools}, headers=AUTH).json()  # fmt: skip
    assert final["choices"][0]["finish_reason"] == "stop"
    assert "snow, -3 C." in final["choices"][0]["message"]["content"]


def test_openai_chat_separates_reasoning_from_the_answer(rest: TestClient) -> None:
    body = {"model": "@cf/deepseek-ai/deepseek-r1-distill-qwen-32b", "messages": ASK}
    message = rest.post(f"{BASE}/v1/chat/completions", json=body, headers=AUTH).json()["choices"][0]["message"]  # fmt: skip
    assert message["reasoning_content"].startswith("The user asks:")
    assert "</think>" not in message["content"] and "330 metres" in message["content"]
    r = rest.post(f"{BASE}/v1/chat/completions", json={**body, "stream": True}, headers=AUTH)
    chunks = [json.loads(e[6:]) for e in r.text.strip().split("\n\n") if e != "data: [DONE]"]
    reasoning = "".join(c["choices"][0]["delta"].get("reasoning_content", "") for c in chunks)
    assert reasoning == message["reasoning_content"]


def test_openai_chat_image_parts_reach_a_vision_model(rest: TestClient) -> None:
    content = [{"type": "text", "text": "Describe it"}, {"type": "image_url", "image_url": {"url": data_url(png())}}]  # fmt: skip
    body = {
        "model": "@cf/google/gemma-3-12b-it",
        "messages": [{"role": "user", "content": content}],
    }
    r = rest.post(f"{BASE}/v1/chat/completions", json=body, headers=AUTH)
    assert "64x48 PNG, mostly red" in r.json()["choices"][0]["message"]["content"]


def test_openai_responses_route_serves_gpt_oss_only(rest: TestClient) -> None:
    body = {
        "model": "@cf/openai/gpt-oss-120b",
        "input": "How tall is the Eiffel Tower?",
        "instructions": CONTEXT,
    }
    r = rest.post(f"{BASE}/v1/responses", json=body, headers=AUTH)
    assert r.status_code == 200 and r.json()["object"] == "response"
    assert "330 metres" in r.json()["output_text"]
    r = rest.post(
        f"{BASE}/v1/responses",
        json={**body, "model": "@cf/meta/llama-3.1-8b-instruct"},
        headers=AUTH,
    )
    assert r.status_code == 400 and "Responses API" in r.json()["errors"][0]["message"]


def test_model_search_pages_end_and_carry_properties(rest: TestClient) -> None:
    seen: list[str] = []
    page = 1
    while True:
        r = rest.get(f"{BASE}/models/search", params={"page": page, "per_page": 7}, headers=AUTH)
        batch = r.json()["result"]
        if not batch:
            break
        assert r.json()["result_info"]["page"] == page
        seen += [m["name"] for m in batch]
        page += 1
    assert sorted(seen) == sorted(CATALOG) and len(seen) == len(set(seen))
    qwen3 = next(
        m for m in rest.get(f"{BASE}/models/search", params={"search": "qwen3-30b"}, headers=AUTH).json()["result"]
    )  # fmt: skip
    props = {p["property_id"]: p["value"] for p in qwen3["properties"]}
    assert props["context_window"] == "32768" and props["function_calling"] == "true"
    assert {"unit": "per M input tokens", "price": 0.051, "currency": "USD"} in props["price"]


def test_env_ai_models_searches_through_the_binding(app: Starlette, binding: Binding) -> None:
    # workerd's env.AI.models({task}) sends GET /ai-api/models/search and reads {result}.
    with TestClient(app, base_url="http://workers-binding.ai", headers=binding("ai")) as b:
        r = b.get("/ai-api/models/search", params={"task": "Text-to-Speech"})
    assert r.status_code == 200
    assert {m["name"] for m in r.json()["result"]} == {
        "@cf/deepgram/aura-2-en",
        "@cf/deepgram/aura-2-es",
    }
