"""``multipart/form-data`` bodies (RFC 7578), parsed byte-exact.

The parts are cut at the boundary lines on the raw bytes, never decoded or re-folded, so a
binary file (a safetensors adapter) arrives exactly as sent. Only the part headers go
through the standard library's header parser (quoted ``name`` and ``filename`` parameters).
What the clients send differs in the details and all of it parses: undici's ``FormData``
(wrangler: a ``file`` part named ``blob``, ``application/octet-stream``), httpx (the Python
SDK: the caller's filename and type) and curl's ``-F``.

Example::

    parts = parse_multipart(body, request.headers["content-type"])
    fields = {p.name: p for p in parts}
    fields["file"].data
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message

__all__ = ["Part", "parse_multipart"]


@dataclass(frozen=True)
class Part:
    """One form field: its `name`, bytes, and for a file its `filename` and `content_type`."""

    name: str
    data: bytes
    filename: str | None = None
    content_type: str | None = None

    def text(self) -> str:
        """The field's value as text (UTF-8); ValueError when it is not."""
        try:
            return self.data.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"form field `{self.name}` is not UTF-8 text") from None


def _boundary(content_type: str) -> bytes:
    header = Message()
    header["content-type"] = content_type
    if header.get_content_type() != "multipart/form-data":
        raise ValueError(f"expected multipart/form-data, got {content_type or 'no content type'}")
    boundary = header.get_param("boundary")
    if not isinstance(boundary, str) or not 0 < len(boundary) <= 70:
        raise ValueError("multipart/form-data without a boundary parameter")
    return boundary.encode("latin-1")


def _part(head: bytes, data: bytes) -> Part:
    headers = Message()
    for line in head.decode("latin-1").split("\r\n"):
        if not line:
            continue
        key, sep, value = line.partition(":")
        if not sep:
            raise ValueError(f"malformed part header {line[:64]!r}")
        headers[key.strip()] = value.strip()
    if headers.get("content-disposition") is None:
        raise ValueError("a part has no Content-Disposition header")
    name = headers.get_param("name", header="content-disposition")
    if not isinstance(name, str):
        raise ValueError("a part's Content-Disposition has no name")
    filename = headers.get_param("filename", header="content-disposition")
    content_type = headers.get("content-type")
    return Part(
        name,
        data,
        filename if isinstance(filename, str) else None,
        str(content_type) if content_type is not None else None,
    )


def parse_multipart(body: bytes, content_type: str) -> list[Part]:
    """Every part of `body`, in order; ValueError saying what is malformed."""
    delimiter = b"--" + _boundary(content_type)
    start = body.find(delimiter)
    if start < 0:
        raise ValueError("the body has no multipart boundary line")
    pos = start + len(delimiter)
    parts: list[Part] = []
    while True:
        if body.startswith(b"--", pos):
            return parts
        if not body.startswith(b"\r\n", pos):
            raise ValueError("a multipart boundary line is not followed by CRLF")
        pos += 2
        if body.startswith(b"\r\n", pos):
            head, data_start = b"", pos + 2
        else:
            end = body.find(b"\r\n\r\n", pos)
            if end < 0:
                raise ValueError("a part's headers never end")
            head, data_start = body[pos:end], end + 4
        following = body.find(b"\r\n" + delimiter, data_start)
        if following < 0:
            raise ValueError("the body ends before its closing multipart boundary")
        parts.append(_part(head, body[data_start:following]))
        pos = following + 2 + len(delimiter)
