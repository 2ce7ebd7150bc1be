"""OpenAI-compatible endpoints: ``/ai/v1/chat/completions``, ``/ai/v1/embeddings`` and
``/ai/v1/responses`` (https://developers.cloudflare.com/workers-ai/configuration/open-ai-compatibility/).

Each maps the OpenAI request onto the native model inputs, runs the stand-in, and answers
in OpenAI's shapes (not enveloped: OpenAI clients read the bare body). Chat messages keep
their content parts (images reach the vision models), ``tools`` and ``tool_choice``; the
answer of any model form (native ``{response, tool_calls}``, ``</think>`` reasoning inline,
or ``chat.completion``) becomes one ``chat.completion`` with ``message.reasoning_content``
apart from ``content`` and ``tool_calls`` whose ``arguments`` is JSON text. Streams are
``chat.completion.chunk`` events ending in ``data: [DONE]``; with
``stream_options.include_usage`` a last chunk with empty ``choices`` carries the usage.
``finish_reason`` is ``tool_calls`` for a tool call, ``length`` when the completion used all
of ``max_tokens``. Embeddings honour ``encoding_format: "base64"`` (little-endian float32),
which the OpenAI SDKs ask for by default. Responses serve gpt-oss only, without streaming
(cloudflare/cloudflare-docs#32116).

`OPENAI_COMPAT` maps chat completions and embeddings to plain functions (runner, OpenAI
body, the models answered -> `AiResult`), so AI Gateway's OpenAI-compatible URL forms
(``/v1/{account}/{gateway}/workers-ai/v1/...``, ``.../compat/chat/completions``) answer
exactly what these routes answer.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from cfai.catalog import Catalog, Form, ModelSpec, Reasoning, Task
from cfai.local.services.frontdoor import Call, Handler, json_response

from ._core import AiResult, LocalChunks, Runner, bad_input, digest, no_such_model, stream_response
from ._forms import THINK_END

__all__ = [
    "OPENAI_COMPAT",
    "Answer",
    "OpenAICall",
    "chat",
    "chat_completion",
    "embedding",
    "embeddings",
    "normalize",
    "response",
    "responses",
]

_PASS = (
    "messages",
    "temperature",
    "top_p",
    "seed",
    "frequency_penalty",
    "presence_penalty",
    "tools",
    "tool_choice",
    "reasoning_effort",
)


def _model(body: Mapping[str, Any], catalog: Catalog, tasks: tuple[Task, ...]) -> ModelSpec:
    model = body.get("model")
    if not isinstance(model, str):
        raise bad_input("model", "required")
    model = model.removeprefix("workers-ai/")
    spec = catalog.get(model)
    if spec is None or spec.task not in tasks:
        raise no_such_model(model)
    return spec


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


@dataclass(frozen=True)
class Answer:
    """A chat answer of any model form, in OpenAI's terms."""

    content: str | None
    reasoning: str | None
    calls: list[dict[str, Any]]
    usage: dict[str, int]


def _openai_call(model: str, call: Mapping[str, Any]) -> dict[str, Any]:
    fn = call.get("function", call)
    args = fn.get("arguments", {})
    return {
        "id": str(call.get("id") or "call_" + digest(model, json.dumps(call), size=8).hex()),
        "type": "function",
        "function": {
            "name": fn.get("name"),
            "arguments": args if isinstance(args, str) else json.dumps(args),
        },
    }


def normalize(spec: ModelSpec, out: Mapping[str, Any]) -> Answer:
    """The content, reasoning, tool calls and usage of a text model's answer."""
    if out.get("object") == "chat.completion":
        message = out["choices"][0]["message"]
        calls = [_openai_call(spec.name, c) for c in message.get("tool_calls") or []]
        return Answer(message.get("content"), message.get("reasoning_content"), calls, out["usage"])
    response = out.get("response")
    content = response if isinstance(response, str) else json.dumps(response)
    reasoning = None
    if spec.reasoning is Reasoning.THINK_TAG and THINK_END in content:
        # deepseek-r1 and qwq think inline and close with </think> (no opening tag).
        head, _, tail = content.partition(THINK_END)
        reasoning, content = head.removeprefix("<think>").strip(), tail.strip()
    calls = [_openai_call(spec.name, c) for c in out.get("tool_calls") or []]
    return Answer(None if calls else content, reasoning, calls, dict(out["usage"]))


