"""A restart maps the file a clean close saved beside SQLite, and answers exactly as a
load from SQLite does; after a crash, a write by anything else, or a damaged file, the
restart loads from SQLite and holds exactly what was acknowledged."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pytest
from support.kill9 import kill_after_acks
from test_vectorize_store import Oracle, _check_queries, _random_vectors, _store

from cfai._files import private_dir
from cfai.local.ports import free_port
from cfai.local.processes import spawn, stop
from cfai.local.services.vectorize import VectorizeStore
from cfai.local.services.vectorize._wire import parse_query

DIMS = 32


def _saved(path: Path) -> list[Path]:
    return sorted(path.with_name(path.name + ".vectors").glob("*.vec"))


def _mapped(store: VectorizeStore) -> bool:
    """Whether the index's vectors came from the saved file (its first query loads it)."""
    store.query("ix", parse_query({"vector": [1.0] * DIMS, "topK": 1}))
    return store._cache["ix"].file is not None


def _filled(path: Path, rng: np.random.Generator, metric: str = "cosine") -> Oracle:
    """An index with writes, replacements and deletes, closed cleanly."""
    store = _store(path, metric, DIMS)
    oracle = Oracle()
    try:
        for step in range(2):
            batch = _random_vectors(rng, 400, DIMS, prefix=f"s{step}-")
            store.write("ix", batch, upsert=True)
            oracle.write(batch, upsert=True)
            gone = [v.id for v in batch[::5]]
            store.delete_by_ids("ix", gone)
            oracle.delete(gone)
        store.query("ix", parse_query({"vector": [0.5] * DIMS, "topK": 3}))  # loaded
    finally:
        store.close()
    return oracle


@pytest.mark.parametrize("metric", ["cosine", "euclidean", "dot-product"])
def test_a_restart_after_a_clean_close_answers_from_the_saved_file_as_from_sqlite(
    tmp_path: Path, metric: str
) -> None:
    rng = np.random.default_rng(7)
    path = tmp_path / "v.sqlite3"
    oracle = _filled(path, rng, metric)
    assert len(_saved(path)) == 1
    store = _store(path, metric, DIMS)
    try:
        assert _mapped(store)
        assert store.info("ix")["vectorCount"] == len(oracle.rows)
        _check_queries(store, oracle, metric, rng, DIMS)
        # Writes after a mapped load: freed slots reused, replaced rows, new rows.
        batch = _random_vectors(rng, 300, DIMS, prefix="after-")
        store.write("ix", batch, upsert=True)
        oracle.write(batch, upsert=True)
        again = _random_vectors(rng, 30, DIMS, prefix="s1-")
        store.write("ix", again, upsert=True)
        oracle.write(again, upsert=True)
        _check_queries(store, oracle, metric, rng, DIMS)
    finally:
        store.close()
    store = _store(path, metric, DIMS)  # those writes were saved too
    try:
        assert _mapped(store)
        _check_queries(store, oracle, metric, rng, DIMS)
        got = store.get_by_ids("ix", ["after-0001"])[0]
        assert got["values"] == np.asarray(batch[1].values, dtype=np.float32).tolist()
    finally:
        store.close()
    with sqlite3.connect(path) as db:  # the same state, read from SQLite alone
        db.execute("DELETE FROM vector_files")
    store = _store(path, metric, DIMS)
    try:
        assert not _mapped(store)
        _check_queries(store, oracle, metric, rng, DIMS)
    finally:
        store.close()


_WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from pathlib import Path
    from cfai.local.services.vectorize import VectorizeStore
    from cfai.local.services.vectorize._wire import VectorIn, parse_query

    store = VectorizeStore(Path(sys.argv[1]))
    store.query("ix", parse_query({"vector": [1.0] * 32, "topK": 1}))
    assert store._cache["ix"].file is not None  # mapped from the saved file
    rng = np.random.default_rng(3)
    for b in range(10_000):
        rows = rng.standard_normal((200, 32)).astype(np.float32)
        batch = [VectorIn(f"k{b}-{i}", r.tolist(), None, {"b": b}) for i, r in enumerate(rows)]
        store.write("ix", batch, upsert=True)
        print(b, flush=True)
    """
)


@pytest.mark.platform
def test_kill_9_after_a_mapped_load_restarts_from_sqlite_with_the_acknowledged_vectors(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(8)
    path = tmp_path / "v.sqlite3"
    oracle = _filled(path, rng)
    acked = kill_after_acks(_WRITER, path, 8)
    assert acked == list(range(8))
    writes = np.random.default_rng(3)
    store = _store(path, "cosine", DIMS)
    try:
        assert not _mapped(store)  # the saved file no longer matches: SQLite
        count = store.info("ix")["vectorCount"] - len(oracle.rows)
        assert count % 200 == 0 and count >= 8 * 200
        for b in acked:
            rows = writes.standard_normal((200, 32)).astype(np.float32)
            got = store.get_by_ids("ix", [f"k{b}-{i}" for i in (0, 99, 199)])
            assert [g["values"] for g in got] == [rows[i].tolist() for i in (0, 99, 199)]
        best = store.query("ix", parse_query({"vector": rows[5].tolist(), "topK": 1}))
        assert best["matches"][0]["id"] == f"k{acked[-1]}-5"
        filtered = {"vector": rows[0].tolist(), "topK": 5, "filter": {"cat": "a"}}
        want = oracle.query("cosine", rows[0], filtered)
        got_ids = [m["id"] for m in store.query("ix", parse_query(filtered))["matches"]]
        assert got_ids == [vid for vid, _ in want]  # the older vectors, as before
    finally:
        store.close()
    store = _store(path, "cosine", DIMS)  # and that close saved the state again
    try:
        assert _mapped(store)
        assert store.info("ix")["vectorCount"] == len(oracle.rows) + count
    finally:
        store.close()


def _flip(offset: Callable[[int], int]) -> Callable[[Path, Path], None]:
    def damage(file: Path, older: Path) -> None:
        data = bytearray(file.read_bytes())
        at = offset(len(data))
        data[at] ^= 0x40
        file.write_bytes(bytes(data))

    return damage


DAMAGES: dict[str, Callable[[Path, Path], None]] = {
    # The file an earlier close saved, put back in place of the current one.
    "stale": lambda file, older: shutil.copyfile(older, file),
    "truncated": lambda file, older: os.truncate(file, file.stat().st_size - 100),
    "header": _flip(lambda size: 20),
    "a vector": _flip(lambda size: (1 << 16) + 4 * DIMS * 5 + 2),
    "rows section": _flip(lambda size: size - 30),
    "empty": lambda file, older: os.truncate(file, 0),
}


@pytest.mark.parametrize("damage", DAMAGES, ids=list(DAMAGES))
def test_a_stale_or_damaged_saved_file_is_never_trusted(tmp_path: Path, damage: str) -> None:
    rng = np.random.default_rng(9)
    path = tmp_path / "v.sqlite3"
    oracle = _filled(path, rng)
    older = tmp_path / "older.vec"
    shutil.copyfile(_saved(path)[0], older)
    store = _store(path, "cosine", DIMS)
    try:
        assert _mapped(store)
        batch = _random_vectors(rng, 50, DIMS, prefix="s0-")  # replaces rows of the file
        store.write("ix", batch, upsert=True)
        oracle.write(batch, upsert=True)
    finally:
        store.close()
    (file,) = _saved(path)
    DAMAGES[damage](file, older)
    store = _store(path, "cosine", DIMS)
    try:
        assert not _mapped(store)
        assert store.info("ix")["vectorCount"] == len(oracle.rows)
        _check_queries(store, oracle, "cosine", rng, DIMS)
    finally:
        store.close()


def test_a_write_by_another_program_voids_the_saved_file(tmp_path: Path) -> None:
    """SQLite's triggers drop the stamp in the transaction of any change to the vectors."""
    rng = np.random.default_rng(10)
    path = tmp_path / "v.sqlite3"
    oracle = _filled(path, rng)
    gone = next(iter(oracle.rows))
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM vectors WHERE id=?", (gone,))
    oracle.delete([gone])
    store = _store(path, "cosine", DIMS)
    try:
        assert not _mapped(store)
        assert store.info("ix")["vectorCount"] == len(oracle.rows)
        _check_queries(store, oracle, "cosine", rng, DIMS)
    finally:
        store.close()


def test_deleting_or_resetting_an_index_removes_its_saved_file(tmp_path: Path) -> None:
    path = tmp_path / "v.sqlite3"
    _filled(path, np.random.default_rng(11))
    store = _store(path, "cosine", DIMS)
    try:
        store.delete_index("ix")
        assert _saved(path) == []
        store.create_index("ix", DIMS, "cosine")  # the same name, empty
        assert store.query("ix", parse_query({"vector": [1.0] * DIMS, "topK": 3}))["count"] == 0
    finally:
        store.close()
    _filled(path, np.random.default_rng(12))
    store = VectorizeStore(path)
    try:
        store.reset()
        assert _saved(path) == []
    finally:
        store.close()


