"""A restart's shortcut: each index's snapshot saved beside SQLite, trusted only while SQLite
says it is current.

Loading a million 768-dimension vectors from SQLite means reading 3 GiB of blobs into fresh
memory and rebuilding a million ids and indexed texts: seconds. Mapping a file the OS
already holds in its page cache costs next to nothing, so a clean close saves each loaded
index to ``<database>.vectors/<index>.<token>.vec``:

- a 64 KiB header (magic, JSON fields, CRC-32): the *stamp*, dims, segments, where the
  rows section starts and its CRC-32;
- the vectors, slot-major float32, `SEGMENT_ROWS` rows a segment (the tail of the last one
  a hole), so that each segment maps at a page-aligned offset;
- the rows section: liveness, namespace codes, indexed-text codes and norms per slot, then
  one JSON text with ids, distinct indexed texts and namespace names.

SQLite stays the system of record. Table ``vector_files`` names the file and stamp of an
index; the save writes and fsyncs the file (header last) before that row commits, so a
stamp in SQLite always names a complete file. A load *claims* the row (deletes it in its
transaction) before mapping the file, and triggers delete it in any transaction that
applies a mutation to the index (every write sets ``indexes.processed_mutation``; once a
batch, not once a vector) or deletes one of its ``vectors`` rows, so the row never outlives
a write: after a crash, or after another process wrote the database, the stamp is gone and
the load takes the SQLite path. The segments are mapped copy-on-write (``MAP_PRIVATE``):
writes to the snapshot never reach the file; the next clean close writes the changed rows
back, comparing first, so a save after few writes dirties few pages.

A file that fails any check (stamp, size, CRC, or the norms of its vectors against the
norms saved with them) is not used: the index loads from SQLite, and the next save
overwrites that file (its pages are likely still in the page cache). Each file is held
under an exclusive ``flock`` by the store using it, so two processes on one database never
write the same file.
"""

from __future__ import annotations

import json
import mmap
import os
import secrets
import weakref
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from cfai._files import private_dir
from cfai.local.services.vectorize._snapshot import CHUNK_ROWS, SEGMENT_ROWS, Snapshot

SCHEMA = """
CREATE TABLE IF NOT EXISTS vector_files (
  index_name TEXT PRIMARY KEY, file TEXT NOT NULL, stamp TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS vector_files_on_mutation
  AFTER UPDATE OF processed_mutation ON indexes
  BEGIN DELETE FROM vector_files WHERE index_name = NEW.name; END;
CREATE TRIGGER IF NOT EXISTS vector_files_on_delete AFTER DELETE ON vectors
  BEGIN DELETE FROM vector_files WHERE index_name = OLD.index_name; END;
"""
_MAGIC = b"CFAIVEC1"
_HEADER = 1 << 16  # a multiple of every page size Linux uses, so segments map at it
_VERSION = 1
# Relative difference allowed between a saved norm and the one recomputed from the mapped
# vectors (the same float32 sums; only a different SIMD alignment could change the last bit).
_NORM_RTOL = 1e-5

Claim = tuple[str, str]  # (file name, stamp)


def supported() -> bool:
    """Whether this platform maps files copy-on-write at `_HEADER`-aligned offsets and
    locks them with flock (POSIX; elsewhere every load reads SQLite)."""
    return (
        os.name == "posix"
        and hasattr(mmap, "MAP_PRIVATE")
        and _HEADER % mmap.ALLOCATIONGRANULARITY == 0
    )


def directory(database: Path) -> Path:
    return database.with_name(database.name + ".vectors")


def claim(db: Any, name: str) -> Claim | None:
    """Take index `name`'s stamp out of SQLite, in the caller's transaction."""
    row = db.execute("SELECT file, stamp FROM vector_files WHERE index_name=?", (name,)).fetchone()
    if row is None:
        return None
    db.execute("DELETE FROM vector_files WHERE index_name=?", (name,))
    return str(row[0]), str(row[1])


def record(db: Any, name: str, file: str, stamp: str) -> None:
    """Say, in the caller's transaction, that `file` holds index `name` as SQLite does now."""
    db.execute("INSERT OR REPLACE INTO vector_files VALUES (?,?,?)", (name, file, stamp))


def forget(db: Any, folder: Path, name: str | None) -> None:
    """Drop the stamp and files of index `name` (of every index for None)."""
    if name is None:
        db.execute("DELETE FROM vector_files")
    else:
        db.execute("DELETE FROM vector_files WHERE index_name=?", (name,))
    for path in folder.glob("*.vec" if name is None else f"{name}.*.vec"):
        path.unlink(missing_ok=True)


