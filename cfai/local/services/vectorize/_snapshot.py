"""The in-memory side of one index: every stored vector by slot, kept current as writes apply.

A slot is where a vector's values sit, in SQLite's blocks (`_storage`) and here alike. Here
they sit in segments of `SEGMENT_ROWS` float32 rows, allocated uninitialised: the kernel
backs a page only when a row is written to it, so a segment costs memory for the rows it
holds, and growing an index never copies the vectors already held (one float32 copy of
the index, plus norms, ids and the indexed-metadata texts).

After a clean close the segments come back mapped copy-on-write from the file that close
saved (`restore`, see `_sidecar`); `dirty` says which rows changed since, for the next save.

The snapshot is loaded from SQLite once (`load`), then follows the store's commits:
`plan_write` / `plan_delete` say which slots a batch takes, the store writes them inside
its transaction, and `commit_write` / `commit_delete` apply the same change here after the
transaction commits, so the snapshot never shows what SQLite does not hold.
"""

from __future__ import annotations

import mmap
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from cfai.local.services.vectorize._filters import IndexedRows
from cfai.local.services.vectorize._storage import Matrix, Slots, read_blocks

SEGMENT_ROWS = 1 << 16
CHUNK_ROWS = 1 << 10  # rows per `Snapshot.dirty` flag (a divisor of SEGMENT_ROWS)
_GATHER = 1024  # rows gathered at a time for a filtered search
_EMPTY = "{}"


