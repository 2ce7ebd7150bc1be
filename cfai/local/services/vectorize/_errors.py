"""Vectorize's limits and error codes, in one place.

Every error the emulated Vectorize raises is a `ApiError(status, code, message)`.
Codes and messages marked *confirmed* were seen verbatim in public code quoting live
Cloudflare answers (``VECTOR_QUERY_ERROR (code = 40006): invalid query vector, ...``,
``vectorize.index.not_found - Index name "x" [code: 3000]``); the others are *assumed*:
picked in Cloudflare's numbering style (3xxx index management, 40xxx data plane) because no
public source shows them. Parity tests should treat assumed codes as ours to change.

=====  ======================================================  ==========  =========
code   meaning                                                 HTTP        source
=====  ======================================================  ==========  =========
3000   ``vectorize.index.not_found``                           404 (a.)    confirmed
3001   ``vectorize.index.invalid_config`` (dims, metric)       400         msg conf.
3002   ``vectorize.index.duplicate_name``                      409 (a.)    confirmed
3003   ``vectorize.index.invalid_name``                        400         assumed
3006   metadata index for the property already exists          409         assumed
3007   metadata index for the property does not exist          404         assumed
3008   more than 10 metadata indexes                           400         assumed
3009   invalid metadata index (type or property name)          400         assumed
40005  too many vectors in one call                            400         assumed
40006  query vector has the wrong dimensions                   400         confirmed
40007  too many ids (get ≤20, delete ≤100)                     400         confirmed
40008  vector id longer than 64 bytes                          400         confirmed
40009  namespace longer than 64 bytes                          400         assumed
40010  metadata larger than 10 KiB                             400         assumed
40011  invalid metadata key                                    400         assumed
40012  vector has the wrong dimensions                         400         confirmed
40013  queryById: no vector with that id                       404         assumed
1005   insert/upsert body of another content type (REST)      400         confirmed
40023  vectors body is not parsable NDJSON/JSON                400         confirmed
40024  topK above 100                                          400         assumed
40025  topK above 50 with values or all metadata               400         confirmed
40026  query body not parsable (bad field type or value)       400         confirmed
40027  invalid metadata filter                                 400         assumed
=====  ======================================================  ==========  =========

(a.) HTTP status assumed: public reports disagree on 400 vs 404 for a missing index; 404
is what the provisioning code and most clients test for.
"""

from __future__ import annotations

import re
from typing import Any

from cfai.config.models import INDEX_PRESETS
from cfai.local.services.frontdoor import ApiError

MAX_DIMENSIONS = 1536
# Confirmed: "vectorize.index.invalid_config - Dimensions must be in range: [32, 1536]".
MIN_DIMENSIONS = 32
MAX_NAME_BYTES = 64
# Cloudflare's OpenAPI `vectorize_index-name` pattern (it allows "_" as well as "-").
NAME_PATTERN = re.compile(r"[a-z]+[a-z0-9_-]*[a-z0-9]+")
MAX_ID_BYTES = 64
MAX_NAMESPACE_BYTES = 64
MAX_METADATA_BYTES = 10 * 1024
MAX_TOP_K = 100
MAX_TOP_K_WITH_DATA = 50
DEFAULT_TOP_K = 5
MAX_BATCH_BINDING = 1000
MAX_BATCH_HTTP = 5000
MAX_GET_IDS = 20
MAX_DELETE_IDS = 100
MAX_METADATA_INDEXES = 10
MAX_FILTER_BYTES = 2048
MAX_FILTER_KEY_CHARS = 512
INDEXED_STRING_BYTES = 64
MAX_LIST_COUNT = 1000
DEFAULT_LIST_COUNT = 100

METRICS = ("cosine", "euclidean", "dot-product")
METADATA_INDEX_TYPES = ("string", "number", "boolean")
# One table of presets: the config's (a preset fixes dimensions and metric).
PRESETS = INDEX_PRESETS


def not_found(name: str) -> ApiError:
    return ApiError(404, 3000, f'vectorize.index.not_found - Index name "{name}"')


def duplicate_name(name: str) -> ApiError:
    return ApiError(409, 3002, f'vectorize.index.duplicate_name - Index name "{name}"')


def invalid_config(detail: str) -> ApiError:
    return ApiError(400, 3001, f"vectorize.index.invalid_config - {detail}")


def invalid_name(detail: str) -> ApiError:
    return ApiError(400, 3003, f"vectorize.index.invalid_name - {detail}")


def bad_body(detail: str) -> ApiError:
    """The query (or ids) body does not parse into the expected shape."""
    return ApiError(400, 40026, f"Failed to parse the request body as JSON: {detail}")


def bad_vectors(operation: str, detail: str = "") -> ApiError:
    suffix = f": {detail}" if detail else ""
    return ApiError(
        400, 40023, f"failed to parse {operation} vectors request in json format{suffix}"
    )


def unknown_content_type(media: str) -> ApiError:
    """A REST insert/upsert that is neither ``application/x-ndjson`` nor multipart: public
    code quoting a live answer to an ``application/json`` ``{"vectors": [...]}`` upsert
    shows ``400 {"code": 1005, "message": "vectorize.unknown_content_type"}``; the API
    reference documents ``Content-Type: application/x-ndjson``
    (https://developers.cloudflare.com/api/resources/vectorize/subresources/indexes/methods/insert/)
    and wrangler sends multipart (workers-sdk ``packages/wrangler/src/vectorize/insert.ts``)."""
    return ApiError(400, 1005, "vectorize.unknown_content_type")


def bad_ndjson_line(operation: str, line: int, detail: str = "") -> ApiError:
    """Line `line` (0-based, as Cloudflare's Rust ``Option`` debug form shows it) of an NDJSON
    body is not a vector. Cloudflare's wording, quoted in cloudflare-typescript issue #2646:
    ``vectorize.upstream_error - failed to parse upsert vectors request in ndjson format:
    line Some(0) was not expected format``; the detail after it is the emulator's."""
    suffix = f" ({detail})" if detail else ""
    return ApiError(
        400,
        40023,
        f"vectorize.upstream_error - failed to parse {operation} vectors request in ndjson "
        f"format: line Some({line}) was not expected format{suffix}",
    )


def bad_filter(detail: str) -> ApiError:
    return ApiError(400, 40027, f"invalid metadata filter: {detail}")


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def truncate_utf8(text: str, limit: int = INDEXED_STRING_BYTES) -> str:
    """The longest well-formed UTF-8 prefix of `text` within `limit` bytes."""
    return text.encode("utf-8")[:limit].decode("utf-8", errors="ignore")


def check_name(name: Any) -> None:
    if not isinstance(name, str) or not name:
        raise invalid_name("name is required")
    if utf8_len(name) > MAX_NAME_BYTES:
        raise invalid_name(f"name must be at most {MAX_NAME_BYTES} bytes")
    if not NAME_PATTERN.fullmatch(name):
        raise invalid_name(
            "name must start with a lowercase letter, contain only lowercase letters, digits, "
            "dashes and underscores, and end with a letter or digit"
        )


def too_many_ids(limit: int, got: int) -> ApiError:
    return ApiError(400, 40007, f"too many ids in payload; max id count is {limit}, got {got}")
