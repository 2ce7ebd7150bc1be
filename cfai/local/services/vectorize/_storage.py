"""How Vectorize data sits in SQLite: one row per vector, values in float32 blocks.

``vectors`` keeps a vector's id, namespace, metadata, indexed values and its *slot*; the
values of slots ``b * rows + 0 .. rows - 1`` live side by side in one ``vector_blocks`` blob
(``rows`` = `block_rows`, about 1 MiB of float32), so a batch of 1,000 vectors is a few
blob writes rather than a thousand 3 KiB rows, and a restart reads an index back as a few
large blobs. A block's blob starts small and doubles up to `block_rows` rows; writes into
it go through SQLite's incremental blob I/O, which rewrites only the pages they touch. All
of it happens inside the caller's transaction, so a batch is stored whole or not at all.

Values are float32, as Vectorize stores them: "Vectorize stores and restitutes vector
dimensions as Float32; vector dimensions provided as Float64 will be converted to Float32
before being stored"
(https://developers.cloudflare.com/vectorize/best-practices/insert-vectors/#supported-vector-formats).

Files written before this layout (values in a ``vals`` column of ``vectors``) are moved
over once, when the store opens them (`migrate`).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from itertools import pairwise
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

_VECTORS_DDL = """
CREATE TABLE IF NOT EXISTS vectors (
  index_name TEXT NOT NULL, id TEXT NOT NULL, namespace TEXT, slot INTEGER NOT NULL,
  metadata TEXT, indexed TEXT NOT NULL, PRIMARY KEY (index_name, id)) WITHOUT ROWID;
"""
SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS indexes (
  name TEXT PRIMARY KEY, description TEXT NOT NULL, dimensions INTEGER NOT NULL,
  metric TEXT NOT NULL, created_on TEXT NOT NULL, modified_on TEXT NOT NULL,
  processed_mutation TEXT, processed_at TEXT);
"""
    + _VECTORS_DDL
    + """
CREATE TABLE IF NOT EXISTS vector_blocks (
  index_name TEXT NOT NULL, block INTEGER NOT NULL, vals BLOB NOT NULL,
  UNIQUE (index_name, block));
CREATE TABLE IF NOT EXISTS metadata_indexes (
  index_name TEXT NOT NULL, property_name TEXT NOT NULL, index_type TEXT NOT NULL,
  PRIMARY KEY (index_name, property_name));
CREATE TABLE IF NOT EXISTS mutations (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, index_name TEXT NOT NULL,
  kind TEXT NOT NULL, created_at REAL NOT NULL, applied INTEGER NOT NULL DEFAULT 0,
  payload TEXT, vals BLOB);
CREATE INDEX IF NOT EXISTS mutations_pending ON mutations (index_name, applied, seq);
"""
)
_BLOCK_BYTES = 1 << 20
_BIG = float(2**63)
_MIN_BLOCK_ROWS = 16

Matrix = npt.NDArray[np.float32]
Slots = npt.NDArray[np.int64]


def dumps(value: Any) -> str:
    """Compact JSON text of metadata or indexed values (orjson; the stdlib for integers
    beyond 64 bits, which orjson refuses)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def loads(text: str) -> Any:
    """What `dumps` wrote (the stdlib where orjson may have read an integer beyond 64 bits
    as a float, which it does silently)."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
    return json.loads(text) if lossy(value) else value


def lossy(node: Any) -> bool:
    """Whether orjson may have read an integer literal beyond 64 bits in `node` as a float."""
    stack = [node]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is float:
            if abs(item) >= _BIG and item.is_integer():
                return True
        elif kind is dict:
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
    return False


