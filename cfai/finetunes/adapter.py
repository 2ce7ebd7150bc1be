"""What makes a LoRA adapter one Cloudflare takes: its two files, checked as data.

Rules (https://developers.cloudflare.com/workers-ai/features/fine-tunes/loras/): the files
are named ``adapter_config.json`` and ``adapter_model.safetensors`` exactly; each is under
300 MB; ``adapter_config.json`` sets ``model_type`` to mistral, gemma or llama and its rank
``r`` is at most 32 (PEFT's per-module ``rank_pattern`` too); the weights are a valid
safetensors file (`cfai.finetunes.safetensors`). cfai adds two checks of its own: the
``model_type`` is the base model's family, and the weights hold at least one tensor.

`config_problems` and `weights_problems` are pure (bytes in, messages out): the declaration
checks (`inspect_folder`) and the emulator's upload route share them, so a file the
declaration accepts is one the local platform accepts.

Example::

    problems = inspect_folder(Path("src/adapters/tone"), "@cf/meta/llama-3.3-70b-instruct-fp8-fast")
    for p in problems:
        print(p)        # adapter_config.json: rank r=64 exceeds Cloudflare's limit of 32
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cfai.finetunes.bases import (
    CONFIG_FILE,
    FILE_NAMES,
    MAX_ADAPTER_BYTES,
    MAX_RANK,
    MODEL_FILE,
    MODEL_TYPES,
    lora_base,
)
from cfai.finetunes.safetensors import SafetensorsError, header_length, read_header

__all__ = [
    "AdapterDigest",
    "Finding",
    "config_problems",
    "digest_folder",
    "inspect_folder",
    "size_problem",
    "upload_problems",
    "weights_problems",
]


@dataclass(frozen=True)
class Finding:
    """One problem with an adapter folder: the `file` it is in (None: the folder itself)."""

    file: str | None
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.message}" if self.file else self.message


@dataclass(frozen=True)
class AdapterDigest:
    """sha256 (hex) of each adapter file: what the Finetune resource compares."""

    config_sha256: str
    model_sha256: str


def size_problem(size: int) -> str | None:
    """The message for a file Cloudflare refuses for its size, else None."""
    if size < MAX_ADAPTER_BYTES:
        return None
    return f"is {size:,} bytes; Cloudflare takes adapter files under {MAX_ADAPTER_BYTES:,} bytes"


def _ranks(doc: dict[str, Any]) -> list[str]:
    found = []
    rank = doc.get("r")
    if rank is None:
        found.append(f"rank `r` is missing (Cloudflare takes adapters of rank 1..{MAX_RANK})")
    elif isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        found.append(f"rank `r` must be a positive integer, got {rank!r}")
    elif rank > MAX_RANK:
        found.append(
            f"rank r={rank} exceeds Cloudflare's limit of {MAX_RANK}; retrain with r <= {MAX_RANK}"
        )
    pattern = doc.get("rank_pattern") or {}
    if not isinstance(pattern, dict):
        found.append("rank_pattern must map module names to ranks")
        return found
    for module, value in sorted(pattern.items()):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            found.append(f"rank_pattern[{module!r}] must be a positive integer, got {value!r}")
        elif value > MAX_RANK:
            found.append(
                f"rank_pattern[{module!r}]={value} exceeds Cloudflare's limit of {MAX_RANK}"
            )
    return found


def config_problems(data: bytes, base_model: str | None = None) -> list[str]:
    """What is wrong with an ``adapter_config.json`` holding `data` (for an adapter of
    `base_model` when given: its ``model_type`` must be that model's family)."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        return [f"is not valid JSON ({exc})"]
    if not isinstance(doc, dict):
        return ["must be a JSON object"]
    found = []
    kinds = ", ".join(MODEL_TYPES)
    model_type = doc.get("model_type")
    base = lora_base(base_model) if base_model else None
    if model_type is None:
        hint = f'"model_type": "{base.family}"' if base and base.family else '"model_type"'
        found.append(f"model_type is missing; Cloudflare requires one of {kinds} (add {hint})")
    elif model_type not in MODEL_TYPES:
        found.append(f"model_type {model_type!r} is not one of {kinds}")
    elif base is not None and base.family is not None and model_type != base.family:
        found.append(
            f"model_type {model_type!r} does not match {base.model}, a {base.family} model "
            "(an adapter runs only on the model family it was trained for)"
        )
    return found + _ranks(doc)


def weights_problems(head: bytes, size: int) -> list[str]:
    """What is wrong with an ``adapter_model.safetensors`` of `size` bytes whose first
    ``8 + N`` bytes (the header) are `head`."""
    too_big = size_problem(size)
    if too_big:
        return [too_big]
    try:
        tensors = read_header(head, size=size)
    except SafetensorsError as exc:
        return [f"is not a valid safetensors file: {exc}"]
    return [] if tensors else ["holds no tensors (an adapter needs its LoRA weights)"]


def upload_problems(file_name: str, data: bytes) -> list[str]:
    """What Cloudflare's asset upload refuses about `data` sent as `file_name`."""
    if file_name not in FILE_NAMES:
        return [f"file_name must be {CONFIG_FILE} or {MODEL_FILE}, got {file_name!r}"]
    too_big = size_problem(len(data))
    if too_big:
        return [too_big]
    if file_name == CONFIG_FILE:
        return config_problems(data)
    return weights_problems(data, len(data))


def _head(path: Path) -> bytes:
    with path.open("rb") as f:
        first = f.read(8)
        try:
            n = header_length(first)
        except SafetensorsError:
            return first
        return first + f.read(n)


def inspect_folder(folder: Path, base_model: str) -> list[Finding]:
    """Every problem of the adapter in `folder` for `base_model` (reads the config and the
    safetensors header, never the tensors)."""
    if not folder.is_dir():
        return [
            Finding(None, f"{folder} is not a folder (it must hold {' and '.join(FILE_NAMES)})")
        ]
    found = []
    for name in FILE_NAMES:
        path = folder / name
        if not path.is_file():
            found.append(Finding(name, f"missing from {folder}"))
            continue
        size = path.stat().st_size
        if name == MODEL_FILE:
            found += [Finding(name, m) for m in weights_problems(_head(path), size)]
        elif size_problem(size):
            found.append(Finding(name, str(size_problem(size))))
        else:
            found += [Finding(name, m) for m in config_problems(path.read_bytes(), base_model)]
    return found


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def digest_folder(folder: Path) -> AdapterDigest:
    """The sha256 of both adapter files (OSError when one cannot be read)."""
    return AdapterDigest(_sha256(folder / CONFIG_FILE), _sha256(folder / MODEL_FILE))
