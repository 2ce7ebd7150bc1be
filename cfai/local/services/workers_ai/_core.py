"""Shared pieces of the Workers AI stand-ins: the result and error types, input checks,
tokens and a stable hash.

Tokens are whitespace-separated words everywhere (prompt, completion, `max_tokens`): a real
tokenizer gives roughly 1.3 tokens per English word, so counts here run low but stay
consistent between a call and its usage numbers.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import ClientDisconnect
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from cfai.local.services.frontdoor import JSON, ApiError

MAX_CONTENT_CHARS = 131_072  # prompt / message content limit of text generation models


class LocalChunks(Iterator[bytes]):
    """A stream made in this process, every chunk at once and without I/O (a stand-in
    model's). A response pulls it on the event loop (`streamed`): Starlette moves each
    chunk of a plain iterator through a worker thread (tens of microseconds a chunk, and
    40 threads shared by every stream at once)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)

    def rest(self) -> bytes:
        """Every chunk not yet read, as one."""
        return b"".join(self._chunks)

    def __iter__(self) -> LocalChunks:
        return self

    def __next__(self) -> bytes:
        return next(self._chunks)


def stream_response(chunks: Iterator[bytes], headers: Mapping[str, str]) -> StreamingResponse:
    """`chunks` on the wire. Local ones are pulled on the event loop (`_pulled`) and sent
    without Starlette's disconnect listener, which costs a task group, a second task and a
    cancel scope a response (more than such a stream itself) to stop a long stream early: a
    local one is two writes, dropped by the server if the client has gone. Others (a remote
    model's, read from the network) are iterated in worker threads."""
    if isinstance(chunks, LocalChunks):
        return _LocalStream(_pulled(chunks), headers=headers)
    return StreamingResponse(chunks, headers=headers)


class _LocalStream(StreamingResponse):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # What Starlette does itself for a server on ASGI 2.4 (uvicorn's h11 says 2.3).
        try:
            await self.stream_response(send)
        except OSError:
            raise ClientDisconnect() from None


async def _pulled(chunks: LocalChunks) -> AsyncIterator[bytes]:
    # Two writes: the first event at once, then every later one (each token, the usage
    # event, [DONE]) together. They were all made at the same moment, so holding none back
    # is what a model this fast would send; one write an event made every hop after this one
    # (workerd, the Worker's code, the router, the client) handle each event as a chunk of
    # its own, most of the CPU a stream cost.
    first = next(chunks, None)
    if first is None:
        return
    yield first
    # The other streams' turn: each gets its first bytes out before any stream's rest.
    await asyncio.sleep(0)
    rest = chunks.rest()
    if rest:
        yield rest


@dataclass(frozen=True)
class AiResult:
    """What a model run produced, in the form the real service sends it.

    `content_type` is exactly ``application/json``, ``text/event-stream``, ``image/png``,
    ``image/jpeg`` or ``audio/mpeg``. JSON results carry both `body` (the bare JSON bytes) and
    `result` (the parsed value, which REST envelopes); streams carry `chunks` (SSE events,
    the last one ``data: [DONE]``); binary results carry `body`. `usage` has
    ``prompt_tokens``, ``completion_tokens`` and ``total_tokens`` for gateway logs.
    """

    content_type: str
    body: bytes | None = None
    chunks: Iterator[bytes] | None = None
    usage: Mapping[str, int] | None = None
    result: Any = None

    @classmethod
    def json(cls, result: Any, usage: Mapping[str, int] | None = None) -> AiResult:
        data = json.dumps(result, separators=(",", ":"), allow_nan=False).encode()
        return cls(content_type=JSON, body=data, usage=usage, result=result)


class AiError(ApiError):
    """A Workers AI failure: HTTP `status`, Workers AI `internal_code` (also `code`, as on
    every `ApiError`) and `message`. The user is at fault for every code raised here (bad
    model name or inputs), never the emulator. On the binding it answers
    ``{"internalCode", "name", "description"}`` (`Shape.AI`), over REST the v4 envelope.

    Example::

        raise AiError(400, 5007, "No such model @cf/x/y or task")
    """

    def __init__(self, status: int, internal_code: int, message: str) -> None:
        super().__init__(status, internal_code, message)
        self.internal_code = internal_code


Runner = Callable[[str, Mapping[str, Any]], AiResult]
"""`WorkersAIService.run` as routes and other services use it."""

Quick = Callable[[str, Mapping[str, Any]], bool]
"""`WorkersAIService.quick` as routes and other services use it."""

# The largest request body whose run a route may make on the event loop (`on_loop`): a text
# stand-in's work grows with the prompt, and a long one is better off in a worker thread,
# where the event loop still gets its turns.
QUICK_BODY = 64 * 1024


