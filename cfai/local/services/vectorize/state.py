"""The emulated Vectorize store: SQLite as the system of record, exact search in numpy.

Writes (insert, upsert, deleteByIds) are *mutations*: each gets an id and a row in
``mutations`` at once, committed before the id is returned (WAL + ``synchronous=NORMAL``
survives kill -9 of the process). With ``visibility_delay`` > 0 a mutation stays pending,
its payload stored with it, until ``created_at + delay``; every read first applies the due
mutations in order, so queries, getByIds, list and info see a write only after the delay,
like Cloudflare's eventual consistency. ``processedUpToMutation`` is the last applied one.
Without a delay a write applies in the transaction that records it.

Insert keeps an existing id (first wins, judged when the mutation applies); upsert replaces
the whole vector. Values that a vector is filterable on are computed when it is written,
from the metadata indexes that exist then (see `_filters`). Values are stored as float32,
as Vectorize stores them (see `_storage`), in blocks; each index touched since the store
opened is also held in memory (`_snapshot`), kept current by every applied mutation, and
searched exactly (`_search`); a clean close saves it beside SQLite, and the next load maps
that file while SQLite still vouches for it (`_sidecar`). Opening the file, the indexes
themselves and the snapshots they keep in memory are `_indexes.IndexStore`'s; the vector
writes and reads on top of them are here.

Example::

    store = VectorizeStore(Path(".cfai/local/vectorize.sqlite3"))
    store.create_index("docs", dimensions=384, metric="cosine")
    store.write("docs", [VectorIn("a", [0.1] * 384)], upsert=True)
    store.query("docs", parse_query({"vector": [0.1] * 384, "topK": 3}))
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np

from cfai.local.services.frontdoor import ApiError
from cfai.local.services.vectorize import _apply, _sidecar
from cfai.local.services.vectorize import _errors as E
from cfai.local.services.vectorize._apply import Batch, iso
from cfai.local.services.vectorize._filters import indexed_values, key_problem, nest
from cfai.local.services.vectorize._indexes import IndexStore
from cfai.local.services.vectorize._search import search
from cfai.local.services.vectorize._snapshot import Snapshot
from cfai.local.services.vectorize._storage import dumps, loads, read_values
from cfai.local.services.vectorize._wire import QueryIn, VectorIn

__all__ = ["VectorizeStore"]


class VectorizeStore(IndexStore):
    """All Vectorize indexes of one emulator, persisted in one SQLite file."""

    # -- indexes -------------------------------------------------------------------------

    def info(self, name: str) -> dict[str, Any]:
        """What ``describe()`` / ``GET /info`` answer."""
        self._apply_due(name)
        row = self._index_row(name)
        with self._lock:
            snap = self._cache.get(name)
            if snap is not None:
                count = snap.count
            else:
                (count,) = self._db.execute(
                    "SELECT count(*) FROM vectors WHERE index_name=?", (name,)
                ).fetchone()
        return {
            "dimensions": row[2],
            "vectorCount": count,
            "processedUpToDatetime": row[7],
            "processedUpToMutation": row[6],
        }

    # -- metadata indexes ----------------------------------------------------------------

    def metadata_indexes(self, name: str) -> dict[str, str]:
        """propertyName -> indexType of an index."""
        self._index_row(name)
        with self._lock:
            rows = self._db.execute(
                "SELECT property_name, index_type FROM metadata_indexes WHERE index_name=?"
                " ORDER BY property_name",
                (name,),
            ).fetchall()
        return dict(rows)

    def create_metadata_index(self, name: str, property_name: str, index_type: str) -> str:
        if index_type not in E.METADATA_INDEX_TYPES:
            raise ApiError(
                400, 3009, f"invalid indexType {index_type!r}; expected string, number or boolean"
            )
        problem = key_problem(property_name, dotted=True) if isinstance(property_name, str) else ""
        if problem is not None:
            raise ApiError(400, 3009, f"invalid propertyName: {problem or 'not a string'}")
        existing = self.metadata_indexes(name)
        if property_name in existing:
            raise ApiError(
                409, 3006, f"A metadata index for property {property_name} already exists"
            )
        if len(existing) >= E.MAX_METADATA_INDEXES:
            raise ApiError(400, 3008, f"too many metadata indexes; max is {E.MAX_METADATA_INDEXES}")
        with self._tx() as db:
            db.execute(
                "INSERT INTO metadata_indexes VALUES (?,?,?)", (name, property_name, index_type)
            )
            return self._record(db, name, "metadata_index_create", None, None)

    def delete_metadata_index(self, name: str, property_name: str) -> str:
        with self._tx() as db:
            self._index_row(name)
            gone = db.execute(
                "DELETE FROM metadata_indexes WHERE index_name=? AND property_name=?",
                (name, property_name),
            ).rowcount
            if not gone:
                raise ApiError(404, 3007, f"no metadata index for property {property_name!r}")
            return self._record(db, name, "metadata_index_delete", None, None)

    # -- mutations -----------------------------------------------------------------------

    def write(self, name: str, vectors: Sequence[VectorIn], *, upsert: bool) -> str:
        """Insert (first wins) or upsert (replace) a batch; returns the mutation id."""
        dims = self._index_row(name)[2]
        for vec in vectors:
            if len(vec.values) != dims:
                raise ApiError(
                    400,
                    40012,
                    f'invalid vector for id="{vec.id}", expected {dims} dimensions, '
                    f"and got {len(vec.values)} dimensions",
                )
        mindex = self.metadata_indexes(name)
        batch = Batch(
            ids=[v.id for v in vectors],
            namespaces=[v.namespace for v in vectors],
            metadata=[None if v.metadata is None else dumps(v.metadata) for v in vectors],
            indexed=[dumps(indexed_values(v.metadata, mindex)) for v in vectors],
            # float64 -> float32 rounds to nearest, once (Vectorize stores float32).
            values=np.asarray([v.values for v in vectors], dtype=np.float32).reshape(-1, dims),
        )
        kind = "upsert" if upsert else "insert"
        return self._mutate(name, kind, batch)

    def delete_by_ids(self, name: str, ids: Sequence[str]) -> str:
        self._index_row(name)
        if len(ids) > E.MAX_DELETE_IDS:
            raise E.too_many_ids(E.MAX_DELETE_IDS, len(ids))
        return self._mutate(name, "delete", list(ids))

    def _mutate(self, name: str, kind: str, change: Batch | list[str]) -> str:
        """Record a write (a `Batch`) or a delete (ids); without a visibility delay, apply it
        in the same transaction, after any older one still pending. Returns its id."""
        mid = str(uuid.uuid4())
        now = self.clock()
        if self.visibility_delay > 0:
            if isinstance(change, Batch):
                payload, vals = change.payload(), change.values.tobytes()
            else:
                payload, vals = dumps([{"id": i} for i in change]), None
            with self._tx() as db:
                db.execute(
                    "INSERT INTO mutations (id, index_name, kind, created_at, payload, vals)"
                    " VALUES (?,?,?,?,?,?)",
                    (mid, name, kind, now, payload, vals),
                )
            return mid
        with self._writing(name) as (db, snap):
            self._apply_pending(db, snap, name, now)
            db.execute(
                "INSERT INTO mutations (id, index_name, kind, created_at, applied)"
                " VALUES (?,?,?,?,1)",
                (mid, name, kind, now),
            )
            if isinstance(change, Batch):
                _apply.write(db, snap, name, change, upsert=kind == "upsert")
            else:
                _apply.delete(db, snap, name, change)
            _apply.processed(db, name, mid, now)
        if isinstance(change, Batch):
            with self._lock:
                self._checkpoints.wrote(change.values.nbytes)
        return mid

    def _record(
        self, db: sqlite3.Connection, name: str, kind: str, records: Any, vals: bytes | None
    ) -> str:
        """A mutation that changes no vectors (metadata index create/delete)."""
        mid = str(uuid.uuid4())
        now = self.clock()
        applied = int(self.visibility_delay <= 0)
        db.execute(
            "INSERT INTO mutations (id, index_name, kind, created_at, applied, payload, vals)"
            " VALUES (?,?,?,?,?,?,?)",
            (mid, name, kind, now, applied, None if records is None else dumps(records), vals),
        )
        if applied:
            # Older mutations still pending (a file last opened with a delay) apply first;
            # the snapshot is rebuilt after, rather than trusted across this transaction.
            if db.execute(
                "SELECT 1 FROM mutations WHERE index_name=? AND applied=0", (name,)
            ).fetchone():
                dropped = self._cache.pop(name, None)
                if dropped is not None:
                    _sidecar.release(dropped)
                snap = Snapshot.load(db, name, self._index_row(name)[2])
                self._apply_pending(db, snap, name, now)
            _apply.processed(db, name, mid, now)
        return mid

    def _apply_due(self, name: str) -> None:
        with self._lock:
            pending = self._db.execute(
                "SELECT 1 FROM mutations WHERE index_name=? AND applied=0 AND created_at<=?",
                (name, self.clock() - self.visibility_delay),
            ).fetchone()
            if pending:
                with self._writing(name) as (db, snap):
                    self._apply_pending(db, snap, name, self.clock())

    def _apply_pending(self, db: sqlite3.Connection, snap: Snapshot, name: str, now: float) -> None:
        rows = db.execute(
            "SELECT seq, id, kind, created_at, payload, vals FROM mutations"
            " WHERE index_name=? AND applied=0 AND created_at<=? ORDER BY seq",
            (name, now - self.visibility_delay),
        ).fetchall()
        if rows:
            _apply.apply_pending(db, snap, name, rows)

    # -- reads ---------------------------------------------------------------------------

    def get_by_ids(self, name: str, ids: Sequence[str]) -> list[dict[str, Any]]:
        """``[{id, values, metadata?, namespace?}]`` for the ids that exist, in request order."""
        dims = self._index_row(name)[2]
        if len(ids) > E.MAX_GET_IDS:
            raise E.too_many_ids(E.MAX_GET_IDS, len(ids))
        self._apply_due(name)
        wanted = list(dict.fromkeys(ids))
        with self._lock:
            rows = self._db.execute(
                "SELECT id, namespace, slot, metadata FROM vectors WHERE index_name=? AND id IN"
                f" ({','.join('?' * len(wanted))})",
                (name, *wanted),
            ).fetchall()
            snap = self._cache.get(name)
            slots = [r[2] for r in rows]
            values = (
                [snap.row(slot) for slot in slots]
                if snap is not None
                else list(read_values(self._db, name, dims, slots))
            )
        found = {r[0]: (r, v) for r, v in zip(rows, values, strict=True)}
        out = []
        for vid in wanted:
            if vid not in found:
                continue
            (_, namespace, _, metadata), vals = found[vid]
            item: dict[str, Any] = {"id": vid, "values": vals.tolist()}
            if metadata is not None:
                item["metadata"] = loads(metadata)
            if namespace is not None:
                item["namespace"] = namespace
            out.append(item)
        return out

    def query(self, name: str, q: QueryIn) -> dict[str, Any]:
        """``{count, matches}``: exact nearest neighbours, best first for every metric."""
        row = self._index_row(name)
        dims, metric = row[2], row[3]
        self._apply_due(name)
        vector = q.vector
        if vector is None:
            got = self.get_by_ids(name, [q.vector_id or ""])
            if not got:
                raise ApiError(404, 40013, f'vector with id="{q.vector_id}" not found')
            vector = got[0]["values"]
        if len(vector) != dims:
            raise ApiError(
                400,
                40006,
                f"invalid query vector, expected {dims} dimensions, "
                f"and got {len(vector)} dimensions",
            )
        with self._lock:
            snap = self._snapshot(name)
            best = search(snap, metric, vector, q)
            metadata = self._metadata(name, [snap.ids[s] or "" for s, _ in best], q)
            matches = [self._match(snap, slot, score, q, metadata) for slot, score in best]
        return {"count": len(matches), "matches": matches}

    def _metadata(self, name: str, ids: list[str], q: QueryIn) -> dict[str, str | None]:
        if q.return_metadata != "all" or not ids:
            return {}
        rows = self._db.execute(
            "SELECT id, metadata FROM vectors WHERE index_name=? AND id IN"
            f" ({','.join('?' * len(ids))})",
            (name, *ids),
        ).fetchall()
        return dict(rows)

    @staticmethod
    def _match(
        snap: Snapshot, slot: int, score: float, q: QueryIn, metadata: dict[str, str | None]
    ) -> dict[str, Any]:
        vid = snap.ids[slot] or ""
        match: dict[str, Any] = {"id": vid, "score": score}
        if q.return_values:
            match["values"] = snap.row(slot).tolist()
        if q.return_metadata == "all" and metadata.get(vid) is not None:
            match["metadata"] = loads(metadata[vid] or "null")
        elif q.return_metadata == "indexed" and snap.indexed[slot] != "{}":
            match["metadata"] = nest(loads(snap.indexed[slot]))
        namespace = snap.namespace(slot)
        if namespace is not None:
            match["namespace"] = namespace
        return match

    def list_vectors(self, name: str, count: int, cursor: str | None) -> dict[str, Any]:
        """A page of ids in id order; the cursor is the last id of the previous page."""
        self._index_row(name)
        self._apply_due(name)
        with self._lock:
            (total,) = self._db.execute(
                "SELECT count(*) FROM vectors WHERE index_name=?", (name,)
            ).fetchone()
            rows = self._db.execute(
                "SELECT id FROM vectors WHERE index_name=? AND id>? ORDER BY id LIMIT ?",
                (name, cursor or "", count + 1),
            ).fetchall()
        ids = [r[0] for r in rows[:count]]
        truncated = len(rows) > count
        return {
            "count": len(ids),
            "totalCount": total,
            "isTruncated": truncated,
            "nextCursor": ids[-1] if truncated else None,
            "cursorExpirationTimestamp": iso(self.clock() + 3600) if truncated else None,
            "vectors": [{"id": i} for i in ids],
        }
