"""Reading a plain NDJSON batch of vectors with simdjson: the fast path of `_wire`.

A Vectorize batch is mostly numbers: 1,000 lines of 768 decimals each. orjson reads them
into Python floats that `_wire` then turns into one float64 buffer a vector; simdjson
(https://github.com/TkTech/pysimdjson) parses a line into its tape and copies the ``values``
array straight into a float64 buffer (``Array.as_buffer``), without a Python object per
number: about twice as fast.

Only lines of the usual shape take this path: an object whose ``values`` is the line's only
array (``as_buffer`` flattens nested arrays, so ``[[1], 2]`` would read as ``[1, 2]``), with
no repeated key (simdjson's lookup finds the first, JSON.parse keeps the last). For those,
the record is the one `parse_vector_line` gives, with the values already a float64 array.
Anything else, including every line simdjson refuses, makes the whole body go the general
way (`read_plain` answers None), so its verdict and wording, line numbers included, stay
the general path's own.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import simdjson

__all__ = ["read_plain"]

# A parser reuses its buffers from line to line; one a thread, as a document must not be
# parsed while another thread holds proxies into the last one.
_local = threading.local()
_OBJECT = ord("{")


def _parser() -> simdjson.Parser:
    parser: simdjson.Parser | None = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = simdjson.Parser()
    return parser


def read_plain(raw: bytes, spans: Sequence[tuple[int, int]]) -> list[dict[str, Any]] | None:
    """The records of the lines ``raw[start:stop]`` of a plain NDJSON body, ``values`` as a
    float64 array; None as soon as one line is not of the usual shape (see the module)."""
    parser = _parser()
    view = memoryview(raw)
    records: list[dict[str, Any]] = []
    for start, stop in spans:
        record = _record(parser, raw, view, start, stop)
        if record is None:
            return None
        records.append(record)
    return records


def _record(
    parser: simdjson.Parser, raw: bytes, view: memoryview, start: int, stop: int
) -> dict[str, Any] | None:
    if raw[start] != _OBJECT:
        return None
    first = raw.find(b"[", start, stop)
    if first < 0 or raw.find(b"[", first + 1, stop) >= 0:
        return None
    # Proxies into the document must be gone before the next parse: every one of them is
    # local to this call.
    try:
        doc = parser.parse(view[start:stop])
        if type(doc) is not simdjson.Object:  # a "{" that does not open the document
            return None
        keys = list(doc.keys())
        if len(set(keys)) != len(keys):
            return None
        record: dict[str, Any] = {}
        for key in keys:
            value = doc[key]
            if key == "values" and type(value) is simdjson.Array:
                buffer = value.as_buffer(of_type="d")  # TypeError unless all numbers
                record[key] = np.frombuffer(buffer, dtype=np.float64)
            elif type(value) is simdjson.Object:
                record[key] = value.as_dict()
            elif type(value) is simdjson.Array:
                return None
            else:
                record[key] = value
        return record
    except (ValueError, RuntimeError, TypeError, KeyError):
        # simdjson's refusals (ValueError, RuntimeError for an integer past 64 bits) and a
        # values array that is not all numbers: the general path gives the verdict.
        return None
