"""Text generation (and vision) stand-in: answers from the context it was given.

The question is the last user turn (its sentences ending in "?", else its last sentence);
the context is every system and tool message, earlier user turns and the rest of the last
user turn. The answer is ``[cfai stand-in]`` followed by the (up to three) context
sentences sharing the most content words with the question, in their original order, so a
RAG worker's answer visibly draws on the retrieved passages. Sampling parameters are
validated but do not change the answer: same inputs, same output.

Tokens are whitespace-separated words (see `_core`); the answer is cut at `max_tokens`
(default 256). JSON mode checks the schema with `jsonschema`, returns a value built by
`_schema` (strings filled with the answer) within `max_tokens`, and never streams. When `tools` are given and the last user turn names
one, the answer is a Llama-3-style ``tool_calls: [{name, arguments: {...}}]`` with an empty
``response``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cfai.catalog import ModelSpec

from . import _schema
from ._core import (
    AiError,
    AiResult,
    b64decode,
    bad_input,
    byte_array,
    check_str,
    digest,
    opt_bool,
    opt_int,
    opt_num,
    too_large,
    usage,
    words,
    wordset,
)

MARKER = "[cfai stand-in]"
ROLES = ("system", "user", "assistant", "tool")
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_WORD = re.compile(r"[a-z0-9]+")
_STOP = wordset(
    "a an and are as at be by can did do does for from has have how i in is it its me my "
    "of on or our please tell that the their them there these this to was we were what when "
    "where which who whom why will with would you your about context question answer"
)


@dataclass(frozen=True)
class _Turn:
    role: str
    content: str


def _content(value: Any, field: str) -> str:
    if isinstance(value, list):  # OpenAI-style parts: keep the text ones
        parts = [
            p.get("text", "") for p in value if isinstance(p, Mapping) and p.get("type") == "text"
        ]
        value = "\n".join(str(p) for p in parts)
    return check_str(value, field, min_len=0)


def _turns(inputs: Mapping[str, Any]) -> list[_Turn]:
    has_prompt, has_messages = inputs.get("prompt") is not None, inputs.get("messages") is not None
    if has_prompt == has_messages:
        raise bad_input("prompt", "exactly one of prompt or messages is required")
    if has_prompt:
        return [_Turn("user", check_str(inputs["prompt"], "prompt"))]
    messages = inputs["messages"]
    if not isinstance(messages, list) or not messages:
        raise bad_input("messages", "must be a non-empty array of {role, content}")
    turns = []
    for i, msg in enumerate(messages):
        if not isinstance(msg, Mapping):
            raise bad_input(f"messages[{i}]", "must be an object with role and content")
        role = msg.get("role")
        if role not in ROLES:
            raise bad_input(f"messages[{i}].role", f"must be one of {', '.join(ROLES)}")
        content = msg.get("content")
        turns.append(
            _Turn(str(role), "" if content is None else _content(content, f"messages[{i}].content"))
        )
    return turns


def _check_params(spec: ModelSpec, inputs: Mapping[str, Any]) -> int:
    max_tokens = opt_int(inputs, "max_tokens", spec.default_max_tokens, 1, spec.context_window)
    opt_num(inputs, "temperature", 0.6, 0, 5)
    opt_num(inputs, "top_p", 1, 0, 2)
    opt_int(inputs, "top_k", 1, 1, 50)
    opt_int(inputs, "seed", 1, 1, 9_999_999_999)
    for key in ("repetition_penalty", "frequency_penalty", "presence_penalty"):
        opt_num(inputs, key, 0, 0, 2)
    for key in ("stream", "raw"):
        opt_bool(inputs, key)
    for key in ("tools", "functions"):
        if inputs.get(key) is not None and not isinstance(inputs[key], list):
            raise bad_input(key, "must be an array")
    if inputs.get("lora") is not None:
        check_str(inputs["lora"], "lora")
    if "image" in inputs and inputs["image"] is not None:
        image = inputs["image"]
        if isinstance(image, str):
            b64decode(image, "image")
        else:
            byte_array(image, "image")
    return max_tokens


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text) if s and s.strip()]


def _terms(text: str) -> set[str]:
    out = set()
    for w in _WORD.findall(text.lower()):
        if w not in _STOP:
            out.add(w[:-1] if len(w) > 3 and w.endswith("s") else w)
    return out


def _split(turns: Sequence[_Turn]) -> tuple[str, list[str]]:
    """(question, context sentences)."""
    last = max((i for i, t in enumerate(turns) if t.role == "user"), default=None)
    context: list[str] = []
    for i, turn in enumerate(turns):
        if turn.role in ("system", "tool") or (turn.role == "user" and i != last):
            context += _sentences(turn.content)
    if last is None:
        return "", context
    own = _sentences(turns[last].content)
    asked = [s for s in own if s.endswith("?")] or own[-1:]
    return " ".join(asked), context + [s for s in own if s not in asked]


def answer(turns: Sequence[_Turn]) -> tuple[str, str]:
    """(question, answer text): the answer quotes the context most relevant to the question."""
    question, context = _split(turns)
    q = _terms(question)
    scored = [(len(q & _terms(s)), -i, s) for i, s in enumerate(context)]
    best = sorted((x for x in scored if x[0] > 0), reverse=True)[:3]
    if best:
        picked = [s for _, _, s in sorted(best, key=lambda x: -x[1])]
        return question, f"{MARKER} From the context: {' '.join(picked)}"
    if context:
        return question, f"{MARKER} The given context does not mention: {question}"
    return question, f"{MARKER} No context was given to answer: {question}"


def _tool_call(
    inputs: Mapping[str, Any], turns: Sequence[_Turn], question: str, max_tokens: int
) -> list[dict[str, Any]]:
    if not inputs.get("tools") or not turns or turns[-1].role != "user":
        return []
    asked = turns[-1].content.lower()
    for i, tool in enumerate(inputs["tools"]):
        fn = tool.get("function", tool) if isinstance(tool, Mapping) else None
        if not isinstance(fn, Mapping) or not isinstance(fn.get("name"), str):
            raise bad_input(
                f"tools[{i}]", "must be {name, description, parameters} or {type, function}"
            )
        name = fn["name"]
        if name.lower() in asked or name.lower().replace("_", " ") in asked:
            try:
                args, _ = _schema.instance(
                    fn.get("parameters") or {"type": "object"}, question, max_tokens=max_tokens
                )
            except (_schema.SchemaError, _schema.InvalidSchema) as e:
                raise bad_input(f"tools[{i}].parameters", str(e)) from None
            return [{"name": name, "arguments": args}]
    return []


def _json_mode(inputs: Mapping[str, Any]) -> Any | None:
    """The schema asked for (``{}`` for plain json_object), or None outside JSON mode."""
    fmt = inputs.get("response_format")
    if fmt is None:
        return None
    if not isinstance(fmt, Mapping) or fmt.get("type") not in (
        "json_object",
        "json_schema",
        "text",
    ):
        raise bad_input("response_format.type", "must be json_object, json_schema or text")
    if fmt["type"] == "text":
        return None
    schema = fmt.get("json_schema")
    if schema is None and fmt["type"] == "json_schema":
        raise bad_input("response_format.json_schema", "required when type is json_schema")
    if schema is not None and not isinstance(schema, Mapping):
        raise bad_input("response_format.json_schema", "must be a JSON Schema object")
    return schema if schema is not None else {}


def run_text(spec: ModelSpec, inputs: Mapping[str, Any], *, adapter: str | None = None) -> AiResult:
    """Text generation: ``{response, tool_calls?, usage}`` as JSON, or SSE when streaming.
    With a LoRA `adapter` (the finetune's name) the answer says so after the marker, so it
    differs from the base model's and a test can tell which adapter ran."""
    turns = _turns(inputs)
    max_tokens = _check_params(spec, inputs)
    prompt_tokens = sum(len(words(t.content)) for t in turns)
    if spec.context_window is not None and prompt_tokens > spec.context_window:
        raise too_large(
            f"{prompt_tokens} prompt tokens exceed the context window of {spec.context_window}"
        )
    question, text = answer(turns)
    if inputs.get("image") is not None:
        text = (
            f"{MARKER} An image was given; the stand-in cannot see it. " + text[len(MARKER) + 1 :]
        )
    if adapter is not None:
        text = f"{MARKER} [LoRA {adapter}]{text[len(MARKER) :]}"
    schema = _json_mode(inputs)
    if schema is not None:
        try:
            obj, size = _schema.instance(
                schema or {"type": "object", "properties": {"response": {}}},
                text,
                max_tokens=max_tokens,
            )
        except _schema.InvalidSchema as e:
            raise bad_input(
                "response_format.json_schema", f"not a valid JSON Schema: {e}"
            ) from None
        except _schema.SchemaError as e:
            raise AiError(400, 3003, f"JSON Mode couldn't be met: {e}") from None
        done = usage(prompt_tokens, size)
        return AiResult.json({"response": obj, "usage": done}, done)
    calls = _tool_call(inputs, turns, question, max_tokens)
    tokens = [] if calls else words(text)[:max_tokens]
    completion = min(max_tokens, len(words(json.dumps(calls)))) if calls else len(tokens)
    done = usage(prompt_tokens, completion)
    if inputs.get("stream"):
        return AiResult("text/event-stream", chunks=_events(tokens, calls, done, text), usage=done)
    result: dict[str, Any] = {"response": " ".join(tokens)}
    if calls:
        result["tool_calls"] = calls
    result["usage"] = done
    return AiResult.json(result, done)


def _sse(data: Any) -> bytes:
    return b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"


def _events(
    tokens: list[str], calls: list[dict[str, Any]], done: dict[str, int], seed: str
) -> Iterator[bytes]:
    # Cloudflare pads early events with a junk "p" field (length hiding); ours is derived
    # from the answer so streams stay deterministic.
    pad = "".join(chr(97 + b % 26) for b in digest(seed, size=16))[: 4 + len(seed) % 12]
    first: dict[str, Any] = {
        "response": tokens[0] + (" " if len(tokens) > 1 else "") if tokens else ""
    }
    if calls:
        first["tool_calls"] = calls
    yield _sse({**first, "p": pad})
    for i, tok in enumerate(tokens[1:], start=1):
        yield _sse({"response": tok + (" " if i < len(tokens) - 1 else "")})
    yield _sse({"response": "", "usage": done})
    yield b"data: [DONE]\n\n"