def on_loop(quick: Quick | None, headers: Mapping[str, str], model: str, inputs: Any) -> bool:
    """Whether a route runs `model` on `inputs` right on the event loop rather than in a
    worker thread: `quick` says the run does no I/O, and the request's declared body (its
    ``content-length``) is at most `QUICK_BODY`."""
    size = headers.get("content-length") or ""
    small = size.isdigit() and int(size) <= QUICK_BODY
    return small and quick is not None and isinstance(inputs, Mapping) and quick(model, inputs)


def no_such_model(model: str) -> AiError:
    return AiError(400, 5007, f"No such model {model} or task")


def bad_input(field: str, why: str) -> AiError:
    """3003 naming the field; wording follows Cloudflare's "Request is missing headers or
    body: {what}" template."""
    return AiError(400, 3003, f"Request is missing headers or body: {field}: {why}")


def too_large(what: str) -> AiError:
    return AiError(413, 3006, f"Request is too large: {what}")


def body_too_large(limit: int) -> AiError:
    """The front door's 413 for an AI route's body over `limit` bytes."""
    return too_large(f"body over {limit} bytes")


def bad_body(why: str) -> AiError:
    """The front door's refusal of an AI route's body that is not a JSON object."""
    return bad_input("body", why)


def invalid_base64(field: str, kind: str) -> AiError:
    return AiError(400, 5004, f"Invalid data type for base64 input: {kind} (field {field})")


def wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


def words(text: str) -> list[str]:
    return text.split()


def usage(prompt: int, completion: int = 0) -> dict[str, int]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def digest(*parts: str | bytes, size: int = 8) -> bytes:
    """blake2b over the parts (each length-prefixed): stable across processes and runs."""
    h = hashlib.blake2b(digest_size=size)
    for part in parts:
        raw = part.encode() if isinstance(part, str) else part
        h.update(len(raw).to_bytes(8, "little"))
        h.update(raw)
    return h.digest()


def seed_of(*parts: str | bytes) -> int:
    return int.from_bytes(digest(*parts), "little")


# --- input checks: each returns the value or raises 3003 naming the field -----------------


def req_str(
    inputs: Mapping[str, Any], key: str, *, min_len: int = 1, max_len: int = MAX_CONTENT_CHARS
) -> str:
    if key not in inputs or inputs[key] is None:
        raise bad_input(key, "required")
    return check_str(inputs[key], key, min_len=min_len, max_len=max_len)


def opt_str(
    inputs: Mapping[str, Any], key: str, default: str, *, choices: tuple[str, ...] = ()
) -> str:
    value = inputs.get(key)
    if value is None:
        return default
    text = check_str(value, key, min_len=0)
    if choices and text not in choices:
        raise bad_input(key, f"must be one of {', '.join(choices)}")
    return text


def check_str(value: Any, field: str, *, min_len: int = 1, max_len: int = MAX_CONTENT_CHARS) -> str:
    if not isinstance(value, str):
        raise bad_input(field, "must be a string")
    if len(value) < min_len:
        raise bad_input(field, f"must be at least {min_len} characters")
    if len(value) > max_len:
        raise bad_input(field, f"must be at most {max_len} characters")
    return value


def opt_int(
    inputs: Mapping[str, Any], key: str, default: int, lo: int, hi: int | None = None
) -> int:
    value = inputs.get(key)
    if value is None:
        return default
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise bad_input(key, "must be an integer")
    if value < lo or (hi is not None and value > hi):
        raise bad_input(
            key, f"must be between {lo} and {hi}" if hi is not None else f"must be at least {lo}"
        )
    return value


def opt_num(inputs: Mapping[str, Any], key: str, default: float, lo: float, hi: float) -> float:
    value = inputs.get(key)
    if value is None:
        return default
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise bad_input(key, "must be a number")
    if not lo <= value <= hi:
        raise bad_input(key, f"must be between {lo:g} and {hi:g}")
    return float(value)


def opt_bool(inputs: Mapping[str, Any], key: str, default: bool = False) -> bool:
    value = inputs.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise bad_input(key, "must be a boolean")
    return value


def b64decode(value: Any, field: str) -> bytes:
    """Strict base64 (standard alphabet, padding optional; a data: URL prefix is tolerated)."""
    if not isinstance(value, str):
        raise invalid_base64(field, type(value).__name__)
    text = value.split(",", 1)[1] if value.startswith("data:") else value
    text = "".join(text.split())
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise invalid_base64(field, "string is not valid base64") from None


def byte_array(value: Any, field: str) -> bytes:
    """A uint8 array (the older models' binary input)."""
    if not isinstance(value, list) or not all(
        isinstance(b, int) and not isinstance(b, bool) and 0 <= b <= 255 for b in value
    ):
        raise bad_input(field, "must be an array of integers 0-255")
    return bytes(value)
