"""Write a small, valid LoRA adapter: what `make local`'s demo and the tests upload.

Not a trained model: a few KB of deterministic float16 weights in PEFT's layout (``lora_A``
of shape ``[r, hidden]`` and ``lora_B`` of ``[hidden, r]`` for ``q_proj`` and ``v_proj`` of
each layer), written as the safetensors reference writer lays a file out
(https://github.com/huggingface/safetensors, ``serialize`` in ``safetensors/src/tensor.rs``:
tensors ordered by dtype then name, the header padded with spaces to a multiple of 8), and
an ``adapter_config.json`` with the ``model_type`` Cloudflare requires
(https://developers.cloudflare.com/workers-ai/features/fine-tunes/loras/).

Usage::

    python -m cfai.finetunes.demo src/adapters/tone               # rank 8, llama
    python -m cfai.finetunes.demo /tmp/a --rank 16 --model-type gemma --layers 4
"""

from __future__ import annotations

import argparse
import hashlib
import json
import struct
from collections.abc import Mapping, Sequence
from pathlib import Path

from cfai.finetunes.bases import CONFIG_FILE, MODEL_FILE, MODEL_TYPES

__all__ = ["adapter_config", "main", "safetensors_bytes", "write_adapter"]

_BASE_MODELS = {
    "llama": "meta-llama/Llama-3.3-70B-Instruct",
    "gemma": "google/gemma-3-12b-it",
    "mistral": "mistralai/Mistral-Small-3.1-24B-Instruct-2503",
}


def _weights(name: str, count: int) -> bytes:
    # Small deterministic values in [-0.01, 0.01]: blake2b in counter mode, no RNG whose
    # stream could change between library versions.
    out = bytearray()
    block = 0
    while len(out) < 2 * count:
        digest = hashlib.blake2b(f"{name}:{block}".encode(), digest_size=64).digest()
        for (u,) in struct.iter_unpack("<H", digest):
            out += struct.pack("<e", (u % 2001 - 1000) / 100_000)
        block += 1
    return bytes(out[: 2 * count])


def safetensors_bytes(tensors: Mapping[str, tuple[tuple[int, ...], bytes]]) -> bytes:
    """A safetensors file of float16 `tensors` (name -> (shape, little-endian data))."""
    header: dict[str, object] = {"__metadata__": {"format": "pt", "cfai": "demo adapter"}}
    offset = 0
    for name in sorted(tensors):
        shape, data = tensors[name]
        header[name] = {
            "dtype": "F16",
            "shape": list(shape),
            "data_offsets": [offset, offset + len(data)],
        }
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    body = b"".join(tensors[name][1] for name in sorted(tensors))
    return len(text).to_bytes(8, "little") + text + body


def adapter_config(rank: int, model_type: str) -> dict[str, object]:
    """A PEFT ``adapter_config.json`` with Cloudflare's ``model_type``."""
    return {
        "base_model_name_or_path": _BASE_MODELS.get(model_type, model_type),
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "r": rank,
        "lora_alpha": 2 * rank,
        "lora_dropout": 0.0,
        "target_modules": ["q_proj", "v_proj"],
        "inference_mode": True,
        "model_type": model_type,
    }


def write_adapter(
    folder: Path, *, rank: int = 8, model_type: str = "llama", layers: int = 2, hidden: int = 32
) -> tuple[Path, Path]:
    """Write ``adapter_config.json`` and ``adapter_model.safetensors`` into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for layer in range(layers):
        for module in ("q_proj", "v_proj"):
            stem = f"base_model.model.model.layers.{layer}.self_attn.{module}"
            for part, shape in (("lora_A", (rank, hidden)), ("lora_B", (hidden, rank))):
                name = f"{stem}.{part}.weight"
                tensors[name] = (shape, _weights(name, shape[0] * shape[1]))
    config = folder / CONFIG_FILE
    weights = folder / MODEL_FILE
    config.write_text(json.dumps(adapter_config(rank, model_type), indent=2) + "\n")
    weights.write_bytes(safetensors_bytes(tensors))
    return config, weights


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m cfai.finetunes.demo", description=__doc__)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--model-type", choices=MODEL_TYPES, default="llama")
    parser.add_argument("--layers", type=int, default=2)
    args = parser.parse_args(argv)
    for path in write_adapter(
        args.folder, rank=args.rank, model_type=args.model_type, layers=args.layers
    ):
        print(f"wrote {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
