"""The safetensors header, checked as the reference reader checks it, without reading tensors.

Format (https://github.com/huggingface/safetensors, README "Format"): 8 bytes ``N`` (an
unsigned little-endian 64-bit integer), then ``N`` bytes of UTF-8 JSON starting with ``{``
(padded with spaces), then the byte buffer. The header maps each tensor name to ``{"dtype",
"shape", "data_offsets": [begin, end]}`` (offsets relative to the buffer), plus an optional
``"__metadata__"`` map of strings to strings.

The rules `read_header` enforces are the reference reader's (``safetensors/src/tensor.rs``,
``SafeTensors::read_metadata`` and ``Metadata::validate``): a header of at most 100,000,000
bytes; no duplicate names; offsets that tile the buffer from 0 with no hole and no overlap;
each tensor's byte length equal to its element count times its dtype's size; the last
offset the end of the file.

Example::

    with open("adapter_model.safetensors", "rb") as f:
        head = f.read(8)
        head += f.read(header_length(head))
    tensors = read_header(head, size=os.path.getsize("adapter_model.safetensors"))
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DTYPE_BITS",
    "MAX_HEADER_BYTES",
    "SafetensorsError",
    "Tensor",
    "header_length",
    "read_header",
]

#: The reference reader refuses a larger header ("to prevent parsing extremely large JSON").
MAX_HEADER_BYTES = 100_000_000
#: Bits per element of each dtype (``Dtype::bitsize`` in ``safetensors/src/tensor.rs``).
DTYPE_BITS: dict[str, int] = {
    "BOOL": 8,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "I64": 64,
    "U64": 64,
    "F64": 64,
    "C64": 64,
}
_METADATA = "__metadata__"


class SafetensorsError(ValueError):
    """The file is not a valid safetensors file; the message says where and why."""


@dataclass(frozen=True)
class Tensor:
    """One tensor of the header: its byte range ``[begin, end)`` in the buffer."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int


def header_length(first8: bytes) -> int:
    """``N`` from the file's first 8 bytes; raises `SafetensorsError` when the file is shorter
    or ``N`` is over `MAX_HEADER_BYTES` (so a caller never reads a huge "header")."""
    if len(first8) < 8:
        raise SafetensorsError(
            f"the file has {len(first8)} bytes; a safetensors file starts with an 8-byte header length"
        )
    n = int.from_bytes(first8[:8], "little")
    if n > MAX_HEADER_BYTES:
        raise SafetensorsError(
            f"header length {n} exceeds the format's limit of {MAX_HEADER_BYTES} bytes"
        )
    return n


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise SafetensorsError(f"the header names {key!r} twice")
        seen[key] = value
    return seen


def _parse(head: bytes, n: int) -> dict[str, Any]:
    raw = head[8 : 8 + n]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SafetensorsError("the header is not UTF-8 text") from None
    if not text.startswith("{"):
        raise SafetensorsError("the header must be a JSON object starting with '{'")
    try:
        doc = json.loads(text, object_pairs_hook=_no_duplicates)
    except SafetensorsError:
        raise
    except ValueError as exc:
        raise SafetensorsError(f"the header is not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise SafetensorsError("the header must be a JSON object")
    return doc


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _tensor(name: str, info: Any) -> Tensor:
    if not isinstance(info, Mapping):
        raise SafetensorsError(
            f"tensor {name!r}: must be an object with dtype, shape, data_offsets"
        )
    dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if dtype not in DTYPE_BITS:
        known = ", ".join(DTYPE_BITS)
        raise SafetensorsError(f"tensor {name!r}: unknown dtype {dtype!r} (known: {known})")
    if not isinstance(shape, list) or not all(_whole(d) for d in shape):
        raise SafetensorsError(f"tensor {name!r}: shape must be a list of non-negative integers")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(_whole(o) for o in offsets):
        raise SafetensorsError(f"tensor {name!r}: data_offsets must be [begin, end] integers")
    extra = sorted(set(info) - {"dtype", "shape", "data_offsets"})
    if extra:
        raise SafetensorsError(f"tensor {name!r}: unknown field(s) {', '.join(extra)}")
    begin, end = offsets
    if end < begin:
        raise SafetensorsError(f"tensor {name!r}: data_offsets end {end} is before begin {begin}")
    bits = math.prod(shape) * DTYPE_BITS[dtype]
    if bits % 8 or end - begin != bits // 8:
        raise SafetensorsError(
            f"tensor {name!r}: shape {shape} of {dtype} needs {bits / 8:g} bytes, "
            f"data_offsets give {end - begin}"
        )
    return Tensor(name, dtype, tuple(shape), begin, end)


def read_header(head: bytes, *, size: int) -> list[Tensor]:
    """The tensors of a safetensors file whose first ``8 + N`` bytes are `head` and whose
    total size is `size`, in buffer order; raises `SafetensorsError` naming the first rule
    the file breaks."""
    n = header_length(head)
    if 8 + n > size or len(head) < 8 + n:
        raise SafetensorsError(f"header length {n} runs past the end of the file ({size} bytes)")
    doc = _parse(head, n)
    metadata = doc.pop(_METADATA, None)
    if metadata is not None and not (
        isinstance(metadata, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())
    ):
        raise SafetensorsError("__metadata__ must map strings to strings")
    tensors = sorted((_tensor(k, v) for k, v in doc.items()), key=lambda t: (t.begin, t.end))
    position = 0
    for t in tensors:
        if t.begin > position:
            raise SafetensorsError(
                f"tensor {t.name!r}: bytes {position}..{t.begin} of the buffer belong to no tensor"
            )
        if t.begin < position:
            raise SafetensorsError(
                f"tensor {t.name!r}: data_offsets [{t.begin}, {t.end}] overlap the previous tensor"
            )
        position = t.end
    buffer = size - 8 - n
    if position > buffer:
        raise SafetensorsError(
            f"the tensors need {position} bytes after the header, the file has {buffer} "
            "(truncated?)"
        )
    if position < buffer:
        raise SafetensorsError(
            f"{buffer - position} bytes after the last tensor belong to no tensor "
            "(the buffer must be entirely indexed)"
        )
    return tensors
