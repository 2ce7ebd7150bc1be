"""Exact nearest-neighbour search over an in-memory float32 snapshot of one index.

The snapshot is built from SQLite once and dropped by the store whenever a mutation
applies, so repeated queries do not re-read the database. Scores follow Cloudflare:
cosine similarity in -1..1 (higher is better), euclidean L2 distance (lower is better),
dot-product stored as the *negative* dot product (lower is better). Matches come back best
first for every metric, ties broken by id.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from cfai.local.services.vectorize._filters import mask as filter_mask
from cfai.local.services.vectorize._filters import nest
from cfai.local.services.vectorize._wire import QueryIn

# Candidates re-scored exactly beyond top-k, so float32 rounding in the fast pass cannot
# push a true top-k match out.
_MARGIN = 32


@dataclass(frozen=True)
class Snapshot:
    ids: list[str]
    namespaces: npt.NDArray[np.object_]
    matrix: npt.NDArray[np.float32]
    norms: npt.NDArray[np.float32]
    metadata: list[str | None]
    indexed: list[dict[str, Any]]
    # Unit rows for cosine and squared norms for euclidean: the fast pass is one matmul.
    unit: npt.NDArray[np.float32] = field(
        repr=False, default_factory=lambda: np.empty((0, 0), np.float32)
    )
    sq_norms: npt.NDArray[np.float32] = field(
        repr=False, default_factory=lambda: np.empty(0, np.float32)
    )
    # Filter columns per metadata property, built on first use (see _filters.mask).
    columns: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def build(cls, rows: Sequence[tuple[Any, ...]], dims: int) -> Snapshot:
        """From ``(id, namespace, vals, metadata, indexed)`` rows."""
        matrix = np.empty((len(rows), dims), dtype=np.float32)
        for i, row in enumerate(rows):
            matrix[i] = np.frombuffer(row[2], dtype=np.float32)
        norms = np.linalg.norm(matrix, axis=1).astype(np.float32)
        safe = np.where(norms > 0, norms, 1.0).astype(np.float32)
        return cls(
            ids=[r[0] for r in rows],
            namespaces=np.array([r[1] for r in rows], dtype=object),
            matrix=matrix,
            norms=norms,
            metadata=[r[3] for r in rows],
            indexed=[json.loads(r[4]) for r in rows],
            unit=matrix / safe[:, None],
            sq_norms=norms * norms,
        )


def _scores(snap: Snapshot, metric: str, rows: npt.NDArray[np.intp], q: Any) -> Any:
    """Exact scores (float64) of `rows`."""
    m = snap.matrix[rows].astype(np.float64)
    if metric == "euclidean":
        return np.sqrt(np.maximum(((m - q) ** 2).sum(axis=1), 0.0))
    dots = m @ q
    if metric == "dot-product":
        return -dots
    denom = snap.norms[rows].astype(np.float64) * float(np.linalg.norm(q))
    with np.errstate(divide="ignore", invalid="ignore"):
        cos = np.where(denom > 0, dots / np.where(denom > 0, denom, 1.0), 0.0)
    return np.clip(cos, -1.0, 1.0)


def _fast_keys(snap: Snapshot, metric: str, rows: npt.NDArray[np.intp] | None, q: Any) -> Any:
    """Approximate sort keys (ascending = better) in float32: one matmul, no row copies
    when every row is a candidate."""
    q32 = np.asarray(q, dtype=np.float32)
    if metric == "cosine":
        m = snap.unit if rows is None else snap.unit[rows]
        return -(m @ q32)
    m = snap.matrix if rows is None else snap.matrix[rows]
    dots = m @ q32
    if metric == "dot-product":
        return -dots
    sq = snap.sq_norms if rows is None else snap.sq_norms[rows]
    return sq - 2.0 * dots


def search(
    snap: Snapshot, metric: str, vector: Sequence[float], q: QueryIn
) -> list[dict[str, Any]]:
    """The `q.top_k` best matches, shaped as Vectorize returns them."""
    keep: npt.NDArray[np.bool_] | None = None
    if q.namespace is not None:
        keep = snap.namespaces == q.namespace
    if q.filter is not None:
        passed = filter_mask(q.filter, snap.indexed, snap.columns)
        keep = passed if keep is None else keep & passed
    rows = None if keep is None else np.flatnonzero(keep)
    n = len(snap.ids) if rows is None else int(rows.size)
    if n == 0:
        return []
    query = np.asarray(vector, dtype=np.float32).astype(np.float64)
    # Fast pass over every candidate, then exact scores for the best few.
    keys = _fast_keys(snap, metric, rows, query)
    take = min(n, q.top_k + _MARGIN)
    best = np.argpartition(keys, take - 1)[:take] if take < n else np.arange(n)
    candidates = best if rows is None else rows[best]
    candidates = np.sort(candidates)  # id order, so a stable sort breaks ties by id
    scores = _scores(snap, metric, candidates, query)
    sign = -1.0 if metric == "cosine" else 1.0  # sort key ascending: best first
    order = np.argsort(sign * scores, kind="stable")
    out: list[dict[str, Any]] = []
    for j in order[: q.top_k]:
        i = int(candidates[j])
        match: dict[str, Any] = {"id": snap.ids[i], "score": float(scores[j])}
        if q.return_values:
            match["values"] = snap.matrix[i].tolist()
        if q.return_metadata == "all" and snap.metadata[i] is not None:
            match["metadata"] = json.loads(snap.metadata[i] or "null")
        elif q.return_metadata == "indexed" and snap.indexed[i]:
            match["metadata"] = nest(snap.indexed[i])
        if snap.namespaces[i] is not None:
            match["namespace"] = snap.namespaces[i]
        out.append(match)
    return out
