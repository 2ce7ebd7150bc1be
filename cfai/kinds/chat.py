"""The chat kind: `/chat`, OpenAI-compatible `/v1/chat/completions` and `/feedback`.

An optional `response_schema` turns on JSON mode: answers are objects valid against it
(https://developers.cloudflare.com/workers-ai/features/json-mode/), and JSON mode does not
stream. The schema is checked against JSON Schema draft 2020-12 at load.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any, Literal

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from pydantic import Field, JsonValue

from cfai.errors import Problem
from cfai.kinds._support import (
    TextGenerationConfig,
    ai_bindings,
    gateway_binding,
    text_generation_problems,
    tokens,
)
from cfai.kinds.base import (
    HEALTH,
    CheckContext,
    Example,
    Kind,
    KindCost,
    RenderContext,
    Rendering,
    Route,
)
from cfai.kinds.pricing import Traffic, priced
from cfai.outputs import Outputs, WorkerOutput

__all__ = ["KIND", "ChatKind", "ChatWorkerConfig", "schema_problems"]


class ChatWorkerConfig(TextGenerationConfig):
    """A chat Worker: `/chat`, OpenAI-compatible `/v1/chat/completions`, `/feedback`."""

    kind: Literal["chat"] = "chat"
    system_prompt: str = Field("", max_length=131_072)
    response_schema: dict[str, JsonValue] | None = Field(
        None, description="JSON Schema: answers become objects valid against it (JSON mode)"
    )
    stream: bool = Field(False, description="stream when the request does not say")


def schema_problems(path: str, schema: Mapping[str, Any]) -> list[Problem]:
    """Where `schema` breaks the JSON Schema 2020-12 meta-schema, one problem per mistake,
    each at its path inside the schema (``<path>.properties.n.minimum``)."""
    meta = Draft202012Validator(Draft202012Validator.META_SCHEMA)
    found = []
    for error in sorted(meta.iter_errors(schema), key=lambda e: list(map(str, e.absolute_path))):
        leaf = best_match([error])
        where = ".".join([path, *(str(p) for p in leaf.absolute_path)])
        found.append(Problem(where, f"not a valid JSON Schema: {leaf.message}"))
    return found


def _free_text(worker: WorkerOutput, outputs: Outputs) -> bool:
    # A Worker with a response schema answers objects and cannot stream.
    return not worker.response_schema


def _schema(worker: WorkerOutput, outputs: Outputs) -> bool:
    return bool(worker.response_schema)


def _behind_gateway(worker: WorkerOutput, outputs: Outputs) -> bool:
    return bool(worker.gateway) and any(g.id == worker.gateway for g in outputs.gateways.values())


class ChatKind(Kind[ChatWorkerConfig]):
    name = "chat"
    config = ChatWorkerConfig
    template = "workers/chat.js.j2"
    routes = (
        HEALTH,
        Route("POST", "/chat", summary="answer a prompt or messages, JSON or SSE"),
        Route("POST", "/v1/chat/completions", summary="OpenAI-compatible chat completions"),
        Route("POST", "/feedback", summary="rate an answer by its cf-aig-log-id"),
    )
    main_route = routes[1]
    example = Example("POST", "/chat", {"prompt": "What does AI Gateway caching do?"})
    checks = ("test_chat.py", "test_gateway.py")
    selections = MappingProxyType(
        {"chat_worker": _free_text, "schema_worker": _schema, "gateway_worker": _behind_gateway}
    )

    def problems(self, key: str, worker: ChatWorkerConfig, ctx: CheckContext) -> Iterator[Problem]:
        yield from text_generation_problems(key, worker, ctx)
        if worker.response_schema is None:
            return
        base = f"workers.{key}"
        if worker.stream:
            yield Problem(
                f"{base}.stream", "JSON mode (response_schema) cannot stream; set stream: false"
            )
        if worker.response_schema.get("type") != "object":
            yield Problem(f"{base}.response_schema", 'must be a JSON Schema with "type": "object"')
        yield from schema_problems(f"{base}.response_schema", worker.response_schema)

    def render(self, key: str, worker: ChatWorkerConfig, ctx: RenderContext) -> Rendering:
        gateway = gateway_binding(worker, ctx)
        return Rendering(
            bindings=(*ai_bindings(worker.model), *gateway),
            models=(worker.model,),
            gateway=gateway[0].text if gateway else None,
            settings={
                "SYSTEM_PROMPT": worker.system_prompt,
                "MAX_TOKENS": worker.max_tokens,
                "TEMPERATURE": worker.temperature,
                "STREAM": worker.stream,
                **({"RESPONSE_SCHEMA": worker.response_schema} if worker.response_schema else {}),
            },
        )

    def output_fields(self, worker: ChatWorkerConfig) -> dict[str, Any]:
        # The contract suite checks JSON-mode answers against the schema.
        return {"response_schema": worker.response_schema} if worker.response_schema else {}

    def cost(self, key: str, worker: ChatWorkerConfig, traffic: Traffic) -> KindCost:
        n, t = traffic.requests_per_day, tokens(worker.system_prompt, worker.max_tokens, traffic)
        items = priced(
            worker.model, {"input_tokens": t.tokens_in * n, "output_tokens": t.tokens_out * n}
        )
        said = f"{key} (chat): {worker.model}, {t.said_in} in, {t.said_out} out tokens per request"
        return KindCost(tuple(items), (said,))


KIND = ChatKind()
