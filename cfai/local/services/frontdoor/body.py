"""Reading a request body within the route's limit, and parsing it as the route declares.

The limit holds while the body streams in: a declared Content-Length over it is refused
before a byte is read, and a chunked body is refused as soon as it passes it, so memory
stays bounded by the limit whatever the client sends.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from starlette.requests import Request

from cfai.local.services.frontdoor.errors import ApiError
from cfai.local.services.frontdoor.multipart import parse_multipart
from cfai.local.services.frontdoor.routes import (
    REQUIRED,
    Body,
    JsonBody,
    MultipartBody,
    NdjsonBody,
    NoBody,
    RawMedia,
    Unparsable,
)

__all__ = ["loads", "read_body"]


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"number {text[:32]} is out of range")
    return value


def _integer(text: str) -> int:
    # JSON.parse reads every number as a double: an integer past the double range is
    # Infinity there, and no Cloudflare service takes it. (Python's own int() refuses
    # integers of more than 4,300 digits with ValueError.)
    if len(text.lstrip("-")) > 308:
        _finite(text)  # raises past the double range
    return int(text)


# A lone surrogate can only come from a \uD800-\uDFFF escape or from the bytes ED A0-BF
# (which json.loads decodes with "surrogatepass"); without either, no string needs a look.
_MAYBE_SURROGATE = re.compile("\\\\u[dD][89a-fA-F]|[\ud800-\udfff]")
_MAYBE_SURROGATE_BYTES = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")


def _lone_surrogate(value: Any) -> str | None:
    """The first string (key or value) in `value` that is not valid Unicode text."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return item
    return None


def loads(data: str | bytes) -> Any:
    """JSON as JSON.parse reads it, minus what it cannot round-trip: no NaN or Infinity, no
    number that overflows a double, no string with a lone UTF-16 surrogate (``"\\ud800"``:
    not Unicode text, so no Cloudflare service stores or answers it; serde_json refuses it
    too). Raises ValueError (also for nesting too deep)."""
    try:
        value = json.loads(data, parse_constant=_constant, parse_float=_finite, parse_int=_integer)
    except RecursionError:
        raise ValueError("JSON nests too deeply") from None
    maybe = (
        _MAYBE_SURROGATE_BYTES.search(data)
        if isinstance(data, bytes)
        else _MAYBE_SURROGATE.search(data)
    )
    if maybe is not None and _lone_surrogate(value) is not None:
        raise ValueError("a string holds a lone UTF-16 surrogate (not Unicode text)")
    return value


async def _read(request: Request, limit: int, too_large: Callable[[int], ApiError]) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def read_body(request: Request, spec: Body) -> Any:
    """The body as `spec` declares it; raises the route's `ApiError` when it does not fit."""
    if isinstance(spec, NoBody):
        return None
    raw = await _read(request, spec.limit, spec.too_large)
    if isinstance(spec, JsonBody):
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if spec.raw_types and media.startswith(spec.raw_types):
            return RawMedia(media, raw)
        return _json(raw, spec)
    if isinstance(spec, MultipartBody):
        try:
            return parse_multipart(raw, request.headers.get("content-type", ""))
        except ValueError as exc:
            raise spec.invalid(str(exc)) from None
    return _records(raw, request.headers.get("content-type", ""), spec)


def _json(raw: bytes, spec: JsonBody) -> Any:
    if not raw.strip() and spec.empty is not REQUIRED:
        return spec.empty
    try:
        value = loads(raw)
    except ValueError as exc:
        raise spec.invalid(f"body is not valid JSON ({exc})") from None
    if spec.object_only and not isinstance(value, dict):
        raise spec.invalid("must be a JSON object")
    return value


def _records(raw: bytes, content_type: str, spec: NdjsonBody) -> list[Any]:
    media = content_type.split(";")[0].strip().lower()
    if media == "application/json" and spec.json_key is not None:
        try:
            doc = loads(raw)
        except ValueError as exc:
            raise spec.invalid(f"body is not valid JSON ({exc})") from None
        items = doc.get(spec.json_key) if isinstance(doc, dict) else doc
        if not isinstance(items, list):
            raise spec.invalid(f'expected {{"{spec.json_key}": [...]}}')
        return items
    if media == "multipart/form-data" and spec.multipart_field is not None:
        field = _multipart_field(raw, content_type, spec.multipart_field)
        if field is None:
            raise spec.invalid(f"missing multipart field `{spec.multipart_field}`")
        raw = field
    elif media != "application/x-ndjson" and spec.unknown_type is not None:
        raise spec.unknown_type(media)
    if spec.read_plain is not None:
        spans = _plain_spans(raw)
        records = None if spans is None else spec.read_plain(raw, spans)
        if records is not None:
            return records
    out: list[Any] = []
    parse = spec.parse_line or loads
    for number, line in enumerate(_lines(raw), 1):
        if not line.strip():
            continue
        try:
            out.append(parse(line))
        except ValueError as exc:
            out.append(Unparsable(number, str(exc)))
    return out


# Where `str.splitlines` breaks an ASCII text besides "\n" (and "\r\n"), and "\x1f", which
# `str.strip` takes for blank and `bytes.strip` does not.
_OTHER_BREAKS = (b"\r", b"\x0b", b"\x0c", b"\x1c", b"\x1d", b"\x1e", b"\x1f")


def _lines(raw: bytes) -> list[str | bytes]:
    """The lines of an NDJSON body, as ``raw.decode("utf-8", "replace").splitlines()``
    reads them. An ASCII body that breaks lines only at "\n" (what clients send) is split
    as bytes instead: the same lines, without decoding and re-splitting a 100 MB body
    (JSON readers take the bytes as they are)."""
    if raw.isascii() and not any(brk in raw for brk in _OTHER_BREAKS):
        lines: list[str | bytes] = list(raw.split(b"\n"))
        if lines and not lines[-1]:
            lines.pop()  # splitlines keeps no empty line after a final break
        return lines
    return list(raw.decode("utf-8", errors="replace").splitlines())


# str.splitlines also breaks at U+0085, U+2028 and U+2029, which UTF-8 spells with these
# last bytes (and leads): a body without those bytes has none of them.
_UNICODE_BREAKS = ((b"\x85", b"\xc2"), (b"\xa8", b"\xe2\x80"), (b"\xa9", b"\xe2\x80"))


def _plain_spans(raw: bytes) -> list[tuple[int, int]] | None:
    """``(start, stop)`` of every non-empty line of a body whose lines break only at "\\n",
    so `_lines` would read the same lines, or None. (A line of other blanks is a line here;
    `NdjsonBody.read_plain` refuses it.) Found with memchr, without copying the lines."""
    if any(brk in raw for brk in _OTHER_BREAKS):
        return None
    if not raw.isascii():
        for last, lead in _UNICODE_BREAKS:
            at = raw.find(last)
            while at >= 0:
                if raw[max(0, at - len(lead)) : at] == lead:
                    return None
                at = raw.find(last, at + 1)
    spans: list[tuple[int, int]] = []
    find, start, end = raw.find, 0, len(raw)
    while start < end:
        stop = find(b"\n", start)
        if stop < 0:
            stop = end
        if stop > start:
            spans.append((start, stop))
        start = stop + 1
    return spans


def _multipart_field(body: bytes, content_type: str, field: str) -> bytes | None:
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    if not message.is_multipart():
        return None
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") == field:
            payload = part.get_payload(decode=True)
            return payload if isinstance(payload, bytes) else None
    return None
