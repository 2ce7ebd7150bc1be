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
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from cfai.local.services.vectorize._filters import matches as filter_matches
from cfai.local.services.vectorize._filters import nest
from cfai.local.services.vectorize._wire import QueryIn


@dataclass(frozen=True)
class Snapshot:
    ids: list[str]
    namespaces: npt.NDArray[np.object_]
    matrix: npt.NDArray[np.float32]
    norms: npt.NDArray[np.float32]
    metadata: list[str | None]
    indexed: list[dict[str, Any]]

    @classmethod
    def build(cls, rows: Sequence[tuple[Any, ...]], dims: int) -> Snapshot:
        """From ``(id, namespace, vals, metadata, indexed)`` rows."""
        matrix = np.empty((len(rows), dims), dtype=np.float32)
        for i, row in enumerate(rows):
            matrix[i] = np.frombuffer(row[2], dtype=np.float32)
        return cls(
            ids=[r[0] for r in rows],
            namespaces=np.array([r[1] for r in rows], dtype=object),
            matrix=matrix,
            norms=np.linalg.norm(matrix, axis=1).astype(np.float32),
            metadata=[r[3] for r in rows],
            indexed=[json.loads(r[4]) for r in rows],
        )


def _scores(snap: Snapshot, metric: str, rows: npt.NDArray[np.intp], q: Any) -> Any:
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


def search(
    snap: Snapshot, metric: str, vector: Sequence[float], q: QueryIn
) -> list[dict[str, Any]]:
    """The `q.top_k` best matches, shaped as Vectorize returns them."""
    candidates = np.arange(len(snap.ids))
    if q.namespace is not None:
        candidates = candidates[snap.namespaces == q.namespace]
    if q.filter is not None:
        keep = [i for i in candidates if filter_matches(q.filter, snap.indexed[i])]
        candidates = np.asarray(keep, dtype=np.intp)
    if candidates.size == 0:
        return []
    query = np.asarray(vector, dtype=np.float32).astype(np.float64)
    scores = _scores(snap, metric, candidates, query)
    sign = -1.0 if metric == "cosine" else 1.0  # sort key ascending: best first
    # Snapshot rows are in id order and candidates ascending, so a stable sort breaks ties by id.
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