def block_rows(dims: int) -> int:
    """Vectors per block: about 1 MiB of float32."""
    return max(_MIN_BLOCK_ROWS, _BLOCK_BYTES // (4 * dims))


def _capacity(rows: int, limit: int) -> int:
    cap = _MIN_BLOCK_ROWS
    while cap < rows:
        cap *= 2
    return min(cap, limit)


def write_values(
    db: sqlite3.Connection, name: str, dims: int, slots: Slots, values: Matrix
) -> None:
    """Store `values[i]` at slot `slots[i]` (float32, C-contiguous rows), inside the
    caller's transaction."""
    if not len(slots):
        return
    per = block_rows(dims)
    width = 4 * dims
    order = np.argsort(slots, kind="stable")
    slots, values = slots[order], values[order]
    blocks = slots // per
    bounds = np.flatnonzero(np.diff(blocks)) + 1
    for part in np.split(np.arange(len(slots)), bounds):
        block = int(blocks[part[0]])
        local = slots[part] - block * per
        rows = values[part]
        found = db.execute(
            "SELECT rowid, length(vals) FROM vector_blocks WHERE index_name=? AND block=?",
            (name, block),
        ).fetchone()
        need = int(local[-1]) + 1
        if found is None:
            data = np.zeros((_capacity(need, per), dims), dtype=np.float32)
            data[local] = rows
            db.execute(
                "INSERT INTO vector_blocks (index_name, block, vals) VALUES (?,?,?)",
                (name, block, data.data.cast("B")),
            )
            continue
        rowid, size = found
        if size < need * width:  # doubles, so a block is rewritten a few times at most
            (old,) = db.execute("SELECT vals FROM vector_blocks WHERE rowid=?", (rowid,)).fetchone()
            grown = old + bytes(_capacity(need, per) * width - size)
            db.execute("UPDATE vector_blocks SET vals=? WHERE rowid=?", (grown, rowid))
        with db.blobopen("vector_blocks", "vals", rowid) as blob:
            for start, stop in _runs(local):
                first = int(local[start])
                blob.seek(first * width)
                blob.write(np.ascontiguousarray(rows[start:stop]).data.cast("B"))


def _runs(local: Slots) -> Iterator[tuple[int, int]]:
    """(start, stop) index ranges of `local` holding consecutive slots."""
    breaks = np.flatnonzero(np.diff(local) != 1) + 1
    edges = [0, *breaks.tolist(), len(local)]
    return pairwise(edges)


def read_values(db: sqlite3.Connection, name: str, dims: int, slots: list[int]) -> Matrix:
    """The stored values of `slots`, reading only the pages that hold them."""
    per, width = block_rows(dims), 4 * dims
    out = np.empty((len(slots), dims), dtype=np.float32)
    for i, slot in enumerate(slots):
        block, local = divmod(slot, per)
        (rowid,) = db.execute(
            "SELECT rowid FROM vector_blocks WHERE index_name=? AND block=?", (name, block)
        ).fetchone()
        with db.blobopen("vector_blocks", "vals", rowid, readonly=True) as blob:
            blob.seek(local * width)
            out[i] = np.frombuffer(blob.read(width), dtype=np.float32)
    return out


def read_blocks(db: sqlite3.Connection, name: str, dims: int) -> Iterator[tuple[int, Matrix]]:
    """(first slot, rows) of every block of an index, one block in memory at a time."""
    per = block_rows(dims)
    blocks = db.execute(
        "SELECT rowid, block FROM vector_blocks WHERE index_name=?", (name,)
    ).fetchall()
    for rowid, block in blocks:
        # Blob I/O copies the pages once; a SELECT of the column copies them twice.
        with db.blobopen("vector_blocks", "vals", rowid, readonly=True) as blob:
            vals = blob.read()
        yield block * per, np.frombuffer(vals, dtype=np.float32).reshape(-1, dims)


def drop_index(db: sqlite3.Connection, name: str) -> None:
    for table in ("vectors", "vector_blocks", "metadata_indexes", "mutations"):
        db.execute(f"DELETE FROM {table} WHERE index_name=?", (name,))


def migrate(db: sqlite3.Connection) -> None:
    """Move a file of the old layout (``vectors.vals``) to blocks; the caller holds the
    write transaction. Slots follow id order."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(vectors)")}
    if "vals" not in columns:
        return
    db.execute("ALTER TABLE vectors RENAME TO vectors_v1")
    db.execute(_VECTORS_DDL)
    for name, dims in db.execute("SELECT name, dimensions FROM indexes").fetchall():
        cursor = db.execute(
            "SELECT id, namespace, vals, metadata, indexed FROM vectors_v1"
            " WHERE index_name=? ORDER BY id",
            (name,),
        )
        slot = 0
        while rows := cursor.fetchmany(4096):
            db.executemany(
                "INSERT INTO vectors (index_name, id, namespace, slot, metadata, indexed)"
                " VALUES (?,?,?,?,?,?)",
                [(name, r[0], r[1], slot + i, r[3], r[4]) for i, r in enumerate(rows)],
            )
            values = np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float32)
            slots = np.arange(slot, slot + len(rows), dtype=np.int64)
            write_values(db, name, dims, slots, values.reshape(len(rows), dims))
            slot += len(rows)
    db.execute("DROP TABLE vectors_v1")
