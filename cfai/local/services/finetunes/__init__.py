"""The emulated Workers AI finetunes: the REST API wrangler and the SDKs call, SQLite and
asset files as the system of record, and the adapter lookup of model runs with ``lora``.

Example::

    ctx = EmulatorContext(state_dir=Path(".cfai/local"), account_id="0" * 32, api_token="t")
    finetunes = FinetunesService(ctx)
    finetunes.store.create("acme-tone-1a2b3c4d", "@cf/google/gemma-3-12b-it", description="")
"""

from __future__ import annotations

from cfai.local.services.finetunes.service import FinetunesService
from cfai.local.services.finetunes.state import Finetune, FinetuneStore

__all__ = ["Finetune", "FinetuneStore", "FinetunesService"]
