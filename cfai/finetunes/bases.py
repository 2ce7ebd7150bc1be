"""The Workers AI models Cloudflare serves LoRA adapters for, and the adapter rules.

Kept in one place (the models engineer may fold it into `cfai.catalog` later). Source:
https://developers.cloudflare.com/workers-ai/features/fine-tunes/loras/ ("Limitations"), its
model list as of the revision that raised the rank limit to 32 (cloudflare/cloudflare-docs
``src/content/docs/workers-ai/features/fine-tunes/loras.mdx``); the page now links the
catalog filtered on the LoRA capability
(https://developers.cloudflare.com/workers-ai/models/?capabilities=LoRA).

Left out on purpose: ``@cf/meta/llama-3.1-8b-instruct-fast`` (listed as "soon", not served)
and the older ``-lora`` ids (``@cf/mistral/mistral-7b-instruct-v0.2-lora`` and friends) of
the first beta, which the current page no longer lists.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CONFIG_FILE",
    "FILE_NAMES",
    "LORA_BASES",
    "MAX_ADAPTER_BYTES",
    "MAX_FINETUNES_PER_ACCOUNT",
    "MAX_RANK",
    "MODEL_FILE",
    "MODEL_TYPES",
    "LoraBase",
    "lora_base",
]

#: The two files of an adapter, named exactly so ("LoRA adapter files must be named
#: adapter_config.json and adapter_model.safetensors exactly").
CONFIG_FILE = "adapter_config.json"
MODEL_FILE = "adapter_model.safetensors"
FILE_NAMES = (CONFIG_FILE, MODEL_FILE)
#: ``model_type`` in adapter_config.json: "one of mistral, gemma or llama".
MODEL_TYPES = ("mistral", "gemma", "llama")
#: "Adapter must be trained with rank r <= 8 as well as larger ranks if up to 32".
MAX_RANK = 32
#: "LoRA adapter file must be < 300MB". Whether MB means 10**6 or 2**20 bytes is not
#: published; cfai takes the smaller, so nothing it accepts is refused by Cloudflare.
MAX_ADAPTER_BYTES = 300_000_000
#: "You can test up to 100 LoRA adapters per account".
MAX_FINETUNES_PER_ACCOUNT = 100


@dataclass(frozen=True)
class LoraBase:
    """A base model LoRA adapters run on. `family` is the ``model_type`` its adapters
    declare; None where Cloudflare names none (Qwen-architecture models: the docs allow
    only mistral, gemma or llama, so any of them passes)."""

    model: str
    family: str | None


LORA_BASES: dict[str, LoraBase] = {
    b.model: b
    for b in (
        LoraBase("@cf/meta/llama-3.2-11b-vision-instruct", "llama"),
        LoraBase("@cf/meta/llama-3.3-70b-instruct-fp8-fast", "llama"),
        LoraBase("@cf/meta/llama-guard-3-8b", "llama"),
        LoraBase("@cf/deepseek-ai/deepseek-r1-distill-qwen-32b", None),
        LoraBase("@cf/qwen/qwen2.5-coder-32b-instruct", None),
        LoraBase("@cf/qwen/qwq-32b", None),
        LoraBase("@cf/mistralai/mistral-small-3.1-24b-instruct", "mistral"),
        LoraBase("@cf/google/gemma-3-12b-it", "gemma"),
    )
}


def lora_base(model: str) -> LoraBase | None:
    """The LoRA base `model` is, or None when Cloudflare serves no adapters on it.

    >>> lora_base("@cf/google/gemma-3-12b-it").family
    'gemma'
    >>> lora_base("@cf/meta/llama-3.1-8b-instruct") is None
    True
    """
    return LORA_BASES.get(model)
