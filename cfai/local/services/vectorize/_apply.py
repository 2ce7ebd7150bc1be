"""Applying mutations to SQLite and to the index's snapshot, oldest first.

Insert keeps an existing id (first wins, judged when the mutation applies); upsert replaces
the whole vector, in the slot it had; delete frees ids' slots for later vectors. Each
applied mutation becomes the index's ``processedUpToMutation``. The caller holds the write
transaction and drops the snapshot if it does not commit.

A pending mutation (``visibility_delay`` > 0) keeps its vectors in the ``mutations`` row:
``payload`` is a JSON list of ``{id, namespace, metadata, indexed}`` (metadata and indexed
as JSON texts; files from before kept them as objects) and ``vals`` the float32 rows.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from cfai.local.services.vectorize._snapshot import Snapshot
from cfai.local.services.vectorize._storage import Matrix, dumps, write_values

# One thread for every store's SQLite writes: a write transaction holds its store's lock.
_WRITER = ThreadPoolExecutor(1, thread_name_prefix="vectorize-write")


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Batch:
    """Vectors to write, as stored: metadata and indexed values as JSON texts, values as
    float32 rows."""

    ids: list[str]
    namespaces: list[str | None]
    metadata: list[str | None]
    indexed: list[str]
    values: Matrix

    def payload(self) -> str:
        return json.dumps(
            [
                {"id": i, "namespace": ns, "metadata": md, "indexed": ix}
                for i, ns, md, ix in zip(
                    self.ids, self.namespaces, self.metadata, self.indexed, strict=True
                )
            ]
        )

    @classmethod
    def from_payload(cls, payload: str, vals: bytes | None, dims: int) -> Batch:
        records: list[dict[str, Any]] = json.loads(payload)

        def text(value: Any) -> str | None:
            return value if value is None or isinstance(value, str) else dumps(value)

        return cls(
            ids=[r["id"] for r in records],
            namespaces=[r["namespace"] for r in records],
            metadata=[text(r["metadata"]) for r in records],
            indexed=[text(r["indexed"]) or "{}" for r in records],
            values=np.frombuffer(vals or b"", dtype=np.float32).reshape(-1, dims),
        )


def write(db: sqlite3.Connection, snap: Snapshot, name: str, batch: Batch, *, upsert: bool) -> None:
    """Store a batch of vectors (insert or upsert) and show it in `snap`."""
    rows, slots = snap.plan_write(batch.ids, upsert)
    if not rows:
        return
    ids = [batch.ids[i] for i in rows]
    namespaces = [batch.namespaces[i] for i in rows]
    indexed = [batch.indexed[i] for i in rows]
    records = [
        (name, vid, ns, slot, batch.metadata[i], ix)
        for vid, ns, slot, i, ix in zip(ids, namespaces, slots.tolist(), rows, indexed, strict=True)
    ]
    same_order = len(rows) == len(batch.ids) and rows == list(range(len(rows)))
    values = batch.values if same_order else batch.values[rows]

    def store() -> None:
        db.executemany(
            "INSERT OR REPLACE INTO vectors (index_name, id, namespace, slot, metadata, indexed)"
            " VALUES (?,?,?,?,?,?)",
            records,
        )
        write_values(db, name, snap.dims, slots, values)

    # SQLite writes in a thread (its C code runs without the GIL) while the snapshot takes the
    # same change here; the caller commits after both, or drops the snapshot.
    stored = _WRITER.submit(store)
    try:
        snap.commit_write(ids, namespaces, indexed, values, slots)
    finally:
        stored.result()


def delete(db: sqlite3.Connection, snap: Snapshot, name: str, ids: Sequence[str]) -> None:
    slots = snap.plan_delete(ids)
    db.executemany("DELETE FROM vectors WHERE index_name=? AND id=?", [(name, vid) for vid in ids])
    snap.commit_delete(slots)


def processed(db: sqlite3.Connection, name: str, mutation: str, created_at: float) -> None:
    db.execute(
        "UPDATE indexes SET processed_mutation=?, processed_at=? WHERE name=?",
        (mutation, iso(created_at), name),
    )


def apply_pending(
    db: sqlite3.Connection, snap: Snapshot, name: str, rows: Sequence[tuple[Any, ...]]
) -> None:
    """Apply ``(seq, id, kind, created_at, payload, vals)`` pending mutation rows in order."""
    for seq, mid, kind, created_at, payload, vals in rows:
        if kind == "delete":
            delete(db, snap, name, [r["id"] for r in json.loads(payload or "[]")])
        elif kind in ("insert", "upsert"):
            batch = Batch.from_payload(payload or "[]", vals, snap.dims)
            write(db, snap, name, batch, upsert=kind == "upsert")
        db.execute("UPDATE mutations SET applied=1, payload=NULL, vals=NULL WHERE seq=?", (seq,))
        processed(db, name, mid, created_at)