def chat_completion(run: Runner, body: Mapping[str, Any], catalog: Catalog) -> AiResult:
    """An OpenAI chat completion (JSON, or SSE chunks with ``stream: true``) over `run`,
    for a model of `catalog`."""
    spec = _model(body, catalog, (Task.TEXT_GENERATION, Task.IMAGE_TO_TEXT))
    native = _native_chat(body)
    answer = normalize(spec, run(spec.name, native).result)
    max_tokens = native.get("max_tokens", spec.default_max_tokens)
    finish = (
        "tool_calls"
        if answer.calls
        else "length"
        if answer.usage["completion_tokens"] >= max_tokens
        else "stop"
    )
    head = {
        "id": "chatcmpl-" + digest(spec.name, json.dumps(native, sort_keys=True), size=12).hex(),
        "created": int(time.time()),
        "model": spec.name,
    }
    if body.get("stream") is True:
        opts = body.get("stream_options")
        with_usage = isinstance(opts, dict) and opts.get("include_usage") is True
        chunks = LocalChunks(_chunks(head, answer, finish, with_usage))
        return AiResult("text/event-stream", chunks=chunks, usage=answer.usage)
    message: dict[str, Any] = {"role": "assistant", "content": answer.content}
    if answer.reasoning:
        message["reasoning_content"] = answer.reasoning
    if answer.calls:
        message["tool_calls"] = answer.calls
    choice = {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}
    completion = {**head, "object": "chat.completion", "choices": [choice], "usage": answer.usage}
    return AiResult.json(completion, usage=answer.usage)


def _chunks(head: dict[str, Any], answer: Answer, finish: str, with_usage: bool) -> Iterator[bytes]:
    def event(delta: dict[str, Any], reason: str | None = None, **extra: Any) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": reason, "logprobs": None}
        data = {**head, "object": "chat.completion.chunk", "choices": [choice], **extra}
        return b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"

    def pieces(text: str) -> list[str]:
        parts = text.split(" ")
        return [p + (" " if i < len(parts) - 1 else "") for i, p in enumerate(parts)]

    yield event({"role": "assistant", "content": ""})
    for piece in pieces(answer.reasoning) if answer.reasoning else []:
        yield event({"reasoning_content": piece})
    if answer.calls:
        yield event({"tool_calls": [{"index": i, **c} for i, c in enumerate(answer.calls)]})
    for piece in pieces(answer.content) if answer.content else []:
        yield event({"content": piece})
    yield event({}, finish)
    if with_usage:
        data = {**head, "object": "chat.completion.chunk", "choices": [], "usage": answer.usage}
        yield b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"
    yield b"data: [DONE]\n\n"


def embedding(run: Runner, body: Mapping[str, Any], catalog: Catalog) -> AiResult:
    """OpenAI embeddings (``encoding_format`` float or base64) over `run`, for a model of
    `catalog`."""
    spec = _model(body, catalog, (Task.TEXT_EMBEDDINGS,))
    if body.get("input") is None:
        raise bad_input("input", "required")
    fmt = body.get("encoding_format") or "float"
    if fmt not in ("float", "base64"):
        raise bad_input("encoding_format", "must be float or base64")
    key = "documents" if spec.form is Form.QWEN3_EMBEDDINGS else "text"
    out = run(spec.name, {key: body["input"]})
    data = []
    for i, vec in enumerate(out.result["data"]):
        emb: Any = vec
        if fmt == "base64":
            emb = base64.b64encode(np.asarray(vec, dtype="<f4").tobytes()).decode()
        data.append({"object": "embedding", "index": i, "embedding": emb})
    tokens = (out.usage or {}).get("prompt_tokens", 0)
    use = {"prompt_tokens": tokens, "total_tokens": tokens}
    return AiResult.json({"object": "list", "data": data, "model": spec.name, "usage": use}, use)


def response(run: Runner, body: Mapping[str, Any], catalog: Catalog) -> AiResult:
    """A Responses API answer (gpt-oss only) over `run`."""
    spec = _model(body, catalog, (Task.TEXT_GENERATION,))
    if spec.form is not Form.GPT_OSS:
        raise bad_input("model", f"{spec.name} does not take the Responses API; use gpt-oss")
    if body.get("input") is None:
        raise bad_input("input", "required")
    return run(spec.name, {k: v for k, v in body.items() if k != "model"})


OpenAICall = Callable[[Runner, Mapping[str, Any], Catalog], AiResult]
"""An OpenAI-compatible operation: the OpenAI request body -> its answer, over a runner
and the models it answers."""

OPENAI_COMPAT: dict[str, OpenAICall] = {
    "chat/completions": chat_completion,
    "embeddings": embedding,
}
"""The OpenAI-compatible operations AI Gateway's URL forms serve, by path under ``v1/``."""


def _handler(operation: OpenAICall, run: Runner, catalog: Catalog) -> Handler:
    async def endpoint(call: Call) -> Response:
        result = await run_in_threadpool(operation, run, call.body, catalog)
        if result.chunks is not None:
            return stream_response(result.chunks, {"content-type": result.content_type})
        return json_response(result.result)

    return endpoint


def chat(run: Runner, catalog: Catalog) -> Handler:
    """``POST /ai/v1/chat/completions`` over `run`."""
    return _handler(chat_completion, run, catalog)


def embeddings(run: Runner, catalog: Catalog) -> Handler:
    """``POST /ai/v1/embeddings`` over `run`."""
    return _handler(embedding, run, catalog)


def responses(run: Runner, catalog: Catalog) -> Handler:
    """``POST /ai/v1/responses`` (gpt-oss only) over `run`."""
    return _handler(response, run, catalog)
