"""multipart/form-data in and out: the bodies of script uploads and settings patches, and
``content/v2`` answers.

Every client frames an upload differently (wrangler: ``metadata`` as a plain field before
one part per module named after it; the Python SDK: ``metadata`` last with
``application/json`` and every module as a ``files`` part carrying its filename;
terraform-provider-cloudflare: ``metadata`` with ``filename=""``), so parts are read as
they come: a part is the metadata by its *name*, a module by its *filename* (or, without
one, its name: a service worker's ``body_part``). The parser is a plain split on the
boundary (RFC 7578), byte-exact for wasm and data modules.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Part", "build", "parse"]

_PARAM = re.compile(r';\s*([A-Za-z0-9_*-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


@dataclass(frozen=True)
class Part:
    """One part of a form: its field `name`, `filename` (None when absent), content type
    ('' when absent) and bytes."""

    name: str
    filename: str | None
    content_type: str
    data: bytes


def _params(header: str) -> dict[str, str]:
    found = {}
    for key, raw in _PARAM.findall(header):
        value = raw.strip()
        if value.startswith('"') and value.endswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        found[key.lower()] = value
    return found


def boundary(content_type: str) -> str | None:
    """The boundary of a ``multipart/form-data`` content type, None for anything else."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media != "multipart/form-data":
        return None
    return _params(content_type).get("boundary") or None


def parse(body: bytes, content_type: str) -> list[Part] | str:
    """The parts of `body`, or why it is not a multipart form (a reason to show)."""
    mark = boundary(content_type)
    if mark is None:
        return "expected a multipart/form-data body with a boundary"
    delimiter = b"--" + mark.encode("latin-1")
    chunks = body.split(delimiter)
    if len(chunks) < 3 or not chunks[-1].startswith(b"--"):
        return "the multipart body is not terminated by its closing boundary"
    parts = []
    for chunk in chunks[1:-1]:
        chunk = chunk.removeprefix(b"\r\n").removesuffix(b"\r\n")
        head, sep, data = chunk.partition(b"\r\n\r\n")
        if not sep:
            head, data = chunk.removesuffix(b"\r\n"), b""
        headers: dict[str, str] = {}
        for line in head.decode("utf-8", errors="replace").split("\r\n"):
            key, colon, value = line.partition(":")
            if colon:
                headers[key.strip().lower()] = value.strip()
        disposition = headers.get("content-disposition", "")
        params = _params(";" + disposition.partition(";")[2])
        if "name" not in params:
            return "a multipart part has no name in its Content-Disposition"
        parts.append(
            Part(
                name=params["name"],
                filename=params.get("filename"),
                content_type=headers.get("content-type", ""),
                data=data,
            )
        )
    return parts


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def build(parts: Sequence[Part]) -> tuple[bytes, str]:
    """A form of `parts`: its body and its content type (with a fresh boundary)."""
    mark = f"cfai{secrets.token_hex(16)}"
    out = bytearray()
    for p in parts:
        out += f"--{mark}\r\n".encode()
        disposition = f'form-data; name="{_quote(p.name)}"'
        if p.filename is not None:
            disposition += f'; filename="{_quote(p.filename)}"'
        out += f"Content-Disposition: {disposition}\r\n".encode()
        if p.content_type:
            out += f"Content-Type: {p.content_type}\r\n".encode()
        out += b"\r\n" + p.data + b"\r\n"
    out += f"--{mark}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={mark}"
