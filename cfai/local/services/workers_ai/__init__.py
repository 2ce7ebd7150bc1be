"""The emulated Workers AI service: deterministic, honest stand-in models for every model in
`cfai.catalog.CATALOG`, with the real input checks, defaults, output shapes and forms.

One handler per task (`HANDLERS`), each in its own module: `text` (text generation and
vision), `embeddings`, `images`, `audio` (speech recognition and text-to-speech), `misc`
(translation, classification). `app` holds the routes: the binding route workerd's
``env.AI`` calls, and the REST surface (``ai/run``, ``ai/models/search``, the
OpenAI-compatible ``ai/v1``).

Example::

    ai = WorkersAI(EmulatorContext(state_dir=Path(".cfai"), account_id="0" * 32, api_token="t"))
    out = ai.run("@cf/baai/bge-small-en-v1.5", {"text": ["hello"]})
    out.result["shape"]  # [1, 384]
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from cfai.catalog import CATALOG, ModelSpec, Task
from cfai.local.services.base import (
    WORKER_HEADER,
    EmulatorContext,
    Service,
    WorkerdBinding,
    WorkerdService,
)

from . import app
from ._core import AiError, AiResult, bad_input, no_such_model
from .audio import run_asr, run_tts
from .embeddings import run_embeddings
from .images import run_image
from .misc import run_classification, run_translation
from .remote import TOKEN_ENV, RemoteAi
from .text import run_text

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

__all__ = ["HANDLERS", "AiError", "AiResult", "WorkersAI"]

Handler = Callable[[ModelSpec, Mapping[str, Any]], AiResult]

HANDLERS: dict[Task, Handler] = {
    Task.TEXT_GENERATION: run_text,
    Task.IMAGE_TO_TEXT: run_text,
    Task.TEXT_EMBEDDINGS: run_embeddings,
    Task.TEXT_TO_IMAGE: run_image,
    Task.SPEECH_RECOGNITION: run_asr,
    Task.TEXT_TO_SPEECH: run_tts,
    Task.TRANSLATION: run_translation,
    Task.TEXT_CLASSIFICATION: run_classification,
}


class WorkersAI(Service):
    """Workers AI: `run(model, inputs)` for other services, binding and REST routes."""

    name: ClassVar[str] = "workers_ai"
    binding_types: ClassVar[tuple[str, ...]] = ("ai",)

    def __init__(self, ctx: EmulatorContext) -> None:
        super().__init__(ctx)
        remote = ctx.settings.get("remote_ai")
        # Settings `remote_ai` = {"base_url", "account_id"}: forward runs to a real account.
        self._remote = (
            RemoteAi(str(remote["base_url"]), str(remote["account_id"]), os.environ[TOKEN_ENV])
            if remote
            else None
        )

    def run(self, model: str, inputs: Mapping[str, Any]) -> AiResult:
        """Run `model` on `inputs` (what ``env.AI.run`` takes); raises `AiError`.

        A streaming text answer comes back as ``text/event-stream`` chunks when
        ``inputs["stream"]`` is true (JSON mode never streams). In remote mode the run goes
        to the remote account's Workers AI (see `remote`)."""
        if self._remote is not None:
            if not isinstance(inputs, Mapping):
                raise bad_input("inputs", "must be an object")
            return self._remote.run(model, inputs)
        spec = CATALOG.get(model)
        if spec is None:
            raise no_such_model(model)
        if not isinstance(inputs, Mapping):
            raise bad_input("inputs", "must be an object")
        return HANDLERS[spec.task](spec, inputs)

    def routes(self) -> list[BaseRoute]:
        return app.rest_routes(self)

    def binding_routes(self) -> dict[str, list[BaseRoute]]:
        return {"workers-binding.ai": app.binding_routes(self)}

    def workerd_services(
        self, worker: str, bindings: Sequence[Mapping[str, Any]]
    ) -> list[WorkerdService]:
        if not any(b.get("type") in self.binding_types for b in bindings):
            return []
        return [WorkerdService(name=f"ai-{worker}", inject_headers={WORKER_HEADER: worker})]

    def close(self) -> None:
        if self._remote is not None:
            self._remote.close()

    def workerd_binding(self, worker: str, binding: Mapping[str, Any]) -> WorkerdBinding:
        if binding.get("type") not in self.binding_types:
            return super().workerd_binding(worker, binding)
        return WorkerdBinding(
            name=str(binding["name"]),
            module="cloudflare-internal:ai-api",
            inner=[("fetcher", "service", f"ai-{worker}")],
        )
