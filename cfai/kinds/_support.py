"""Helpers the kinds share: model task checks, the AI bindings, gateways, text generation."""

from __future__ import annotations

import json
from collections.abc import Iterator, Set
from dataclasses import dataclass

from pydantic import Field

from cfai.catalog import Catalog, ModelSpec, Task
from cfai.errors import Problem, RenderError
from cfai.kinds.base import Binding, CheckContext, ModelUse, RenderContext, WorkerConfig
from cfai.kinds.pricing import DEFAULT_USER_TOKENS, Traffic


def unknown(path: str, what: str, name: str, defined: Set[str]) -> Problem:
    """`<path>: unknown index 'docz' (defined: docs)`."""
    listing = ", ".join(sorted(defined)) or "none"
    return Problem(path, f"unknown {what} {name!r} (defined: {listing})")


#: The setting a Worker declares to use a model the catalog does not list yet.
TASK_FIELD_HELP = (
    "the task of a model the catalog does not list (text-generation, text-embeddings, ...): "
    "cfai then accepts the model, with a warning"
)


def declared_task(worker: WorkerConfig) -> Task | None:
    """The `task` a Worker declares for a model the catalog does not list, if any."""
    task = getattr(worker, "task", None)
    return task if isinstance(task, Task) else None


def model_problems(
    path: str,
    name: str,
    task: Task,
    role: str,
    catalog: Catalog,
    declared: Task | None = None,
) -> tuple[ModelSpec | None, list[Problem]]:
    """The catalog entry of model `name` when it does `task`, else the problem saying so.
    A model the catalog does not list is accepted when `declared` is its task (open world:
    the entry is then `ModelSpec.declared`)."""
    spec = catalog.get(name)
    choices = ", ".join(catalog.models_for(task))
    if spec is None:
        if declared is task:
            return ModelSpec.declared(name, task), []
        return None, [
            Problem(
                path,
                f"unknown Workers AI model {name!r} ({task.value} models: {choices}); "
                f"to use a model the catalog does not list yet, declare task: {task.value}",
            )
        ]
    if spec.task is not task:
        return None, [
            Problem(
                path,
                f"{role} needs a {task.value} model but {name!r} is {spec.task.value} (choose one of: {choices})",
            )
        ]
    return spec, []


def render_spec(use: ModelUse, key: str, worker: WorkerConfig, catalog: Catalog) -> ModelSpec:
    """The catalog entry the renderer needs: the catalog's, or the declared task's for a
    model the checks let through by its declared task."""
    spec = catalog.get(use.name)
    if spec is None and declared_task(worker) is use.task:
        return ModelSpec.declared(use.name, use.task)
    if spec is None:
        raise RenderError(
            f"workers.{key}.{use.setting}: model {use.name!r} is not in the catalog (validate first)"
        )
    return spec


def ai_bindings(model: str) -> list[Binding]:
    """`AI` and the `MODEL` var: how a templated Worker reaches its model."""
    return [Binding("ai", "AI"), Binding("plain_text", "MODEL", text=model)]


def traits_binding(spec: ModelSpec) -> Binding:
    """The `MODEL_TRAITS` var: the model's form, vision and reasoning, which the templates
    read at run time (a var like `MODEL`, so every stack runs the same code)."""
    traits = {
        "form": spec.form.value,
        "vision": spec.vision.value,
        "reasoning": spec.reasoning.value,
    }
    return Binding("plain_text", "MODEL_TRAITS", text=json.dumps(traits, sort_keys=True))


class TextGenerationConfig(WorkerConfig):
    """Settings of a Worker that answers with a text-generation model (chat, rag)."""

    model: str = "@cf/meta/llama-3.1-8b-instruct"
    task: Task | None = Field(None, description=TASK_FIELD_HELP)
    gateway: str | None = None
    max_tokens: int = Field(256, ge=1, le=131_072)
    temperature: float = Field(0.6, ge=0, le=5)


def text_generation_problems(
    key: str, worker: TextGenerationConfig, ctx: CheckContext
) -> Iterator[Problem]:
    """The gateway exists; the model generates text and its context window fits max_tokens."""
    base = f"workers.{key}"
    if worker.gateway and worker.gateway not in ctx.gateways:
        yield unknown(f"{base}.gateway", "gateway", worker.gateway, ctx.gateways)
    spec, problems = model_problems(
        f"{base}.model",
        worker.model,
        Task.TEXT_GENERATION,
        f"a {worker.kind} worker",
        ctx.catalog,
        declared_task(worker),
    )
    yield from problems
    if spec and spec.context_window and worker.max_tokens > spec.context_window:
        yield Problem(
            f"{base}.max_tokens",
            f"max_tokens {worker.max_tokens} exceeds {worker.model}'s context window of {spec.context_window}",
        )


def gateway_binding(worker: TextGenerationConfig, ctx: RenderContext) -> list[Binding]:
    """The `GATEWAY_ID` var when the Worker's model calls go through an AI Gateway."""
    if not worker.gateway:
        return []
    return [Binding("plain_text", "GATEWAY_ID", text=ctx.physical_name(worker.gateway))]


@dataclass(frozen=True)
class Tokens:
    """Tokens in and out of one request, and how each figure was arrived at."""

    system: int
    tokens_in: int
    tokens_out: int
    said_in: str
    said_out: str


def tokens(system_prompt: str, max_tokens: int, t: Traffic) -> Tokens:
    """The traffic's token counts, or the system prompt's words plus a user message in and
    `max_tokens` out."""
    system = len(system_prompt.split())
    tokens_in = t.tokens_in if t.tokens_in is not None else system + DEFAULT_USER_TOKENS
    tokens_out = t.tokens_out if t.tokens_out is not None else max_tokens
    said_in = (
        f"{tokens_in} (--tokens-in)"
        if t.tokens_in is not None
        else f"{tokens_in} ({system} system prompt words + {DEFAULT_USER_TOKENS})"
    )
    said_out = (
        f"{tokens_out} (--tokens-out)" if t.tokens_out is not None else f"{tokens_out} (max_tokens)"
    )
    return Tokens(system, tokens_in, tokens_out, said_in, said_out)