class Snapshot:
    """One index in memory; see the module docstring."""

    def __init__(self, dims: int) -> None:
        self.dims = dims
        self.segments: list[Matrix] = []
        self.norms = np.zeros(0, dtype=np.float32)
        self.neg_inv = np.zeros(0, dtype=np.float32)  # -1/norm (0 for a zero vector): cosine keys
        self.alive = np.zeros(0, dtype=bool)
        self.ns = np.zeros(0, dtype=np.int32)  # code into ns_names; -1: no namespace
        self.ids: list[str | None] = []
        self.count = 0  # vectors held (slots in use)
        self._slot_of: dict[str, int] | None = {}
        self.indexed: list[str] = []
        self.ns_names: list[str] = []
        self.ns_codes: dict[str, int] = {}
        self.free: list[int] = []
        self.max_norm = 0.0
        # Filter columns per metadata property (see _filters.mask), and the masks of the
        # last filters asked (Vectorize keeps a reverse index of indexed values for the
        # same reason); both dropped on every change.
        self.columns: dict[str, Any] = {}
        self.masks: dict[str, npt.NDArray[np.bool_]] = {}
        self._texts: dict[str, str] = {_EMPTY: _EMPTY}  # one str per distinct indexed text
        self._gather: Matrix | None = None
        # The file its segments were mapped from (`_sidecar`), held locked while open, and
        # which CHUNK_ROWS rows differ from that file (all, without one).
        self.file: Path | None = None
        self.file_fd: int | None = None
        self.file_release: Callable[[], object] | None = None
        self.dirty = np.zeros(0, dtype=bool)

    @property
    def n(self) -> int:
        """Slots in use or free below the highest used one."""
        return len(self.ids)

    @property
    def slot_of(self) -> dict[str, int]:
        """id -> slot; after a load, built on first use (writes need it, queries do not)."""
        if self._slot_of is None:
            self._slot_of = {vid: i for i, vid in enumerate(self.ids) if vid is not None}
        return self._slot_of

    # -- loading ---------------------------------------------------------------------------

    @classmethod
    def load(cls, db: sqlite3.Connection, name: str, dims: int) -> Snapshot:
        """Every vector of index `name` as SQLite holds it."""
        snap = cls(dims)
        (top,) = db.execute("SELECT max(slot) FROM vectors WHERE index_name=?", (name,)).fetchone()
        n = 0 if top is None else top + 1
        snap._grow(n, segments=False)
        with ThreadPoolExecutor(1, thread_name_prefix="vectorize-memory") as pool:
            # Fresh memory costs the kernel a page fault and zeroing per page (about a
            # second per GiB on some VMs); numpy touches the segments outside the GIL, in
            # this thread, while the rows are read here.
            ready = [
                pool.submit(_touched, _segment(dims), min(SEGMENT_ROWS, n - start))
                for start in range(0, n, SEGMENT_ROWS)
            ]
            snap._load_rows(db, name)
            for first, rows in read_blocks(db, name, dims):
                rows = rows[: max(0, snap.n - first)]
                last = (first + len(rows) - 1) // SEGMENT_ROWS
                while len(snap.segments) <= last:
                    snap.segments.append(ready[len(snap.segments)].result())
                snap._put(np.arange(first, first + len(rows), dtype=np.int64), rows)
            snap.segments += [f.result() for f in ready[len(snap.segments) :]]
        snap._finish()
        return snap

    def _finish(self) -> None:
        """Norms and free slots, from the rows and liveness of a load."""
        n = self.n
        rows = [min(SEGMENT_ROWS, n - i * SEGMENT_ROWS) for i in range(len(self.segments))]
        parts = [seg[:r] for seg, r in zip(self.segments, rows, strict=True) if r > 0]
        # Two threads: numpy's einsum runs without the GIL.
        with ThreadPoolExecutor(2, thread_name_prefix="vectorize-norms") as pool:
            for i, norms in enumerate(pool.map(_norms, parts)):
                self.norms[i * SEGMENT_ROWS : i * SEGMENT_ROWS + len(norms)] = norms
        self.neg_inv[:n] = _neg_inv(self.norms[:n])
        live = self.norms[:n][self.alive[:n]]
        self.max_norm = float(live.max()) if live.size else 0.0
        self.free = np.flatnonzero(~self.alive[:n])[::-1].tolist()

    def _load_rows(self, db: sqlite3.Connection, name: str) -> None:
        """ids, indexed texts, namespaces and liveness of every stored vector."""
        cursor = db.execute(
            "SELECT id, slot, namespace, indexed FROM vectors WHERE index_name=?", (name,)
        )
        # Column-wise, in C where it can be: a million rows in about a second.
        ids = np.full(self.n, None, dtype=object)
        indexed = np.full(self.n, _EMPTY, dtype=object)
        intern = self._texts.setdefault
        while chunk := cursor.fetchmany(16384):
            # map(itemgetter) per column: zip(*chunk) over 16k rows costs ten times more.
            vids, slots, namespaces, texts = (list(map(itemgetter(i), chunk)) for i in range(4))
            at = np.fromiter(slots, dtype=np.int64, count=len(slots))
            ids[at] = vids
            indexed[at] = list(map(intern, texts, texts))
            self.alive[at] = True
            if namespaces.count(None) != len(namespaces):
                self.ns[at] = [self._code(ns) for ns in namespaces]
        self.ids, self.indexed = ids.tolist(), indexed.tolist()
        self._slot_of = None
        self.count = int(self.alive.sum())

    @classmethod
    def restore(
        cls,
        dims: int,
        segments: list[Matrix],
        *,
        ids: list[str | None],
        texts: list[str],
        codes: npt.NDArray[np.int32],
        alive: npt.NDArray[np.bool_],
        ns: npt.NDArray[np.int32],
        ns_names: list[str],
    ) -> Snapshot:
        """A snapshot over `segments` (mapped from a saved file) and its saved rows; norms
        are computed from the segments, as `load` does."""
        snap = cls(dims)
        n = len(ids)
        snap._grow(n, segments=False)
        snap.segments = segments
        snap.ids = ids
        table = np.empty(len(texts), dtype=object)
        table[:] = [snap._texts.setdefault(t, t) for t in texts]
        snap.indexed = table[codes].tolist()
        snap.alive[:n] = alive
        snap.ns[:n] = ns
        snap.ns_names = list(ns_names)
        snap.ns_codes = {name: i for i, name in enumerate(ns_names)}
        snap.count = int(snap.alive[:n].sum())
        snap._slot_of = None
        snap._finish()
        snap.dirty[:] = False
        return snap

    # -- writes ----------------------------------------------------------------------------

    def plan_write(self, ids: Sequence[str], upsert: bool) -> tuple[list[int], Slots]:
        """(batch rows to store, slot of each): upsert keeps the last of repeated ids and
        replaces an existing vector in its slot; insert keeps the first and skips ids that
        exist. New ids take free slots first. Changes nothing."""
        chosen: dict[str, int] = {}
        if upsert:
            for i, vid in enumerate(ids):
                chosen[vid] = i
        else:
            for i, vid in enumerate(ids):
                if vid not in chosen and vid not in self.slot_of:
                    chosen[vid] = i
        free, top = len(self.free), self.n
        slots = np.empty(len(chosen), dtype=np.int64)
        for j, vid in enumerate(chosen):
            slot = self.slot_of.get(vid)
            if slot is None:
                if free:
                    free -= 1
                    slot = self.free[free]
                else:
                    slot, top = top, top + 1
            slots[j] = slot
        return list(chosen.values()), slots

    def commit_write(
        self,
        ids: Sequence[str],
        namespaces: Sequence[str | None],
        indexed: Sequence[str],
        values: Matrix,
        slots: Slots,
    ) -> None:
        """Apply a `plan_write` result whose rows SQLite now holds (one entry per slot)."""
        new = sum(1 for vid in ids if vid not in self.slot_of)
        taken = new - int(np.count_nonzero(slots >= self.n))
        self.count += new
        if taken:
            del self.free[len(self.free) - taken :]
        self._grow(int(slots.max()) + 1 if len(slots) else 0)
        for vid, slot, ns, text in zip(ids, slots.tolist(), namespaces, indexed, strict=True):
            self.ids[slot] = vid
            self.slot_of[vid] = slot
            self.indexed[slot] = self._texts.setdefault(text, text)
            self.ns[slot] = self._code(ns)
        self.alive[slots] = True
        norms = _norms(values)
        self.norms[slots] = norms
        self.neg_inv[slots] = _neg_inv(norms)
        if len(norms):
            self.max_norm = max(self.max_norm, float(norms.max()))
        self._put(slots, values)
        self.columns.clear()
        self.masks.clear()

    def plan_delete(self, ids: Sequence[str]) -> list[int]:
        """The slots of the ids that exist (each once)."""
        return [self.slot_of[v] for v in dict.fromkeys(ids) if v in self.slot_of]

    def commit_delete(self, slots: Sequence[int]) -> None:
        for slot in slots:
            vid = self.ids[slot]
            if vid is not None:
                del self.slot_of[vid]
                self.count -= 1
            self.ids[slot] = None
            self.indexed[slot] = _EMPTY
            self.ns[slot] = -1
            self.alive[slot] = False
            self.free.append(slot)
        self.columns.clear()
        self.masks.clear()

    # -- reads -----------------------------------------------------------------------------

    def row(self, slot: int) -> Matrix:
        row: Matrix = self.segments[slot // SEGMENT_ROWS][slot % SEGMENT_ROWS]
        return row

    def rows(self, slots: npt.NDArray[np.intp]) -> Matrix:
        """A copy of the rows of `slots`, in that order."""
        out = np.empty((len(slots), self.dims), dtype=np.float32)
        seg = slots // SEGMENT_ROWS
        for i in np.unique(seg).tolist():
            at = np.flatnonzero(seg == i)
            out[at] = self.segments[i][slots[at] - i * SEGMENT_ROWS]
        return out

    def dots(self, q: Matrix, slots: npt.NDArray[np.intp] | None = None) -> Matrix:
        """float32 dot products of `q` with every slot below `n` (or with `slots`, sorted).
        Selected rows are gathered a chunk at a time into one small buffer, not copied out
        all at once."""
        if slots is None:
            parts = [
                seg[: min(SEGMENT_ROWS, self.n - i * SEGMENT_ROWS)] @ q
                for i, seg in enumerate(self.segments)
                if i * SEGMENT_ROWS < self.n
            ]
            if not parts:
                return np.zeros(0, dtype=np.float32)
            return parts[0] if len(parts) == 1 else np.concatenate(parts)
        out = np.empty(len(slots), dtype=np.float32)
        if self._gather is None:  # kept: a fresh buffer would be page-faulted every query
            self._gather = np.empty((_GATHER, self.dims), dtype=np.float32)
        buffer = self._gather
        edges = np.searchsorted(slots, np.arange(len(self.segments) + 1) * SEGMENT_ROWS)
        for i, (lo, hi) in enumerate(pairwise(edges.tolist())):
            for start in range(lo, hi, _GATHER):
                stop = min(hi, start + _GATHER)
                rows = buffer[: stop - start]
                local = slots[start:stop] - i * SEGMENT_ROWS
                # mode="clip": with the default, numpy buffers `out` to check bounds.
                np.take(self.segments[i], local, axis=0, out=rows, mode="clip")
                np.dot(rows, q, out=out[start:stop])
        return out

    def filter_rows(self) -> IndexedRows:
        return IndexedRows(self.indexed)

    def namespace(self, slot: int) -> str | None:
        code = int(self.ns[slot])
        return None if code < 0 else self.ns_names[code]

    # -- internals -------------------------------------------------------------------------

    def _code(self, namespace: str | None) -> int:
        if namespace is None:
            return -1
        code = self.ns_codes.get(namespace)
        if code is None:
            code = self.ns_codes[namespace] = len(self.ns_names)
            self.ns_names.append(namespace)
        return code

    def _grow(self, n: int, *, segments: bool = True) -> None:
        """Make room for slots below `n` (without `segments`, the caller adds the segments)."""
        if n <= self.n:
            return
        if n > len(self.alive):
            cap = max(n, 2 * len(self.alive), 64)
            self.norms = _resized(self.norms, cap, 0)
            self.neg_inv = _resized(self.neg_inv, cap, 0)
            self.alive = _resized(self.alive, cap, False)
            self.ns = _resized(self.ns, cap, -1)
            self.dirty = _resized(self.dirty, -(-cap // CHUNK_ROWS), True)
        while segments and len(self.segments) * SEGMENT_ROWS < n:
            self.segments.append(_segment(self.dims))
        extra = n - self.n
        self.ids.extend([None] * extra)
        self.indexed.extend([_EMPTY] * extra)

    def _put(self, slots: Slots, values: Matrix) -> None:
        self.dirty[slots // CHUNK_ROWS] = True
        if len(slots) > 1 and bool((np.diff(slots) == 1).all()):  # a run: slice copies
            start, done = int(slots[0]), 0
            while done < len(slots):
                i, off = divmod(start + done, SEGMENT_ROWS)
                take = min(len(slots) - done, SEGMENT_ROWS - off)
                self.segments[i][off : off + take] = values[done : done + take]
                done += take
            return
        seg = slots // SEGMENT_ROWS
        for i in np.unique(seg).tolist():
            at = np.flatnonzero(seg == i)
            self.segments[i][slots[at] - i * SEGMENT_ROWS] = values[at]


def _segment(dims: int) -> Matrix:
    """Room for SEGMENT_ROWS vectors in an anonymous mapping: the kernel backs a page when a
    row is first written to it. Plain pages, not the transparent huge pages numpy asks for
    on large arrays: on a fragmented host, making huge pages took seconds per GiB. (Not
    MAP_POPULATE either: Python's mmap holds the GIL while the kernel fills the mapping.)"""
    if not hasattr(mmap, "MAP_ANONYMOUS"):  # not POSIX: numpy's own allocation
        return np.empty((SEGMENT_ROWS, dims), dtype=np.float32)
    flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS
    buffer = mmap.mmap(-1, SEGMENT_ROWS * dims * 4, flags=flags)
    return np.frombuffer(buffer, dtype=np.float32).reshape(SEGMENT_ROWS, dims)


def _touched(segment: Matrix, rows: int) -> Matrix:
    """`segment` with the pages of its first `rows` faulted in (numpy's fill runs without
    the GIL)."""
    segment[:rows].fill(0)
    return segment


def _norms(rows: Matrix) -> Matrix:
    """float32 norms; a vector beyond float32's range gets inf, and its index is then
    searched in float64 only (see `_search`)."""
    with np.errstate(over="ignore", invalid="ignore"):
        norms: Matrix = np.sqrt(np.einsum("ij,ij->i", rows, rows))  # no n x d temporary
    return norms


def _neg_inv(norms: Matrix) -> Matrix:
    out = np.zeros_like(norms)
    np.divide(-1.0, norms, out=out, where=norms > 0)
    return out


def _resized(a: npt.NDArray[Any], cap: int, fill: Any) -> npt.NDArray[Any]:
    out = np.full(cap, fill, dtype=a.dtype)
    out[: len(a)] = a
    return out
