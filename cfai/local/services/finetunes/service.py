"""The finetunes service: the REST API's store, and the lookup Workers AI runs make.

A model run with ``lora`` (`cfai.local.services.workers_ai`) asks `adapter` for the
finetune it names; the answers follow Cloudflare's documented errors
(https://developers.cloudflare.com/workers-ai/platform/errors/): 5005 when the model takes
no LoRA, 3037 when no finetune of that id or name exists (also when it was made for
another model: the finetune is looked up per model), 3039 when its assets are incomplete.
"""

from __future__ import annotations

from typing import ClassVar

from cfai.finetunes import FILE_NAMES, lora_base
from cfai.local.services.base import EmulatorContext, Service
from cfai.local.services.finetunes import _errors as E
from cfai.local.services.finetunes.routes import endpoints
from cfai.local.services.finetunes.state import Finetune, FinetuneStore
from cfai.local.services.frontdoor import ApiError, Endpoint

__all__ = ["FinetunesService", "finetune_not_found", "missing_files", "no_lora"]

#: Cloudflare's errors for a run that names a finetune (re-exported for Workers AI).
finetune_not_found = E.not_found
no_lora = E.no_lora

MISSING_FILES = 3039


def missing_files() -> ApiError:
    """Cloudflare's 3039, worded as its errors page words it."""
    return ApiError(
        400,
        MISSING_FILES,
        "Finetune is missing required files (model.safetensors and config.json)",
    )


class FinetunesService(Service):
    """Workers AI finetunes (LoRA adapters) of the local account; `store` is the Python API."""

    name: ClassVar[str] = "finetunes"

    def __init__(self, ctx: EmulatorContext) -> None:
        super().__init__(ctx)
        self.store = FinetuneStore(ctx.state_dir)

    def endpoints(self) -> list[Endpoint]:
        return endpoints(self.store)

    def adapter(self, model: str, lora: str) -> Finetune:
        """The finetune `lora` (an id or a name) a run of `model` applies; raises the
        `ApiError` Cloudflare answers when it cannot apply it."""
        if lora_base(model) is None:
            raise E.no_lora(model)
        finetune = self.store.find(lora)
        if finetune is None or finetune.model != model:
            raise E.not_found(lora)
        if self.store.assets(finetune.id) != set(FILE_NAMES):
            raise missing_files()
        return finetune

    def reset(self) -> None:
        self.store.reset()

    def close(self) -> None:
        self.store.close()
