"""Embedding stand-ins: feature hashing at each model's real dimensions.

A text becomes lowercase word unigrams (weight 1), word bigrams (0.5) and character
trigrams of each word (0.25); each feature lands in one blake2b-chosen bucket with a
blake2b-chosen sign, and the vector is L2-normalised. Texts sharing words therefore score
higher under cosine than unrelated texts, so retrieval through Vectorize works.

``pooling: "cls"`` hashes with another key, so its vectors live in a different space from
``"mean"`` ones (real cls and mean vectors are not comparable either). Input longer than
the model's ``max_input_tokens`` words is truncated, as the real models truncate.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from cfai.catalog import Form, ModelSpec

from ._core import AiResult, bad_input, check_str, digest, opt_str, usage, words

_WORD = re.compile(r"\w+", re.UNICODE)


def _features(text: str, limit: int | None) -> dict[str, float]:
    toks = _WORD.findall(text.lower())
    if limit is not None:
        toks = toks[:limit]
    feats: dict[str, float] = {}
    for i, tok in enumerate(toks):
        feats["w:" + tok] = feats.get("w:" + tok, 0.0) + 1.0
        if i:
            key = f"b:{toks[i - 1]} {tok}"
            feats[key] = feats.get(key, 0.0) + 0.5
        padded = f"<{tok}>"
        for j in range(len(padded) - 2):
            key = "c:" + padded[j : j + 3]
            feats[key] = feats.get(key, 0.0) + 0.25
    return feats


@lru_cache(maxsize=1 << 17)
def _bucket(pooling: str, feat: str) -> int:
    return int.from_bytes(digest(pooling, feat), "little")


def embed(
    texts: Sequence[str], dims: int, *, pooling: str = "mean", limit: int | None = None
) -> list[list[float]]:
    """One L2-normalised vector of `dims` floats per text (an empty text gives zeros)."""
    out = np.zeros((len(texts), dims), dtype=np.float64)
    for row, text in enumerate(texts):
        for feat, weight in _features(text, limit).items():
            h = _bucket(pooling, feat)
            out[row, h % dims] += weight if (h >> 63) & 1 else -weight
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    out = np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)
    return [[round(float(x), 8) for x in vec] for vec in out]


def _texts(value: Any, field: str, max_batch: int) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not value:
        raise bad_input(field, "must be a string or a non-empty array of strings")
    if len(value) > max_batch:
        raise bad_input(field, f"at most {max_batch} texts per call, got {len(value)}")
    return [check_str(v, f"{field}[{i}]", min_len=0) for i, v in enumerate(value)]


def _count(texts: Sequence[str]) -> int:
    return sum(len(words(t)) for t in texts)


def run_embeddings(spec: ModelSpec, inputs: Mapping[str, Any]) -> AiResult:
    """``{text, pooling?}`` -> ``{shape, data, pooling}`` (bge; embeddinggemma takes no
    pooling and answers ``{shape, data}``); qwen3-embedding takes
    ``{queries?, documents?, text?, instruction?}`` and answers ``{shape, data}``."""
    assert spec.dimensions is not None and spec.max_batch is not None
    if spec.form is Form.QWEN3_EMBEDDINGS:
        return _qwen3(spec, inputs)
    if inputs.get("text") is None:
        raise bad_input("text", "required")
    texts = _texts(inputs["text"], "text", spec.max_batch)
    if not spec.poolings:
        data = embed(texts, spec.dimensions, limit=spec.max_input_tokens)
        return AiResult.json(
            {"shape": [len(data), spec.dimensions], "data": data}, usage(_count(texts))
        )
    pooling = opt_str(inputs, "pooling", spec.poolings[0], choices=spec.poolings)
    data = embed(texts, spec.dimensions, pooling=pooling, limit=spec.max_input_tokens)
    result = {"shape": [len(data), spec.dimensions], "data": data, "pooling": pooling}
    return AiResult.json(result, usage(_count(texts)))


def _qwen3(spec: ModelSpec, inputs: Mapping[str, Any]) -> AiResult:
    # Queries and documents are embedded alike so that a query finds its documents; the
    # `instruction` the real model prepends to queries is checked but does not move vectors.
    assert spec.dimensions is not None and spec.max_batch is not None
    opt_str(inputs, "instruction", "")
    texts: list[str] = []
    for field in ("queries", "documents", "text"):
        if field == "text" and inputs.get("documents") is not None:
            continue
        if inputs.get(field) is not None:
            texts += _texts(inputs[field], field, spec.max_batch)
    if not texts:
        raise bad_input("queries", "one of queries, documents or text is required")
    if len(texts) > spec.max_batch:
        raise bad_input("documents", f"at most {spec.max_batch} texts per call, got {len(texts)}")
    data = embed(texts, spec.dimensions, limit=spec.max_input_tokens)
    return AiResult.json(
        {"shape": [len(data), spec.dimensions], "data": data}, usage(_count(texts))
    )