def prune(folder: Path, name: str, keep: str) -> None:
    """Delete the files of index `name` other than `keep` that no process holds."""
    for path in folder.glob(f"{name}.*.vec"):
        if path.name != keep and (fd := _take(path)) is not None:
            path.unlink(missing_ok=True)
            os.close(fd)


def open_snapshot(folder: Path, name: str, found: Claim, dims: int) -> Snapshot | None:
    """The snapshot the claimed file holds, its segments mapped and the file locked for
    this process; None when the file is missing, taken or fails a check (it is then left
    for a later `save` to reuse: its pages are likely in the page cache)."""
    file, stamp = found
    if not (file.startswith(f"{name}.") and file.endswith(".vec")) or "/" in file:
        return None
    fd = _take(folder / file)
    if fd is None:
        return None
    try:
        snap = _read(fd, folder / file, stamp, dims)
    except (OSError, ValueError, KeyError, TypeError):
        snap = None
    if snap is None:
        os.close(fd)
        return None
    _own(snap, folder / file, fd)
    return snap


def _take(path: Path) -> int | None:
    """An fd of `path` holding its exclusive lock, or None (missing, or another process's)."""
    import fcntl  # POSIX only: see `supported`

    try:
        fd = os.open(path, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _own(snap: Snapshot, path: Path, fd: int) -> None:
    snap.file = path
    snap.file_fd = fd
    snap.file_release = weakref.finalize(snap, os.close, fd)


def release(snap: Snapshot) -> None:
    """Close the snapshot's hold on its file (its lock ends; its mappings stay valid)."""
    if snap.file_release is not None:
        snap.file_release()
    snap.file_fd = snap.file_release = None


def _read(fd: int, path: Path, stamp: str, dims: int) -> Snapshot | None:
    head = _header(os.pread(fd, _HEADER, 0))
    n, segments = int(head["n"]), int(head["segments"])
    width = 4 * dims
    rows_at = _HEADER + segments * SEGMENT_ROWS * width
    if (
        head["stamp"] != stamp
        or head["dims"] != dims
        or head["segment_rows"] != SEGMENT_ROWS
        or not 0 <= n <= segments * SEGMENT_ROWS
        or segments != -(-n // SEGMENT_ROWS)
        or head["rows_at"] != rows_at
        or os.fstat(fd).st_size != rows_at + head["rows_bytes"]
    ):
        return None
    body = os.pread(fd, head["rows_bytes"], rows_at)
    if len(body) != head["rows_bytes"] or zlib.crc32(body) != head["rows_crc"]:
        return None
    alive = np.frombuffer(body, dtype=np.uint8, count=n).astype(bool)
    at = n
    ns = np.frombuffer(body, dtype=np.int32, count=n, offset=_pad(at))
    at = _pad(at) + 4 * n
    codes = np.frombuffer(body, dtype=np.int32, count=n, offset=at)
    at += 4 * n
    norms = np.frombuffer(body, dtype=np.float32, count=n, offset=at)
    at += 4 * n
    rows = orjson.loads(body[at:])
    # Mapped through a descriptor of its own (mmap keeps a duplicate of it): the lock held
    # on `fd` then ends when the store closes, whatever still refers to the segments.
    mapping_fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        if os.fstat(mapping_fd).st_ino != os.fstat(fd).st_ino:
            return None
        seg_bytes = SEGMENT_ROWS * width
        mapped = [
            np.frombuffer(
                mmap.mmap(
                    mapping_fd,
                    seg_bytes,
                    flags=mmap.MAP_PRIVATE,
                    prot=mmap.PROT_READ | mmap.PROT_WRITE,
                    offset=_HEADER + i * seg_bytes,
                ),
                dtype=np.float32,
            ).reshape(SEGMENT_ROWS, dims)
            for i in range(segments)
        ]
    finally:
        os.close(mapping_fd)
    snap = Snapshot.restore(
        dims,
        mapped,
        ids=rows["ids"],
        texts=rows["texts"],
        codes=codes,
        alive=alive,
        ns=ns,
        ns_names=rows["ns_names"],
    )
    if not _same(snap.norms[:n], norms):
        return None
    return snap


def _same(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> bool:
    with np.errstate(invalid="ignore", over="ignore"):
        return bool(np.allclose(a, b, rtol=_NORM_RTOL, atol=0.0, equal_nan=True))


def _header(page: bytes) -> dict[str, Any]:
    if len(page) != _HEADER or page[:8] != _MAGIC:
        raise ValueError("not a vectors file")
    size = int.from_bytes(page[8:12], "little")
    text = page[12 : 12 + size]
    if len(text) != size or int.from_bytes(page[12 + size : 16 + size], "little") != zlib.crc32(
        text
    ):
        raise ValueError("damaged header")
    head: dict[str, Any] = json.loads(text)
    if head.get("version") != _VERSION:
        raise ValueError("another version")
    return head


def _pad(n: int) -> int:
    return -(-n // 4) * 4


def save(folder: Path, name: str, snap: Snapshot) -> tuple[str, str]:
    """Write `snap` to its file: the one it was mapped from, else a file of the index no
    process holds (left by a crash; its pages are likely cached), else a new one. Rows that
    changed since the mapping (every row, for a snapshot loaded from SQLite) are compared
    with the file's and written where they differ; then the rows section, then the header,
    each fsynced. Returns (file name, stamp) for `record`."""
    private_dir(folder)
    if snap.file_fd is None:
        for path in sorted(folder.glob(f"{name}.*.vec")):
            fd = _take(path)
            if fd is not None:
                _own(snap, path, fd)
                break
        else:
            path = folder / f"{name}.{secrets.token_hex(8)}.vec"
            flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
            os.close(os.open(path, flags, 0o600))
            taken = _take(path)
            if taken is None:  # another store adopted it first
                raise OSError(f"{path}: taken by another process")
            _own(snap, path, taken)
    assert snap.file is not None and snap.file_fd is not None
    fd = snap.file_fd
    n, dims = snap.n, snap.dims
    width = 4 * dims
    segments = -(-n // SEGMENT_ROWS)
    rows_at = _HEADER + segments * SEGMENT_ROWS * width
    os.pwrite(fd, bytes(_HEADER), 0)  # no valid header until the rest is on disk
    size = os.fstat(fd).st_size
    old = np.empty((CHUNK_ROWS, dims), dtype=np.float32)
    for chunk in np.flatnonzero(snap.dirty[: -(-n // CHUNK_ROWS)]).tolist():
        first = chunk * CHUNK_ROWS
        local = first % SEGMENT_ROWS
        block = snap.segments[first // SEGMENT_ROWS][local : local + min(CHUNK_ROWS, n - first)]
        at = _HEADER + first * width
        if at + block.nbytes <= size:  # unchanged rows stay clean pages: nothing to fsync
            held = old[: len(block)]
            if os.preadv(fd, [held.data], at) == block.nbytes and np.array_equal(held, block):
                continue
        os.pwrite(fd, block.tobytes(), at)
    body = _rows_section(snap)
    os.pwrite(fd, body, rows_at)
    os.ftruncate(fd, rows_at + len(body))
    os.fsync(fd)
    stamp = secrets.token_hex(16)
    head = {
        "version": _VERSION,
        "stamp": stamp,
        "dims": dims,
        "n": n,
        "segments": segments,
        "segment_rows": SEGMENT_ROWS,
        "rows_at": rows_at,
        "rows_bytes": len(body),
        "rows_crc": zlib.crc32(body),
    }
    text = json.dumps(head).encode()
    page = _MAGIC + len(text).to_bytes(4, "little") + text + zlib.crc32(text).to_bytes(4, "little")
    os.pwrite(fd, page, 0)
    os.fsync(fd)
    _sync_dir(folder)
    snap.dirty[:] = False
    return snap.file.name, stamp


def _rows_section(snap: Snapshot) -> bytes:
    n = snap.n
    texts: dict[str, int] = {}
    codes = np.fromiter(
        (texts.setdefault(t, len(texts)) for t in snap.indexed), dtype=np.int32, count=n
    )
    alive = snap.alive[:n].astype(np.uint8).tobytes()
    rows = {"ids": snap.ids, "texts": list(texts), "ns_names": snap.ns_names}
    return b"".join(
        [
            alive + bytes(_pad(n) - n),
            snap.ns[:n].astype(np.int32).tobytes(),
            codes.tobytes(),
            snap.norms[:n].astype(np.float32).tobytes(),
            orjson.dumps(rows),
        ]
    )


def _sync_dir(folder: Path) -> None:
    """fsync the folder, so a new file's name is as durable as its contents."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
