"""OpenAI-compatible endpoints: ``/ai/v1/chat/completions`` and ``/ai/v1/embeddings``.

Each maps the OpenAI request onto the native model inputs, runs the stand-in, and answers
in OpenAI's shapes (not enveloped: OpenAI clients read the bare body; Cloudflare's OpenAI
compatibility page, https://developers.cloudflare.com/workers-ai/configuration/open-ai-compatibility/,
shows no envelope). Streams are
``chat.completion.chunk`` events ending in ``data: [DONE]``; with
``stream_options.include_usage`` a last chunk with empty ``choices`` carries the usage.
``finish_reason`` is ``length`` when the completion used all of ``max_tokens``.
Embeddings honour ``encoding_format: "base64"`` (little-endian float32), which the OpenAI
SDKs ask for by default.

`OPENAI_COMPAT` maps each operation to a plain function (OpenAI body -> `AiResult`), so AI
Gateway's OpenAI-compatible URL forms (``/v1/{account}/{gateway}/workers-ai/v1/...``,
``.../compat/chat/completions``) answer exactly what these routes answer.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from cfai.catalog import CATALOG, Task
from cfai.local.services.frontdoor import Call, Handler, json_response

from ._core import AiResult, Runner, bad_input, digest, no_such_model

__all__ = ["OPENAI_COMPAT", "OpenAICall", "chat", "chat_completion", "embedding", "embeddings"]

_PASS = (
    "messages",
    "temperature",
    "top_p",
    "seed",
    "frequency_penalty",
    "presence_penalty",
    "tools",
)


def _model(body: Mapping[str, Any], tasks: tuple[Task, ...]) -> str:
    model = body.get("model")
    if not isinstance(model, str):
        raise bad_input("model", "required")
    model = model.removeprefix("workers-ai/")
    spec = CATALOG.get(model)
    if spec is None or spec.task not in tasks:
        raise no_such_model(model)
    return model


def _native_chat(body: Mapping[str, Any]) -> dict[str, Any]:
    native = {k: body[k] for k in _PASS if body.get(k) is not None}
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    if limit is not None:
        native["max_tokens"] = limit
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        native["response_format"] = {
            "type": "json_schema",
            "json_schema": schema or {"type": "object"},
        }
    elif isinstance(fmt, dict) and fmt.get("type") == "json_object":
        native["response_format"] = {"type": "json_object"}
    return native


def chat_completion(run: Runner, body: Mapping[str, Any]) -> AiResult:
    """An OpenAI chat completion (JSON, or SSE chunks with ``stream: true``) over `run`."""
    model = _model(body, (Task.TEXT_GENERATION, Task.IMAGE_TO_TEXT))
    native = _native_chat(body)
    out = run(model, native).result
    max_tokens = native.get("max_tokens", CATALOG[model].default_max_tokens)
    use = out["usage"]
    response = out["response"]
    content = response if isinstance(response, str) else json.dumps(response)
    calls = [
        {
            "id": "call_" + digest(model, json.dumps(c), size=8).hex(),
            "type": "function",
            "function": {"name": c["name"], "arguments": json.dumps(c["arguments"])},
        }
        for c in out.get("tool_calls", [])
    ]
    finish = (
        "tool_calls" if calls else "length" if use["completion_tokens"] >= max_tokens else "stop"
    )
    head = {
        "id": "chatcmpl-" + digest(model, json.dumps(native, sort_keys=True), size=12).hex(),
        "created": int(time.time()),
        "model": model,
    }
    if body.get("stream") is True:
        opts = body.get("stream_options")
        with_usage = isinstance(opts, dict) and opts.get("include_usage") is True
        chunks = _chunks(head, content, calls, finish, use if with_usage else None)
        return AiResult("text/event-stream", chunks=chunks, usage=use)
    message: dict[str, Any] = {"role": "assistant", "content": None if calls else content}
    if calls:
        message["tool_calls"] = calls
    choice = {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}
    completion = {**head, "object": "chat.completion", "choices": [choice], "usage": use}
    return AiResult.json(completion, usage=use)


def chat(run: Runner) -> Handler:
    """``POST /ai/v1/chat/completions`` over `run`."""

    async def endpoint(call: Call) -> Response:
        return _response(await run_in_threadpool(chat_completion, run, call.body))

    return endpoint


def _response(result: AiResult) -> Response:
    if result.chunks is not None:
        return StreamingResponse(result.chunks, headers={"content-type": result.content_type})
    return json_response(result.result)


def _chunks(
    head: dict[str, Any],
    content: str,
    calls: list[dict[str, Any]],
    finish: str,
    use: dict[str, int] | None,
) -> Iterator[bytes]:
    def event(delta: dict[str, Any], reason: str | None = None, **extra: Any) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": reason, "logprobs": None}
        data = {**head, "object": "chat.completion.chunk", "choices": [choice], **extra}
        return b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"

    yield event({"role": "assistant", "content": ""})
    if calls:
        yield event({"tool_calls": [{"index": i, **c} for i, c in enumerate(calls)]})
    pieces = content.split(" ")
    for i, piece in enumerate(pieces if content else []):
        yield event({"content": piece + (" " if i < len(pieces) - 1 else "")})
    yield event({}, finish)
    if use is not None:
        data = {**head, "object": "chat.completion.chunk", "choices": [], "usage": use}
        yield b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"
    yield b"data: [DONE]\n\n"


def embedding(run: Runner, body: Mapping[str, Any]) -> AiResult:
    """OpenAI embeddings (``encoding_format`` float or base64) over `run`."""
    model = _model(body, (Task.TEXT_EMBEDDINGS,))
    if body.get("input") is None:
        raise bad_input("input", "required")
    fmt = body.get("encoding_format") or "float"
    if fmt not in ("float", "base64"):
        raise bad_input("encoding_format", "must be float or base64")
    key = "documents" if model.startswith("@cf/qwen/qwen3-embedding") else "text"
    out = run(model, {key: body["input"]})
    data = []
    for i, vec in enumerate(out.result["data"]):
        emb: Any = vec
        if fmt == "base64":
            emb = base64.b64encode(np.asarray(vec, dtype="<f4").tobytes()).decode()
        data.append({"object": "embedding", "index": i, "embedding": emb})
    tokens = (out.usage or {}).get("prompt_tokens", 0)
    use = {"prompt_tokens": tokens, "total_tokens": tokens}
    return AiResult.json({"object": "list", "data": data, "model": model, "usage": use}, use)


def embeddings(run: Runner) -> Handler:
    """``POST /ai/v1/embeddings`` over `run`."""

    async def endpoint(call: Call) -> Response:
        return _response(await run_in_threadpool(embedding, run, call.body))

    return endpoint


OpenAICall = Callable[[Runner, Mapping[str, Any]], AiResult]
"""An OpenAI-compatible operation: the OpenAI request body -> its answer, over a runner."""

OPENAI_COMPAT: dict[str, OpenAICall] = {
    "chat/completions": chat_completion,
    "embeddings": embedding,
}
"""The OpenAI-compatible operations by path under ``v1/``."""
