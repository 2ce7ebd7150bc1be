"""The chat kind: `/chat`, OpenAI-compatible `/v1/chat/completions` and `/feedback`.

An optional `lora` names a declared finetune whose adapter every run applies (the model must
be its base model). An optional `response_schema` turns on JSON mode: answers are objects valid against it
(https://developers.cloudflare.com/workers-ai/features/json-mode/), and JSON mode does not
stream. The schema is checked against JSON Schema draft 2020-12 at load.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Any, Literal

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from pydantic import Field, JsonValue

from cfai.catalog import CATALOG, Catalog, ModelSpec, Reasoning, Task
from cfai.errors import Problem, RenderError
from cfai.kinds._support import (
    TextGenerationConfig,
    ai_bindings,
    gateway_binding,
    render_spec,
    text_generation_problems,
    tokens,
    traits_binding,
    unknown,
)
from cfai.kinds.base import (
    HEALTH,
    Binding,
    CheckContext,
    Example,
    Kind,
    KindCost,
    ModelUse,
    RenderContext,
    Rendering,
    Route,
)
from cfai.kinds.pricing import Traffic, priced
from cfai.outputs import Outputs, WorkerOutput

__all__ = [
    "KIND",
    "ChatKind",
    "ChatWorkerConfig",
    "lora_binding",
    "lora_problems",
    "schema_problems",
]


class ChatWorkerConfig(TextGenerationConfig):
    """A chat Worker: `/chat`, OpenAI-compatible `/v1/chat/completions`, `/feedback`."""

    kind: Literal["chat"] = "chat"
    system_prompt: str = Field("", max_length=131_072)
    response_schema: dict[str, JsonValue] | None = Field(
        None, description="JSON Schema: answers become objects valid against it (JSON mode)"
    )
    stream: bool = Field(False, description="stream when the request does not say")
    lora: str | None = Field(
        None,
        description="a declared finetune's key: every run applies that LoRA adapter "
        "(the Worker's model must be the finetune's base_model)",
    )


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


def lora_problems(base: str, worker: ChatWorkerConfig, ctx: CheckContext) -> Iterator[Problem]:
    """The finetune is declared and the Worker's model is its base model: an adapter runs
    only on the model it was trained for
    (https://developers.cloudflare.com/workers-ai/features/fine-tunes/loras/)."""
    lora = worker.lora or ""
    if lora not in ctx.finetunes:
        yield unknown(f"{base}.lora", "finetune", lora, set(ctx.finetunes))
        return
    trained_for = ctx.finetunes[lora]
    if trained_for is not None and trained_for != worker.model:
        yield Problem(
            f"{base}.model",
            f"{worker.model!r} is not the base model of finetune {lora!r} ({trained_for}); "
            f"set model: {trained_for!r} or use another finetune",
        )


def lora_binding(key: str, worker: ChatWorkerConfig, ctx: RenderContext) -> list[Binding]:
    """The `LORA` var: the finetune's Cloudflare name, passed as ``lora`` on every run."""
    if worker.lora is None:
        return []
    if ctx.finetune_name is None:
        raise RenderError(f"workers.{key}.lora: the render has no finetune names")
    return [Binding("plain_text", "LORA", text=ctx.finetune_name(worker.lora))]


def _free_text(worker: WorkerOutput, outputs: Outputs) -> bool:
    # A Worker with a response schema answers objects and cannot stream.
    return not worker.response_schema


def _schema(worker: WorkerOutput, outputs: Outputs) -> bool:
    return bool(worker.response_schema)


def _behind_gateway(worker: WorkerOutput, outputs: Outputs) -> bool:
    return bool(worker.gateway) and any(g.id == worker.gateway for g in outputs.gateways.values())


def _spec(worker: WorkerOutput) -> ModelSpec | None:
    return CATALOG.get(worker.models[0]) if worker.models else None


def _tools(worker: WorkerOutput, outputs: Outputs) -> bool:
    # Function calling needs free text (JSON mode answers objects) and a model that calls tools.
    spec = _spec(worker)
    return not worker.response_schema and spec is not None and spec.tools


def _reasoning(worker: WorkerOutput, outputs: Outputs) -> bool:
    spec = _spec(worker)
    return not worker.response_schema and spec is not None and spec.reasoning is not Reasoning.NONE


class ChatKind(Kind[ChatWorkerConfig]):
    name = "chat"
    playground = True
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
    examples = (
        example,
        Example(
            "POST",
            "/v1/chat/completions",
            {
                "messages": [{"role": "user", "content": "Use get_weather for Lisbon."}],
                "tools": [
                    {
                        "type": "function",
                        "function": {
                            "name": "get_weather",
                            "parameters": {
                                "type": "object",
                                "properties": {"city": {"type": "string"}},
                                "required": ["city"],
                            },
                        },
                    }
                ],
            },
        ),
    )
    checks = ("test_chat.py", "test_gateway.py", "test_playground.py")
    selections = MappingProxyType(
        {
            "chat_worker": _free_text,
            "schema_worker": _schema,
            "gateway_worker": _behind_gateway,
            "tool_worker": _tools,
            "reasoning_worker": _reasoning,
        }
    )

    def model_uses(self, worker: ChatWorkerConfig) -> tuple[ModelUse, ...]:
        return (ModelUse("model", worker.model, Task.TEXT_GENERATION, "a chat worker"),)

    def problems(self, key: str, worker: ChatWorkerConfig, ctx: CheckContext) -> Iterator[Problem]:
        yield from text_generation_problems(key, worker, ctx)
        base = f"workers.{key}"
        if worker.lora is not None:
            yield from lora_problems(base, worker, ctx)
        if worker.response_schema is None:
            return
        if worker.stream:
            yield Problem(
                f"{base}.stream", "JSON mode (response_schema) cannot stream; set stream: false"
            )
        if worker.response_schema.get("type") != "object":
            yield Problem(f"{base}.response_schema", 'must be a JSON Schema with "type": "object"')
        yield from schema_problems(f"{base}.response_schema", worker.response_schema)

    def render(self, key: str, worker: ChatWorkerConfig, ctx: RenderContext) -> Rendering:
        gateway = gateway_binding(worker, ctx)
        spec = render_spec(self.model_uses(worker)[0], key, worker, ctx.catalog)
        return Rendering(
            bindings=(
                *ai_bindings(worker.model),
                traits_binding(spec),
                *gateway,
                *lora_binding(key, worker, ctx),
            ),
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

    def cost(
        self,
        key: str,
        worker: ChatWorkerConfig,
        traffic: Traffic,
        catalog: Catalog | None = None,
    ) -> KindCost:
        n, t = traffic.requests_per_day, tokens(worker.system_prompt, worker.max_tokens, traffic)
        items = priced(
            worker.model,
            {"input_tokens": t.tokens_in * n, "output_tokens": t.tokens_out * n},
            catalog or CATALOG,
        )
        said = f"{key} (chat): {worker.model}, {t.said_in} in, {t.said_out} out tokens per request"
        if worker.lora is None:
            return KindCost(tuple(items), (said,))
        # LoRA inference is an open beta, "free during this period", with no published price
        # (https://developers.cloudflare.com/workers-ai/features/fine-tunes/loras/): neither
        # the base model's price nor $0 is known to hold, so the price is unknown.
        note = f"LoRA runs (finetune {worker.lora!r}) have no published price"
        unpriced = tuple(replace(i, usd_per_day=None) for i in items)
        return KindCost(unpriced, (said, f"{key} (chat): price unknown ({note})"), note)


KIND = ChatKind()
