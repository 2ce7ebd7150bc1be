"""Exact nearest neighbours over an index's `Snapshot`.

Scores follow Cloudflare: cosine similarity in -1..1 (higher is better), euclidean L2
distance (lower is better), dot-product stored as the *negative* dot product (lower is
better). Matches come back best first for every metric, ties broken by id.

A float32 pass (one matrix-vector product per segment, no copy of the vectors) gives every
candidate an approximate sort key; then the few vectors that can be in the top k are scored
in float64 and sorted by (score, id). "Can be" is exact, not a margin of extra candidates:
a float32 dot product of d terms is off by at most g(d)·|a|·|b|, g(d) = d·u / (1 - d·u),
u = 2^-24 (Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., §3.1), so a
vector whose float32 key is more than twice that bound behind the k-th best float32 key
cannot be in the top k, and every other one is scored exactly. The answer is the one
scoring every vector in float64 gives.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from cfai.local.services.vectorize._filters import mask as filter_mask
from cfai.local.services.vectorize._snapshot import Snapshot
from cfai.local.services.vectorize._storage import Matrix
from cfai.local.services.vectorize._wire import QueryIn

_U = 2.0**-24
# Candidate sets up to this size are scored exactly without the float32 pass.
_SMALL = 64
# Rows scored in float64 at a time (bounds the memory of a large tie).
_CHUNK = 8192
# Filter masks kept per snapshot (the oldest goes first).
_MASKS = 16
# Beyond this |vector| * |query| the float32 pass could overflow: score exactly instead.
_FLOAT32_SAFE = 1e30

Rows = npt.NDArray[np.intp]
Match = tuple[int, float]


def search(snap: Snapshot, metric: str, vector: Sequence[float], q: QueryIn) -> list[Match]:
    """The `q.top_k` best ``(slot, score)`` pairs among the vectors `q` selects."""
    n = snap.n
    keep: npt.NDArray[np.bool_] | None = None
    if q.namespace is not None:
        code = snap.ns_codes.get(q.namespace)
        if code is None:
            return []
        keep = snap.ns[:n] == code
    if q.filter is not None:
        passed = _filter_mask(snap, q)
        keep = passed if keep is None else keep & passed
    if keep is not None:
        keep &= snap.alive[:n]
    elif snap.count < n:  # free slots among the rows
        keep = snap.alive[:n]
    rows = None if keep is None else np.flatnonzero(keep)
    total = n if rows is None else int(rows.size)
    if total == 0:
        return []
    q32 = np.asarray(vector, dtype=np.float32)
    q64 = q32.astype(np.float64)
    k = min(q.top_k, total)
    qnorm = float(np.sqrt((q64 * q64).sum()))
    if total <= k + _SMALL or snap.max_norm * (snap.max_norm + qnorm) > _FLOAT32_SAFE:
        return _exact_top(snap, metric, np.arange(n) if rows is None else rows, q64, k)
    keys = _fast_keys(snap, metric, rows, q32)
    kth = float(np.partition(keys, k - 1)[k - 1])
    within = np.flatnonzero(keys <= kth + 2.0 * _bound(snap, metric, qnorm))
    return _exact_top(snap, metric, within if rows is None else rows[within], q64, k)


def _filter_mask(snap: Snapshot, q: QueryIn) -> npt.NDArray[np.bool_]:
    """Which slots pass `q.filter` (a copy: the caller may change it)."""
    key = repr(q.filter)
    mask = snap.masks.get(key)
    if mask is None:
        mask = filter_mask(q.filter or [], snap.filter_rows(), snap.columns)
        if len(snap.masks) >= _MASKS:
            snap.masks.pop(next(iter(snap.masks)))
        snap.masks[key] = mask
    return mask.copy()


def _fast_keys(snap: Snapshot, metric: str, rows: Rows | None, q32: Matrix) -> Matrix:
    """float32 sort keys, ascending = better, of every slot (or of `rows`)."""
    if rows is not None and 2 * rows.size >= snap.n:
        dots = snap.dots(q32)[rows]  # one pass over everything beats gathering most rows
    else:
        dots = snap.dots(q32, rows)
    at: slice | Rows = slice(0, snap.n) if rows is None else rows
    if metric == "cosine":
        return np.multiply(dots, snap.neg_inv[at], out=dots)
    if metric == "dot-product":
        return np.negative(dots, out=dots)
    norms = snap.norms[at]
    return norms * norms - 2.0 * dots  # |v - q|^2 - |q|^2


def _bound(snap: Snapshot, metric: str, qnorm: float) -> float:
    """An upper bound on |float32 key - exact key| (see the module docstring), with room
    for the rounding of the norms and of the key's own arithmetic."""
    d = snap.dims
    g = d * _U / (1.0 - d * _U) + 4.0 * _U
    m = snap.max_norm
    if metric == "cosine":  # -dot/|v|: the dot's error over |v|, plus |v|'s own
        return 3.0 * g * qnorm
    if metric == "dot-product":
        return 2.0 * g * m * qnorm
    return 3.0 * g * (m * m + 2.0 * m * qnorm)


def _exact(
    snap: Snapshot, metric: str, slots: Rows, q64: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """float64 scores of `slots`, each computed from its own row alone (the same value
    whichever other rows are scored with it)."""
    out = np.empty(len(slots), dtype=np.float64)
    qnorm = float(np.sqrt((q64 * q64).sum()))
    for start in range(0, len(slots), _CHUNK):
        m = snap.rows(slots[start : start + _CHUNK]).astype(np.float64)
        part = out[start : start + len(m)]
        if metric == "euclidean":
            part[:] = np.sqrt(((m - q64) ** 2).sum(axis=1))
            continue
        dots = (m * q64).sum(axis=1)
        if metric == "dot-product":
            part[:] = -dots
            continue
        denom = np.sqrt((m * m).sum(axis=1)) * qnorm
        with np.errstate(divide="ignore", invalid="ignore"):
            cos = np.where(denom > 0, dots / np.where(denom > 0, denom, 1.0), 0.0)
        part[:] = np.clip(cos, -1.0, 1.0)
    return out


def _exact_top(
    snap: Snapshot, metric: str, slots: Rows, q64: npt.NDArray[np.float64], k: int
) -> list[Match]:
    scores = _exact(snap, metric, slots, q64)
    keys = -scores if metric == "cosine" else scores
    pick = np.arange(len(slots))
    if len(slots) > k:
        pick = np.flatnonzero(keys <= np.partition(keys, k - 1)[k - 1])
    key_list, slot_list = keys.tolist(), slots.tolist()
    order = sorted(pick.tolist(), key=lambda j: (key_list[j], snap.ids[slot_list[j]] or ""))
    return [(slot_list[j], float(scores[j])) for j in order[:k]]
