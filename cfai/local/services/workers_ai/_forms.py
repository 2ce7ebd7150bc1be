"""A `Generation` written in a text model's own output form.

- native (Llama, Mistral, Gemma, DeepSeek, QwQ, ...): ``{response, tool_calls?, usage}``,
  streamed as ``data: {"response": "<token>"}`` events, usage on the last one before
  ``data: [DONE]`` (https://developers.cloudflare.com/workers-ai/models/llama-3.1-8b-instruct/).
  A think-tag reasoning model puts its reasoning first, ended by ``</think>``. Tool calls are
  ``{name, arguments: {...}}``, or ``{id, type, function: {name, arguments: {...}}}`` for
  the models typed so (llama-4-scout).
- chat completion (qwen3-30b-a3b-fp8, granite-4.0-h-micro, gpt-oss with messages): OpenAI's
  ``chat.completion`` with ``message.reasoning_content`` and ``tool_calls`` whose
  ``arguments`` is JSON text; a prompt answers a ``text_completion``. Streams are OpenAI
  chunks (``delta.reasoning_content`` first, then ``delta.content``), usage on the last.

Ids are derived from the inputs, so the same request gets the same answer.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from json.encoder import encode_basestring_ascii
from typing import Any

from cfai.catalog import ModelSpec, Reasoning, ToolShape

from ._core import AiResult, LocalChunks, digest
from ._generation import Generation, ToolCall

THINK_END = "</think>"


# json.dumps with any option builds a new encoder a call; a stream makes one an event.
_compact = json.JSONEncoder(separators=(",", ":")).encode


def sse(data: Any) -> bytes:
    return b"data: " + _compact(data).encode() + b"\n\n"


def _token_event(token: str) -> bytes:
    # What sse({"response": token}) writes, without a dict and an encoder pass an event.
    return b'data: {"response":' + encode_basestring_ascii(token).encode() + b"}\n\n"


def _pad(seed: str) -> str:
    # Cloudflare pads early events with a junk "p" field (length hiding); ours is derived
    # from the answer so streams stay deterministic.
    return "".join(chr(97 + b % 26) for b in digest(seed, size=16))[: 4 + len(seed) % 12]


def native_call(spec: ModelSpec, call: ToolCall) -> dict[str, Any]:
    if spec.tool_shape is ToolShape.NESTED_OBJECT:
        return {
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": call.arguments},
        }
    return {"name": call.name, "arguments": call.arguments}


def openai_call(call: ToolCall) -> dict[str, Any]:
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
    }


def _spaced(words: list[str]) -> list[str]:
    return [w + " " for w in words[:-1]] + words[-1:]


def _native_tokens(spec: ModelSpec, gen: Generation) -> list[str]:
    """The response's pieces: each word with the space after it; a think-tag model's
    reasoning first, then ``"\n</think>\n\n"`` as a piece of its own, then the answer."""
    if spec.reasoning is not Reasoning.THINK_TAG or not gen.reasoning:
        return _spaced(gen.answer)  # reasoning-content models have no native field for it
    pieces = _spaced(gen.reasoning)
    if gen.completion_tokens > len(gen.reasoning):  # there was room for the tag
        pieces.append("\n" + THINK_END + ("\n\n" if gen.answer else ""))
    return pieces + _spaced(gen.answer)


def native(spec: ModelSpec, gen: Generation, *, stream: bool) -> AiResult:
    if gen.json_mode:
        return AiResult.json({"response": gen.value, "usage": gen.usage}, gen.usage)
    tokens = [] if gen.calls else _native_tokens(spec, gen)
    if stream:
        return AiResult(
            "text/event-stream",
            chunks=LocalChunks(_native_events(spec, gen, tokens)),
            usage=gen.usage,
        )
    result: dict[str, Any] = {"response": "".join(tokens)}
    if gen.calls:
        result["tool_calls"] = [native_call(spec, c) for c in gen.calls]
    result["usage"] = gen.usage
    return AiResult.json(result, gen.usage)


def _native_events(spec: ModelSpec, gen: Generation, tokens: list[str]) -> Iterator[bytes]:
    first: dict[str, Any] = {"response": tokens[0] if tokens else ""}
    if gen.calls:
        first["tool_calls"] = [native_call(spec, c) for c in gen.calls]
    yield sse({**first, "p": _pad(gen.seed)})
    for tok in tokens[1:]:
        yield _token_event(tok)
    yield sse({"response": "", "usage": gen.usage})
    yield b"data: [DONE]\n\n"


def completion_id(gen: Generation, prefix: str = "chatcmpl-") -> str:
    return prefix + digest(gen.seed, size=12).hex()


def chat_completion(spec: ModelSpec, gen: Generation, *, stream: bool, prompt: bool) -> AiResult:
    """OpenAI's ``chat.completion`` (``text_completion`` for a prompt) or its chunks."""
    head = {
        "id": completion_id(gen, "cmpl-" if prompt else "chatcmpl-"),
        "created": int(time.time()),
        "model": spec.name,
    }
    content = json.dumps(gen.value) if gen.json_mode else (None if gen.calls else gen.text)
    reasoning = " ".join(gen.reasoning) or None
    if stream:
        return AiResult(
            "text/event-stream", chunks=LocalChunks(_chunks(head, gen, prompt)), usage=gen.usage
        )
    if prompt:
        choice: dict[str, Any] = {
            "index": 0,
            "text": content or "",
            "finish_reason": gen.finish,
            "logprobs": None,
        }
        body = {**head, "object": "text_completion", "choices": [choice], "usage": gen.usage}
        return AiResult.json(body, gen.usage)
    message: dict[str, Any] = {
        "role": "assistant",
        "content": content,
        "reasoning_content": reasoning,
    }
    if gen.calls:
        message["tool_calls"] = [openai_call(c) for c in gen.calls]
    choice = {"index": 0, "message": message, "finish_reason": gen.finish, "logprobs": None}
    body = {**head, "object": "chat.completion", "choices": [choice], "usage": gen.usage}
    return AiResult.json(body, gen.usage)


def _chunks(head: dict[str, Any], gen: Generation, prompt: bool) -> Iterator[bytes]:
    obj = "text_completion" if prompt else "chat.completion.chunk"

    def event(delta: dict[str, Any], reason: str | None = None, **extra: Any) -> bytes:
        choice: dict[str, Any] = (
            {"index": 0, "text": delta.get("content", ""), "finish_reason": reason}
            if prompt
            else {"index": 0, "delta": delta, "finish_reason": reason, "logprobs": None}
        )
        return sse({**head, "object": obj, "choices": [choice], **extra})

    if not prompt:
        yield event({"role": "assistant", "content": ""})
        for i, tok in enumerate(gen.reasoning):
            yield event({"reasoning_content": tok + (" " if i < len(gen.reasoning) - 1 else "")})
        if gen.calls:
            yield event(
                {"tool_calls": [{"index": i, **openai_call(c)} for i, c in enumerate(gen.calls)]}
            )
    for i, tok in enumerate(gen.answer):
        yield event({"content": tok + (" " if i < len(gen.answer) - 1 else "")})
    yield event({}, gen.finish, usage=gen.usage)
    yield b"data: [DONE]\n\n"
