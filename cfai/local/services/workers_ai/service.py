"""The Workers AI service: its settings, its model handlers and its workerd fragments.

Example::

    ai = WorkersAIService(EmulatorContext(Path(".cfai"), account_id="0" * 32, api_token="t"))
    out = ai.run("@cf/baai/bge-small-en-v1.5", {"text": ["hello"]})
    out.result["shape"]  # [1, 384]
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from cfai.catalog import CATALOG, Catalog, ModelSpec, Task
from cfai.finetunes import lora_base
from cfai.local.services.base import (
    EmulatorContext,
    Service,
    ServiceSettings,
    WorkerdBinding,
    WorkerdService,
)
from cfai.local.services.finetunes import FinetunesService
from cfai.local.services.finetunes.service import finetune_not_found, no_lora
from cfai.local.services.frontdoor import BindingScope, Endpoint

from . import routes
from ._core import AiResult, bad_input, check_str, no_such_model
from .audio import run_asr, run_tts
from .embeddings import run_embeddings
from .gpt_oss import run_generation
from .images import run_image
from .misc import run_classification, run_translation
from .remote import TOKEN_ENV, RemoteAi

__all__ = [
    "HANDLERS",
    "DeclaredModel",
    "RemoteAiSettings",
    "WorkersAIService",
    "WorkersAISettings",
]

Handler = Callable[[ModelSpec, Mapping[str, Any]], AiResult]

HANDLERS: dict[Task, Handler] = {
    Task.TEXT_GENERATION: run_generation,
    Task.IMAGE_TO_TEXT: run_generation,
    Task.TEXT_EMBEDDINGS: run_embeddings,
    Task.TEXT_TO_IMAGE: run_image,
    Task.SPEECH_RECOGNITION: run_asr,
    Task.TEXT_TO_SPEECH: run_tts,
    Task.TRANSLATION: run_translation,
    Task.TEXT_CLASSIFICATION: run_classification,
}


class RemoteAiSettings(BaseModel):
    """Where `--remote-ai` sends model runs (the token comes from ``CFAI_REMOTE_AI_TOKEN``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_url: str
    account_id: str


class DeclaredModel(BaseModel):
    """A model the built-in catalog does not list that the platform uses (its Worker
    declares the task, or the project's ``catalog.json`` lists it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    task: Task
    dimensions: int | None = Field(None, ge=1, le=1536)


class WorkersAISettings(ServiceSettings):
    """``remote_ai``: forward model runs to a real account's Workers AI REST API;
    ``models``: models to answer besides the built-in catalog, by name
    (`cfai.kinds.declared_models`)."""

    remote_ai: RemoteAiSettings | None = None
    models: dict[str, DeclaredModel] = Field(default_factory=dict)


class WorkersAIService(Service):
    """Workers AI: `run(model, inputs)` for other services, binding and REST routes."""

    name: ClassVar[str] = "workers_ai"
    binding_types: ClassVar[tuple[str, ...]] = ("ai",)
    settings_model: ClassVar[type[ServiceSettings]] = WorkersAISettings

    def __init__(self, ctx: EmulatorContext) -> None:
        super().__init__(ctx)
        self.settings = WorkersAISettings.model_validate(ctx.settings)
        declared = [
            ModelSpec.declared(name, m.task, dimensions=m.dimensions or 768)
            for name, m in self.settings.models.items()
            if name not in CATALOG
        ]
        #: The models this emulator answers: the built-in catalog and the declared ones.
        self.catalog = Catalog([*CATALOG.values(), *declared], source="emulator")
        remote = self.settings.remote_ai
        self._remote = (
            RemoteAi(remote.base_url, remote.account_id, os.environ[TOKEN_ENV]) if remote else None
        )

    def run(self, model: str, inputs: Mapping[str, Any]) -> AiResult:
        """Run `model` on `inputs` (what ``env.AI.run`` takes); raises `AiError`.

        With ``lora`` (a finetune's id or name) the finetunes service must hold that
        finetune, made for `model` with both assets: the answer then names the adapter.

        A streaming text answer comes back as ``text/event-stream`` chunks when
        ``inputs["stream"]`` is true (JSON mode never streams). In remote mode the run goes
        to the remote account's Workers AI (see `remote`)."""
        if self._remote is not None:
            if not isinstance(inputs, Mapping):
                raise bad_input("inputs", "must be an object")
            return self._remote.run(model, inputs)
        spec = self.catalog.get(model)
        if spec is None:
            raise no_such_model(model)
        if not isinstance(inputs, Mapping):
            raise bad_input("inputs", "must be an object")
        if inputs.get("lora") is not None:
            # Every LoRA base model generates text (cfai.finetunes.bases), in its own form.
            return run_generation(spec, inputs, adapter=self._adapter(model, inputs["lora"]))
        return HANDLERS[spec.task](spec, inputs)

    def quick(self, model: str, inputs: Mapping[str, Any]) -> bool:
        """Whether `run(model, inputs)` is a text stand-in's answer, made in this process
        without any I/O (no remote account, no LoRA to look up, no image to read): cheap
        enough for a route to run it on the event loop. A worker thread costs more than such
        a run (the hand-over, the wake-up, and the GIL, which a pure-Python run holds in a
        thread too)."""
        if self._remote is not None or inputs.get("lora") is not None or "image" in inputs:
            return False
        spec = self.catalog.get(model)
        return spec is not None and spec.task is Task.TEXT_GENERATION

    def _adapter(self, model: str, lora: object) -> str:
        """The name of the finetune `lora` names for a run of `model`, or Cloudflare's error
        (`FinetunesService.adapter`)."""
        name = check_str(lora, "lora")
        try:
            finetunes = self.ctx.service(FinetunesService)
        except LookupError:  # an emulator without the finetunes service holds none
            if lora_base(model) is None:
                raise no_lora(model) from None
            raise finetune_not_found(name) from None
        return finetunes.adapter(model, name).name

    def endpoints(self) -> list[Endpoint]:
        # `self.run` is looked up per call, so a subclass's `run` (tests count runs) serves.
        return routes.endpoints(
            lambda model, inputs: self.run(model, inputs), self.catalog, quick=self.quick
        )

    @classmethod
    def workerd_services(
        cls, worker: str, bindings: Sequence[Mapping[str, Any]]
    ) -> list[WorkerdService]:
        if not any(b.get("type") in cls.binding_types for b in bindings):
            return []
        return [WorkerdService(name=_service_name(worker), scope=BindingScope("ai", worker))]

    @classmethod
    def workerd_binding(cls, worker: str, binding: Mapping[str, Any]) -> WorkerdBinding:
        if binding.get("type") not in cls.binding_types:
            return super().workerd_binding(worker, binding)
        return WorkerdBinding(
            name=str(binding["name"]),
            module="cloudflare-internal:ai-api",
            inner=[("fetcher", "service", _service_name(worker))],
        )

    def close(self) -> None:
        if self._remote is not None:
            self._remote.close()


def _service_name(worker: str) -> str:
    return f"ai:{worker}"