def _emulator(state: Path, port: int) -> int:
    env = {
        "CFAI_EMULATOR_TOKEN": "restart-token",
        "CFAI_EMULATOR_ACCOUNT": "a" * 32,
        "CFAI_EMULATOR_STATE": str(state),
    }
    argv = [sys.executable, "-m", "cfai.local.emulator", "--port", str(port)]
    pid = spawn(argv, cwd=state, log=state / "emulator.log", env=env)
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/__cfai/health", timeout=2).status_code == 200:
                return pid
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            stop(pid)
            raise AssertionError((state / "emulator.log").read_text())
        time.sleep(0.05)


@pytest.mark.platform
def test_an_emulator_stopped_and_started_again_answers_from_the_saved_file(
    tmp_path: Path,
) -> None:
    """SIGTERM (what `cfai local down` sends) saves the index; the next emulator maps it
    and answers exactly as before, filters and namespaces included."""
    state = private_dir(tmp_path / "state")
    port = free_port()
    api = f"http://127.0.0.1:{port}/client/v4/accounts/{'a' * 32}/vectorize/v2/indexes"
    auth = {"authorization": "Bearer restart-token"}
    rng = np.random.default_rng(12)
    vectors = rng.standard_normal((500, DIMS)).astype(np.float32)
    body = "\n".join(
        json.dumps(
            {
                "id": f"d{i}",
                "values": v.tolist(),
                "namespace": f"n{i % 2}",
                "metadata": {"k": i % 5},
            }
        )
        for i, v in enumerate(vectors)
    )
    queries = [
        {"vector": vectors[3].tolist(), "topK": 5, "returnMetadata": "all"},
        {"vector": vectors[7].tolist(), "topK": 5, "filter": {"k": 2}},
        {"vector": vectors[9].tolist(), "topK": 5, "namespace": "n1", "returnValues": True},
    ]
    pid = _emulator(state, port)
    try:
        cf = httpx.Client(headers=auth, timeout=60)
        cf.post(api, json={"name": "docs", "config": {"dimensions": DIMS, "metric": "cosine"}})
        cf.post(
            f"{api}/docs/metadata_index/create", json={"propertyName": "k", "indexType": "number"}
        ).raise_for_status()
        cf.post(
            f"{api}/docs/upsert",
            content=body.encode(),
            headers={"content-type": "application/x-ndjson"},
        ).raise_for_status()
        before = [cf.post(f"{api}/docs/query", json=q).json()["result"] for q in queries]
        assert all(r["count"] == 5 for r in before)
    finally:
        stop(pid)
    db_path = state / "vectorize.sqlite3"
    with sqlite3.connect(db_path) as db:
        assert db.execute("SELECT index_name FROM vector_files").fetchall() == [("docs",)]
    assert len(_saved(db_path)) == 1
    pid = _emulator(state, port)
    try:
        after = [cf.post(f"{api}/docs/query", json=q).json()["result"] for q in queries]
        assert after == before
        with sqlite3.connect(db_path) as db:  # claimed by the running emulator
            assert db.execute("SELECT count(*) FROM vector_files").fetchone() == (0,)
    finally:
        stop(pid)
        cf.close()


def test_writes_pending_at_a_clean_close_apply_after_the_restart_over_the_saved_file(
    tmp_path: Path,
) -> None:
    """With a visibility delay, writes recorded but not yet applied when the store closed
    apply after the restart on top of the mapped vectors, once due."""
    rng = np.random.default_rng(13)
    path = tmp_path / "v.sqlite3"
    oracle = _filled(path, rng)
    now = [1_000_000.0]
    store = VectorizeStore(path, visibility_delay=30.0, clock=lambda: now[0])
    pending = _random_vectors(rng, 40, DIMS, prefix="late-")
    try:
        assert _mapped(store)
        store.write("ix", pending, upsert=True)
        store.delete_by_ids("ix", [next(iter(oracle.rows))])
        assert store.info("ix")["vectorCount"] == len(oracle.rows)  # not visible yet
    finally:
        store.close()
    oracle.write(pending, upsert=True)
    oracle.delete([next(iter(oracle.rows))])
    now[0] += 60
    store = VectorizeStore(path, visibility_delay=30.0, clock=lambda: now[0])
    try:
        assert store.info("ix")["vectorCount"] == len(oracle.rows)
        assert _mapped(store)
        _check_queries(store, oracle, "cosine", rng, DIMS)
    finally:
        store.close()
