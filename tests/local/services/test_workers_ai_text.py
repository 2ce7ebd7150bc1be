"""Text generation stand-in: answers from context, max_tokens, SSE framing, JSON mode, tools."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfai.local.services.base import EmulatorContext
from cfai.local.services.workers_ai import AiError, AiResult, WorkersAIService

LLAMA = "@cf/meta/llama-3.1-8b-instruct"
CONTEXT = (
    "Context: The Eiffel Tower is 330 metres tall. Paris is the capital of France. "
    "Bananas are rich in potassium."
)
LONG = " ".join(f"word{i}" for i in range(400))


def _ai(tmp: Path = Path("/nonexistent")) -> WorkersAIService:
    return WorkersAIService(EmulatorContext(state_dir=tmp, account_id="a" * 32, api_token="t"))


@pytest.fixture
def ai(tmp_path: Path) -> WorkersAIService:
    return _ai(tmp_path)


def _events(result: AiResult) -> list[Any]:
    """Parse an SSE stream strictly: every event is `data: <json>` + blank line."""
    assert result.content_type == "text/event-stream" and result.chunks is not None
    raw = b"".join(result.chunks).decode()
    assert raw.endswith("\n\n")
    events = raw[:-2].split("\n\n")
    assert all(e.startswith("data: ") for e in events)
    return [e[6:] if e == "data: [DONE]" else json.loads(e[6:]) for e in events]


def test_text_answer_draws_on_the_system_context(ai: WorkersAIService) -> None:
    messages = [
        {"role": "system", "content": CONTEXT},
        {"role": "user", "content": "How tall is the Eiffel Tower?"},
    ]
    out = ai.run(LLAMA, {"messages": messages})
    assert out.content_type == "application/json"
    assert "330 metres" in out.result["response"]
    assert "Bananas" not in out.result["response"]
    assert out.result["response"].startswith("[cfai stand-in]")


def test_text_answer_from_a_single_prompt_with_context_and_question(ai: WorkersAIService) -> None:
    out = ai.run(LLAMA, {"prompt": f"{CONTEXT}\nQuestion: Which fruit has potassium?"})
    assert "Bananas are rich in potassium." in out.result["response"]


def test_text_without_context_says_so(ai: WorkersAIService) -> None:
    out = ai.run(LLAMA, {"prompt": "Tell me a joke"})
    assert out.result["response"] == (
        "[cfai stand-in] This is cfai's local stand-in model, not a real one: it answers by "
        "quoting the context it is given, and none was given. You asked: Tell me a joke"
    )


def test_text_plain_prompt_beside_a_system_prompt_is_a_plain_stand_in(
    ai: WorkersAIService,
) -> None:
    # A chat Worker's system prompt is context that rarely matches a plain prompt: the answer
    # says it is a stand-in (not "the context does not mention ...", which read like a bug)
    # and still differs per prompt.
    def ask(prompt: str) -> str:
        messages = [
            {"role": "system", "content": "You are a concise assistant."},
            {"role": "user", "content": prompt},
        ]
        return str(ai.run(LLAMA, {"messages": messages}).result["response"])

    first, second = ask("What does cfai do?"), ask("Tell me a joke")
    assert first.startswith("[cfai stand-in] This is cfai's local stand-in model, not a real one")
    assert "none of it matches" in first and first.endswith("You asked: What does cfai do?")
    assert "does not mention" not in first
    assert first != second and second.endswith("You asked: Tell me a joke")


def test_text_usage_counts_whitespace_tokens(ai: WorkersAIService) -> None:
    out = ai.run(LLAMA, {"prompt": "one two three four"})
    usage = out.result["usage"]
    assert usage["prompt_tokens"] == 4
    assert usage["completion_tokens"] == len(out.result["response"].split())
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert out.usage == usage


def test_text_default_max_tokens_is_256(ai: WorkersAIService) -> None:
    out = ai.run(
        LLAMA,
        {
            "messages": [
                {"role": "system", "content": LONG},
                {"role": "user", "content": "word7 word9?"},
            ]
        },
    )
    # The context is one 400-word sentence, so only max_tokens can stop the answer.
    assert out.result["usage"]["completion_tokens"] == 256
    assert len(out.result["response"].split()) == 256


def test_text_max_tokens_is_honoured(ai: WorkersAIService) -> None:
    out = ai.run(LLAMA, {"prompt": f"{LONG}. word3?", "max_tokens": 10})
    assert len(out.result["response"].split()) == 10
    assert out.result["usage"]["completion_tokens"] == 10


def test_text_stream_framing_usage_last_then_done(ai: WorkersAIService) -> None:
    whole = ai.run(LLAMA, {"prompt": f"{CONTEXT} How tall is the tower?"}).result
    events = _events(ai.run(LLAMA, {"prompt": f"{CONTEXT} How tall is the tower?", "stream": True}))
    assert events[-1] == "[DONE]"
    body, last = events[:-2], events[-2]
    assert all(isinstance(e["response"], str) and "usage" not in e for e in body)
    assert "p" in body[0]
    assert last == {"response": "", "usage": whole["usage"]}
    assert "".join(e["response"] for e in body) == whole["response"]


def test_text_stream_honours_max_tokens(ai: WorkersAIService) -> None:
    events = _events(ai.run(LLAMA, {"prompt": f"{LONG}. word3?", "stream": True, "max_tokens": 5}))
    tokens = "".join(e["response"] for e in events[:-1]).split()
    assert len(tokens) == 5
    assert events[-2]["usage"]["completion_tokens"] == 5


@settings(max_examples=40, deadline=None)
@given(
    context=st.lists(st.text(min_size=1, max_size=40), min_size=1, max_size=8),
    question=st.text(min_size=1, max_size=60),
    max_tokens=st.integers(min_value=1, max_value=300),
)
def test_text_is_deterministic_and_never_exceeds_max_tokens(
    context: list[str], question: str, max_tokens: int
) -> None:
    ai = _ai()
    inputs = {
        "messages": [
            {"role": "system", "content": ". ".join(context)},
            {"role": "user", "content": question},
        ],
        "max_tokens": max_tokens,
    }
    first = ai.run(LLAMA, inputs).result
    assert ai.run(LLAMA, inputs).result == first
    assert len(first["response"].split()) == first["usage"]["completion_tokens"] <= max_tokens


@pytest.mark.parametrize(
    ("inputs", "field"),
    [
        ({}, "prompt"),
        ({"prompt": "a", "messages": [{"role": "user", "content": "b"}]}, "prompt"),
        ({"messages": [{"role": "robot", "content": "hi"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": "x" * 131_073}]}, "messages[0].content"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": "hi", "max_tokens": 0}, "max_tokens"),
        ({"prompt": "hi", "max_tokens": "ten"}, "max_tokens"),
        ({"prompt": "hi", "temperature": 5.5}, "temperature"),
        ({"prompt": "hi", "top_p": -0.1}, "top_p"),
        ({"prompt": "hi", "top_k": 51}, "top_k"),
        ({"prompt": "hi", "seed": 0}, "seed"),
        ({"prompt": "hi", "repetition_penalty": 2.5}, "repetition_penalty"),
        ({"prompt": "hi", "stream": "yes"}, "stream"),
        ({"prompt": "hi", "response_format": {"type": "xml"}}, "response_format.type"),
    ],
)
def test_text_bad_inputs_are_3003_naming_the_field(
    ai: WorkersAIService, inputs: dict[str, Any], field: str
) -> None:
    with pytest.raises(AiError) as err:
        ai.run(LLAMA, inputs)
    assert (err.value.status, err.value.internal_code) == (400, 3003)
    assert f"{field}:" in err.value.message


def test_text_prompt_over_context_window_is_413(ai: WorkersAIService) -> None:
    with pytest.raises(AiError) as err:
        ai.run("@cf/mistral/mistral-7b-instruct-v0.1", {"prompt": "w " * 3000})
    assert (err.value.status, err.value.internal_code) == (413, 3006)


def test_unknown_model_is_5007(ai: WorkersAIService) -> None:
    with pytest.raises(AiError) as err:
        ai.run("@cf/meta/llama-9-nonexistent", {"prompt": "hi"})
    assert (err.value.status, err.value.internal_code) == (400, 5007)
    assert err.value.message == "No such model @cf/meta/llama-9-nonexistent or task"


# --- JSON mode -------------------------------------------------------------------------------

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "answer": {"type": "string", "maxLength": 40},
        "confidence": {"type": "number", "minimum": 0.5, "maximum": 1},
        "votes": {"type": "integer", "exclusiveMinimum": 2},
        "label": {"enum": ["yes", "no"]},
        "sources": {"type": "array", "items": {"$ref": "#/$defs/source"}, "minItems": 2},
        "maybe": {"type": ["null", "boolean"]},
    },
    "required": ["answer", "confidence", "sources", "label"],
    "additionalProperties": False,
    "$defs": {
        "source": {
            "type": "object",
            "properties": {
                "title": {"type": "string", "minLength": 3},
                "page": {"type": "integer"},
            },
            "required": ["title", "page"],
        }
    },
}


def _valid(value: Any, schema: Mapping[str, Any], root: Mapping[str, Any]) -> bool:
    """A tiny JSON Schema check covering what SCHEMA uses."""
    if "$ref" in schema:
        return _valid(value, root["$defs"][schema["$ref"].split("/")[-1]], root)
    if "enum" in schema and value not in schema["enum"]:
        return False
    kinds = schema.get("type")
    kinds = [kinds] if isinstance(kinds, str) else kinds or []
    checks = {
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list),
        "string": lambda v: isinstance(v, str),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "null": lambda v: v is None,
    }
    if kinds and not any(checks[k](value) for k in kinds):
        return False
    if isinstance(value, dict):
        props = schema.get("properties", {})
        if not all(k in value for k in schema.get("required", [])):
            return False
        if schema.get("additionalProperties") is False and set(value) - set(props):
            return False
        return all(_valid(v, props[k], root) for k, v in value.items() if k in props)
    if isinstance(value, list):
        return len(value) >= schema.get("minItems", 0) and all(
            _valid(v, schema.get("items", {}), root) for v in value
        )
    if isinstance(value, str):
        return schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", len(value))
    if isinstance(value, int | float) and not isinstance(value, bool):
        return schema.get("minimum", value) <= value <= schema.get(
            "maximum", value
        ) and value > schema.get("exclusiveMinimum", value - 1)
    return True


def test_validator_rejects_what_it_should() -> None:
    assert not _valid({"answer": "x"}, SCHEMA, SCHEMA)
    assert not _valid(
        {"answer": "x", "confidence": 0.1, "sources": [], "label": "yes"}, SCHEMA, SCHEMA
    )


def test_json_mode_response_is_an_object_valid_against_the_schema(ai: WorkersAIService) -> None:
    inputs = {
        "messages": [
            {"role": "system", "content": CONTEXT},
            {"role": "user", "content": "How tall is the Eiffel Tower?"},
        ],
        "response_format": {"type": "json_schema", "json_schema": SCHEMA},
    }
    out = ai.run(LLAMA, inputs)
    response = out.result["response"]
    assert isinstance(response, dict)
    assert _valid(response, SCHEMA, SCHEMA), response
    assert response["answer"].startswith("[cfai stand-in]")


def test_json_mode_with_stream_returns_json_not_sse(ai: WorkersAIService) -> None:
    out = ai.run(
        LLAMA, {"prompt": "hi", "stream": True, "response_format": {"type": "json_object"}}
    )
    assert out.content_type == "application/json" and out.chunks is None
    assert isinstance(out.result["response"], dict)
    assert json.loads(out.body or b"") == out.result


def test_json_mode_schema_that_cannot_be_met_is_an_error(ai: WorkersAIService) -> None:
    schema = {"type": "object", "properties": {"id": {"type": "string", "pattern": "^[0-9]+$"}}}
    with pytest.raises(AiError) as err:
        ai.run(
            LLAMA,
            {"prompt": "hi", "response_format": {"type": "json_schema", "json_schema": schema}},
        )
    assert "JSON Mode couldn't be met" in err.value.message


# --- tools ---------------------------------------------------------------------------------

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
            "required": ["city"],
        },
    },
}


def test_tools_named_in_the_question_give_tool_calls(ai: WorkersAIService) -> None:
    out = ai.run(
        LLAMA,
        {
            "messages": [{"role": "user", "content": "Call get_weather for Paris"}],
            "tools": [WEATHER],
        },
    )
    (call,) = out.result["tool_calls"]
    assert call["name"] == "get_weather"
    assert isinstance(call["arguments"]["city"], str) and call["arguments"]["unit"] == "c"


def test_tools_not_named_give_a_plain_answer_and_tool_results_are_context(
    ai: WorkersAIService,
) -> None:
    messages = [
        {"role": "user", "content": "What is the weather like?"},
        {"role": "tool", "content": "The weather in Paris is sunny and 21 degrees."},
        {"role": "user", "content": "So what is the weather?"},
    ]
    out = ai.run(LLAMA, {"messages": messages, "tools": [WEATHER]})
    assert "tool_calls" not in out.result
    assert "sunny and 21 degrees" in out.result["response"]


def _png(colour: tuple[int, int, int], size: tuple[int, int] = (64, 48)) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


def test_vision_model_describes_the_image_from_its_bytes(ai: WorkersAIService) -> None:
    def ask(image: bytes) -> str:
        out = ai.run(
            "@cf/meta/llama-3.2-11b-vision-instruct",
            {
                "messages": [{"role": "user", "content": "What is in this picture?"}],
                "image": list(image),
            },
        )
        return str(out.result["response"])

    red, blue = ask(_png((200, 20, 20))), ask(_png((20, 40, 220), (32, 32)))
    assert "64x48 PNG, mostly red" in red and "32x32 PNG, mostly blue" in blue
    assert ask(_png((200, 20, 20))) == red  # the same bytes, the same description


def test_vision_model_refuses_bytes_that_are_not_an_image(ai: WorkersAIService) -> None:
    with pytest.raises(AiError) as err:
        ai.run(
            "@cf/meta/llama-3.2-11b-vision-instruct",
            {
                "messages": [{"role": "user", "content": "What is this?"}],
                "image": [137, 80, 78, 71],
            },
        )
    assert (err.value.status, err.value.internal_code) == (400, 5004)
    assert "image" in err.value.message
