"""LoRA adapters for Workers AI: which base models take them, what a valid adapter is, and
the physical name of a declared finetune.

- `cfai.finetunes.bases`: the LoRA base models and Cloudflare's limits (rank, size, count);
- `cfai.finetunes.adapter`: the adapter checks, pure over the files' bytes, shared by the
  declaration checks and the emulator's upload route;
- `cfai.finetunes.safetensors`: the safetensors header reader;
- `cfai.finetunes.naming`: ``<physical name>-<digest>``;
- ``python -m cfai.finetunes.demo DIR``: writes a small valid adapter.

Example::

    from cfai.finetunes import inspect_folder, lora_base
    lora_base("@cf/google/gemma-3-12b-it").family          # "gemma"
    [str(f) for f in inspect_folder(Path("src/adapters/tone"), "@cf/google/gemma-3-12b-it")]
"""

from cfai.finetunes.adapter import (
    AdapterDigest,
    Finding,
    config_problems,
    digest_folder,
    inspect_folder,
    size_problem,
    upload_problems,
    weights_problems,
)
from cfai.finetunes.bases import (
    CONFIG_FILE,
    FILE_NAMES,
    LORA_BASES,
    MAX_ADAPTER_BYTES,
    MAX_FINETUNES_PER_ACCOUNT,
    MAX_RANK,
    MODEL_FILE,
    MODEL_TYPES,
    LoraBase,
    lora_base,
)
from cfai.finetunes.naming import finetune_name
from cfai.finetunes.safetensors import SafetensorsError, read_header

__all__ = [
    "CONFIG_FILE",
    "FILE_NAMES",
    "LORA_BASES",
    "MAX_ADAPTER_BYTES",
    "MAX_FINETUNES_PER_ACCOUNT",
    "MAX_RANK",
    "MODEL_FILE",
    "MODEL_TYPES",
    "AdapterDigest",
    "Finding",
    "LoraBase",
    "SafetensorsError",
    "config_problems",
    "digest_folder",
    "finetune_name",
    "inspect_folder",
    "lora_base",
    "read_header",
    "size_problem",
    "upload_problems",
    "weights_problems",
]
