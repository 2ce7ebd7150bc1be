"""How a route of an emulated service declares itself to the front door.

Every route is one `Endpoint`: method, path, the host it answers on (a binding's dummy host,
or None for the emulator's own address), who may call it (`auth`), what body it takes
(`body`), the shape of its answers (`shape`) and its handler. The handler gets a `Call`
whose caller is authenticated and whose body is read within its limit and parsed; it returns
a plain value (answered in the route's shape with `status`), or a `Response` of its own
(streams, binary results, extra headers), or raises `ApiError`.

Example::

    Endpoint("POST", "/query", query, host="vector-search",
             auth=BindingToken("vectorize"), body=JsonBody(bad_body), shape=Shape.VECTORIZE)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import Headers, QueryParams
from starlette.requests import Request

from cfai.local.services.frontdoor.errors import ApiError, Shape
from cfai.local.services.frontdoor.errors import too_large as _too_large
from cfai.local.services.frontdoor.tokens import BindingScope

__all__ = [
    "DEFAULT_LIMIT",
    "REQUIRED",
    "ApiToken",
    "Auth",
    "BindingToken",
    "Body",
    "Call",
    "Endpoint",
    "Handler",
    "JsonBody",
    "MultipartBody",
    "NdjsonBody",
    "NoBody",
    "Open",
    "RawMedia",
    "Unparsable",
]

# Control bodies (queries, ids, configs, patches) are small; 1 MiB leaves room for a query
# vector of 1536 numbers many times over. Routes that take bulk data declare their own.
DEFAULT_LIMIT = 1024 * 1024


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()
"""`JsonBody.empty` default: an empty body is invalid."""


# -- who may call --------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiToken:
    """``Authorization: Bearer <API token>``; with `account`, the path's ``{account_id}``
    must be the emulator's account too (refused with `wrong_account`, checked before the
    token when `account_first`)."""

    account: bool = True
    wrong_account: Callable[[Mapping[str, Any]], ApiError] | None = None
    account_first: bool = False


@dataclass(frozen=True)
class BindingToken:
    """A binding token (see `tokens`) whose scope has this binding `type`."""

    type: str


@dataclass(frozen=True)
class Open:
    """Anyone: only for answers that reveal nothing (health)."""


Auth = ApiToken | BindingToken | Open


# -- what body ------------------------------------------------------------------------------


@dataclass(frozen=True)
class NoBody:
    """The body is not read (a GET, or a body the route ignores)."""


@dataclass(frozen=True)
class JsonBody:
    """One JSON document (no NaN or Infinity, as JSON.parse). `invalid` makes the route's
    error from a reason, `too_large` its error for a body over `limit`; `empty` is the value
    of an empty body (default: invalid); `object_only` refuses anything but an object.
    A body whose media type starts with one of `raw_types` (``audio/``, ...) is not JSON:
    it is handed over as `RawMedia` (Workers AI takes audio as the request body)."""

    invalid: Callable[[str], ApiError]
    limit: int = DEFAULT_LIMIT
    too_large: Callable[[int], ApiError] = _too_large
    empty: Any = REQUIRED
    object_only: bool = False
    raw_types: tuple[str, ...] = ()


@dataclass(frozen=True)
class RawMedia:
    """A body taken as bytes, with its media type (`JsonBody.raw_types`)."""

    content_type: str
    data: bytes


@dataclass(frozen=True)
class Unparsable:
    """A line of an NDJSON body that is not JSON (the route decides: refuse or skip)."""

    line: int
    reason: str


@dataclass(frozen=True)
class NdjsonBody:
    """Records, one JSON value a line (``application/x-ndjson``, the default), or the array
    under `json_key` of a JSON document (``application/json``; None: not a records format),
    or the NDJSON of the multipart field `multipart_field` (``multipart/form-data``). The
    body is a list whose unparsable lines are `Unparsable`; `invalid` refuses a body that is
    none of those. With `unknown_type`, a media type that is none of the accepted ones is
    refused with it (given the media type); without, it is read as NDJSON. `parse_line`
    reads one NDJSON line, str or bytes (None: `body.loads`); it raises ValueError for a line that is not
    JSON, and must answer what `body.loads` answers for every line. `read_plain`, a fast path,
    reads every line of a plain body at once (the bytes and the ``(start, stop)`` of each
    non-empty line; plain: ASCII, or UTF-8 without line breaks but "\\n"): it answers what
    `parse_line` would for each line, or None to send the body the general way."""

    invalid: Callable[[str], ApiError]
    limit: int = DEFAULT_LIMIT
    too_large: Callable[[int], ApiError] = _too_large
    json_key: str | None = "vectors"
    multipart_field: str | None = None
    unknown_type: Callable[[str], ApiError] | None = None
    parse_line: Callable[[str | bytes], Any] | None = None
    read_plain: Callable[[bytes, list[tuple[int, int]]], list[Any] | None] | None = None


@dataclass(frozen=True)
class MultipartBody:
    """A ``multipart/form-data`` body, parsed byte-exact into its parts
    (`cfai.local.services.frontdoor.multipart.Part`, in order); `invalid` refuses another
    media type or a malformed body, `too_large` a body over `limit`."""

    invalid: Callable[[str], ApiError]
    limit: int = DEFAULT_LIMIT
    too_large: Callable[[int], ApiError] = _too_large


Body = NoBody | JsonBody | NdjsonBody | MultipartBody


# -- the route and the call -----------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One authenticated request with its body read and parsed."""

    request: Request
    body: Any = None
    caller: BindingScope | None = None

    @property
    def params(self) -> Mapping[str, Any]:
        return self.request.path_params

    @property
    def query(self) -> QueryParams:
        return self.request.query_params

    @property
    def headers(self) -> Headers:
        return self.request.headers

    @property
    def binding(self) -> BindingScope:
        """The binding scope of a binding route's caller (what its token grants)."""
        if self.caller is None:
            raise RuntimeError("not a binding route")
        return self.caller


Handler = Callable[[Call], Awaitable[Any]]


@dataclass(frozen=True)
class Endpoint:
    """One route of an emulated service, as the front door serves it."""

    method: str
    path: str
    handler: Handler
    auth: Auth
    shape: Shape = Shape.ENVELOPE
    body: Body = field(default_factory=NoBody)
    host: str | None = None
    status: int = 200
