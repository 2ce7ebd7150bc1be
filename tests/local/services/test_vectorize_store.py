"""The Vectorize store under its API: exact search against a float64 brute force on random
data (namespaces, filters, ties, deletes), the same answers after a restart, float32
storage, exact metadata round trips, old files migrated, and acknowledged writes kept
through a kill -9."""

from __future__ import annotations

import json
import sqlite3
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.kill9 import kill_after_acks

from cfai.local.services.vectorize import VectorizeStore
from cfai.local.services.vectorize._filters import indexed_values, matches, parse_filter
from cfai.local.services.vectorize._wire import VectorIn, parse_query

METRICS = ("cosine", "euclidean", "dot-product")
FILTERS: list[dict[str, Any] | None] = [
    None,
    {"cat": "a"},
    {"cat": {"$in": ["a", "c"]}, "flag": True},
    {"n": {"$gte": 2, "$lt": 6}},
    {"cat": {"$ne": "b"}},
    {"n": {"$nin": [1, 2, 3]}},
]


class Oracle:
    """What the store should hold, and every answer scored in float64 over all of it."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[np.ndarray, str | None, dict[str, Any] | None]] = {}

    def write(self, vectors: list[VectorIn], upsert: bool) -> None:
        for v in vectors:
            if upsert or v.id not in self.rows:
                values = np.asarray(v.values, dtype=np.float32)
                self.rows[v.id] = (values, v.namespace, v.metadata)

    def delete(self, ids: list[str]) -> None:
        for i in ids:
            self.rows.pop(i, None)

    def query(self, metric: str, vector: np.ndarray, body: dict[str, Any]) -> list[Any]:
        q = np.asarray(vector, dtype=np.float32).astype(np.float64)
        conditions = parse_filter(body["filter"]) if body.get("filter") else None
        scored = []
        for vid, (values, namespace, metadata) in self.rows.items():
            if "namespace" in body and namespace != body["namespace"]:
                continue
            indexed = _indexed(metadata)
            if conditions is not None and not matches(conditions, indexed):
                continue
            m = values.astype(np.float64)
            if metric == "euclidean":
                score = float(np.sqrt(((m - q) ** 2).sum()))
            elif metric == "dot-product":
                score = -float((m * q).sum())
            else:
                denom = float(np.sqrt((m * m).sum()) * np.sqrt((q * q).sum()))
                score = float(np.clip((m * q).sum() / denom, -1, 1)) if denom > 0 else 0.0
            scored.append(((-score if metric == "cosine" else score), vid, score))
        scored.sort()
        return [(vid, score) for _, vid, score in scored[: body["topK"]]]


def _indexed(metadata: dict[str, Any] | None) -> dict[str, Any]:
    return indexed_values(metadata, {"cat": "string", "n": "number", "flag": "boolean"})


def _store(path: Path, metric: str, dims: int) -> VectorizeStore:
    store = VectorizeStore(path)
    if not store.list_indexes():
        store.create_index("ix", dims, metric)
        for prop, kind in (("cat", "string"), ("n", "number"), ("flag", "boolean")):
            store.create_metadata_index("ix", prop, kind)
    return store


def _random_vectors(rng: np.random.Generator, n: int, dims: int, prefix: str) -> list[VectorIn]:
    base = rng.standard_normal((n, dims)).astype(np.float32)
    # Near-ties: copies of a few rows, exact or one float32 step away, so the float32 pass
    # orders some candidates differently from the exact scores.
    for i in range(0, n, 7):
        base[i] = base[0] if i % 2 else np.nextafter(base[1], np.float32(np.inf))
    out = []
    for i, row in enumerate(base):
        metadata = {"cat": "abc"[int(rng.integers(3))], "n": int(rng.integers(8))}
        if rng.random() < 0.5:
            metadata["flag"] = bool(rng.random() < 0.5)
        namespace = None if rng.random() < 0.5 else "ns" + "12"[int(rng.integers(2))]
        out.append(VectorIn(f"{prefix}{i:04d}", row.tolist(), namespace, metadata))
    return out


def _check_queries(
    store: VectorizeStore, oracle: Oracle, metric: str, rng: np.random.Generator, dims: int
) -> None:
    for filt in FILTERS:
        for namespace in (None, "ns1"):
            for top_k in (1, 7, 100):
                vector = rng.standard_normal(dims).astype(np.float32)
                if rng.random() < 0.3:  # a stored vector: exact duplicates tie at the top
                    vector = next(iter(oracle.rows.values()))[0]
                body: dict[str, Any] = {"vector": vector.tolist(), "topK": top_k}
                if filt:
                    body["filter"] = filt
                if namespace:
                    body["namespace"] = namespace
                got = store.query("ix", parse_query(body))["matches"]
                want = oracle.query(metric, vector, body)
                assert [m["id"] for m in got] == [vid for vid, _ in want], (metric, body)
                for m, (_, score) in zip(got, want, strict=True):
                    assert m["score"] == pytest.approx(score, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("seed", [1, 2])
def test_search_equals_float64_brute_force_through_writes_deletes_and_restart(
    tmp_path: Path, metric: str, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    dims = 32
    path = tmp_path / "v.sqlite3"
    store = _store(path, metric, dims)
    oracle = Oracle()
    try:
        for step in range(3):
            batch = _random_vectors(rng, 300, dims, prefix=f"s{step}-")
            store.write("ix", batch, upsert=True)
            oracle.write(batch, upsert=True)
            # Insert keeps what exists; upsert replaces; both keep repeated ids' rule.
            again = _random_vectors(rng, 40, dims, prefix=f"s{step}-")
            store.write("ix", again[:20], upsert=False)
            oracle.write(again[:20], upsert=False)
            store.write("ix", again[20:] + again[20:25], upsert=True)
            oracle.write(again[20:] + again[20:25], upsert=True)
            gone = [v.id for v in batch[::5]]
            store.delete_by_ids("ix", gone[:100])
            oracle.delete(gone[:100])
            _check_queries(store, oracle, metric, rng, dims)
        assert store.info("ix")["vectorCount"] == len(oracle.rows)
    finally:
        store.close()
    reopened = _store(path, metric, dims)  # maps the file the close saved (test_vectorize_restart)
    try:
        assert reopened.info("ix")["vectorCount"] == len(oracle.rows)
        _check_queries(reopened, oracle, metric, rng, dims)
        # Freed slots are reused by new ids after the restart.
        batch = _random_vectors(rng, 50, dims, prefix="after-")
        reopened.write("ix", batch, upsert=True)
        oracle.write(batch, upsert=True)
        _check_queries(reopened, oracle, metric, rng, dims)
    finally:
        reopened.close()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    metric=st.sampled_from(METRICS),
    n=st.integers(1, 150),
    dims=st.sampled_from([32, 33]),
    seed=st.integers(0, 2**32 - 1),
    top_k=st.integers(1, 100),
)
def test_search_property_any_size(
    tmp_path_factory: pytest.TempPathFactory, metric: str, n: int, dims: int, seed: int, top_k: int
) -> None:
    rng = np.random.default_rng(seed)
    store = _store(tmp_path_factory.mktemp("p") / "v.sqlite3", metric, dims)
    oracle = Oracle()
    try:
        # Small integers: many exact ties, broken by id.
        values = rng.integers(-2, 3, size=(n, dims)).astype(np.float32)
        batch = [
            VectorIn(f"v{i}", row.tolist(), None, {"cat": "ab"[i % 2]})
            for i, row in enumerate(values)
        ]
        store.write("ix", batch, upsert=True)
        oracle.write(batch, upsert=True)
        for filt in (None, {"cat": "a"}):
            vector = rng.integers(-2, 3, size=dims).astype(np.float32)
            body: dict[str, Any] = {"vector": vector.tolist(), "topK": top_k}
            if filt:
                body["filter"] = filt
            got = store.query("ix", parse_query(body))["matches"]
            assert [m["id"] for m in got] == [v for v, _ in oracle.query(metric, vector, body)]
    finally:
        store.close()


def test_values_are_stored_as_float32_and_metadata_round_trips_exactly(tmp_path: Path) -> None:
    """Vectorize "stores and restitutes vector dimensions as Float32"
    (https://developers.cloudflare.com/vectorize/best-practices/insert-vectors/)."""
    metadata = {
        "text": 'né ☃ \U0001f600 \u2028 "quoted" \\',
        "big": 2**70,
        "neg": -(2**63),
        "f": 0.1,
        "tiny": 5e-324,
        "huge": 1.7976931348623157e308,
        "zero": -0.0,
        "nested": {"list": [1, 2.5, None, True, {"deep": "x"}], "empty": {}},
    }
    values = [0.1, 1 / 3, 1e-40, 3.4028234663852886e38, -2.0, 16777217.0, 0.0, 1] * 4
    expected = np.asarray(values, dtype=np.float32).tolist()
    assert expected[0] == 0.10000000149011612 and expected[5] == 16777216.0

    def check(store: VectorizeStore) -> None:
        (got,) = store.get_by_ids("ix", ["a"])
        assert got["values"] == expected
        assert json.dumps(got["metadata"]) == json.dumps(metadata)
        assert got["namespace"] == "ns"
        body = {"vector": values, "topK": 1, "returnValues": True, "returnMetadata": "all"}
        (match,) = store.query("ix", parse_query(body))["matches"]
        assert match["values"] == expected
        assert json.dumps(match["metadata"]) == json.dumps(metadata)

    store = _store(tmp_path / "v.sqlite3", "cosine", len(values))
    try:
        store.write("ix", [VectorIn("a", values, "ns", metadata)], upsert=True)
        check(store)
    finally:
        store.close()
    store = _store(tmp_path / "v.sqlite3", "cosine", len(values))
    try:
        check(store)  # as read back from SQLite alone
    finally:
        store.close()


def test_preload_loads_the_stored_indexes_and_stops_at_close(tmp_path: Path) -> None:
    path = tmp_path / "v.sqlite3"
    rng = np.random.default_rng(9)
    oracle = Oracle()
    store = _store(path, "cosine", 32)
    try:
        store.create_index("other", 32, "euclidean")
        batch = _random_vectors(rng, 200, 32, prefix="p")
        store.write("ix", batch, upsert=True)
        store.write("other", batch[:50], upsert=True)
        oracle.write(batch, upsert=True)
    finally:
        store.close()
    store = VectorizeStore(path)
    try:
        thread = store.preload()
        thread.join(timeout=60)
        assert not thread.is_alive()
        _check_queries(store, oracle, "cosine", rng, 32)
        near = store.query("other", parse_query({"vector": batch[3].values, "topK": 1}))
        assert near["matches"][0]["id"] == batch[3].id
    finally:
        store.close()
    store = VectorizeStore(path)
    thread = store.preload()
    store.close()  # while it may still be loading: it stops, without an error
    thread.join(timeout=60)
    assert not thread.is_alive()


_OLD_SCHEMA = """
CREATE TABLE indexes (
  name TEXT PRIMARY KEY, description TEXT NOT NULL, dimensions INTEGER NOT NULL,
  metric TEXT NOT NULL, created_on TEXT NOT NULL, modified_on TEXT NOT NULL,
  processed_mutation TEXT, processed_at TEXT);
CREATE TABLE vectors (
  index_name TEXT NOT NULL, id TEXT NOT NULL, namespace TEXT, vals BLOB NOT NULL,
  metadata TEXT, indexed TEXT NOT NULL, PRIMARY KEY (index_name, id)) WITHOUT ROWID;
CREATE TABLE metadata_indexes (
  index_name TEXT NOT NULL, property_name TEXT NOT NULL, index_type TEXT NOT NULL,
  PRIMARY KEY (index_name, property_name));
CREATE TABLE mutations (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, index_name TEXT NOT NULL,
  kind TEXT NOT NULL, created_at REAL NOT NULL, applied INTEGER NOT NULL DEFAULT 0,
  payload TEXT, vals BLOB);
"""


def test_a_file_of_the_previous_layout_is_migrated(tmp_path: Path) -> None:
    """State files written before values moved to blocks open with every vector, metadata
    and pending mutation (old payload form) intact."""
    path = tmp_path / "v.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(_OLD_SCHEMA)
    db.execute("INSERT INTO indexes VALUES ('ix', '', 4, 'cosine', 't', 't', NULL, NULL)")
    db.execute("INSERT INTO metadata_indexes VALUES ('ix', 'cat', 'string')")
    rows = [(f"v{i}", [float(i), 1.0, 0.5, -1.0]) for i in range(1, 40)]
    db.executemany(
        "INSERT INTO vectors VALUES ('ix', ?, NULL, ?, ?, ?)",
        [
            (vid, np.asarray(v, np.float32).tobytes(), json.dumps({"i": i}), '{"cat": "x"}')
            for i, (vid, v) in enumerate(rows)
        ],
    )
    record = {"id": "late", "values": None, "namespace": "n", "metadata": {"k": 1}, "indexed": {}}
    db.execute(
        "INSERT INTO mutations (id, index_name, kind, created_at, payload, vals)"
        " VALUES ('m1', 'ix', 'upsert', 0, ?, ?)",
        (json.dumps([record]), np.asarray([9, 9, 9, 9], np.float32).tobytes()),
    )
    db.commit()
    db.close()
    store = VectorizeStore(path)
    try:
        assert store.info("ix")["vectorCount"] == 40  # 39 migrated + the pending upsert
        got = store.get_by_ids("ix", ["v7", "late"])
        assert got[0] == {"id": "v7", "values": [7.0, 1.0, 0.5, -1.0], "metadata": {"i": 6}}
        assert got[1] == {
            "id": "late",
            "values": [9.0, 9.0, 9.0, 9.0],
            "metadata": {"k": 1},
            "namespace": "n",
        }
        best = store.query("ix", parse_query({"vector": [7, 1, 0.5, -1], "topK": 1}))
        assert best["matches"][0]["id"] == "v7"
        hit = store.query("ix", parse_query({"vector": [7, 1, 0.5, -1], "filter": {"cat": "x"}}))
        assert hit["count"] == 5
    finally:
        store.close()
    tables = {r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master")}
    assert "vectors_v1" not in tables and "vector_blocks" in tables


_WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from pathlib import Path
    from cfai.local.services.vectorize import VectorizeStore
    from cfai.local.services.vectorize._wire import VectorIn

    store = VectorizeStore(Path(sys.argv[1]))
    store.create_index("ix", 64, "cosine")
    rng = np.random.default_rng(3)
    for b in range(10_000):
        rows = rng.standard_normal((200, 64)).astype(np.float32)
        batch = [VectorIn(f"b{b}-{i}", r.tolist(), None, {"b": b}) for i, r in enumerate(rows)]
        store.write("ix", batch, upsert=True)
        print(b, flush=True)
    """
)


@pytest.mark.platform
def test_acknowledged_writes_survive_kill_9(tmp_path: Path) -> None:
    """A process killed with SIGKILL mid-stream of writes loses nothing it acknowledged,
    and no batch is half there."""
    path = tmp_path / "v.sqlite3"
    acked = kill_after_acks(_WRITER, path, 12)
    assert acked == list(range(12))
    rng = np.random.default_rng(3)
    store = VectorizeStore(path)
    try:
        count = store.info("ix")["vectorCount"]
        assert count % 200 == 0 and count >= 12 * 200
        for b in acked:
            rows = rng.standard_normal((200, 64)).astype(np.float32)
            got = store.get_by_ids("ix", [f"b{b}-{i}" for i in (0, 77, 199)])
            assert [g["values"] for g in got] == [rows[i].tolist() for i in (0, 77, 199)]
            assert all(g["metadata"] == {"b": b} for g in got)
        best = store.query("ix", parse_query({"vector": rows[5].tolist(), "topK": 1}))
        assert best["matches"][0]["id"] == f"b{acked[-1]}-5"
    finally:
        store.close()


def test_a_bulk_ingest_is_checkpointed_while_it_runs(tmp_path: Path) -> None:
    """Past 64 MiB of writes the WAL is copied into the database file in the background
    (not left to grow until close), and every vector reads back after a reopen."""
    path = tmp_path / "v.sqlite3"
    store = VectorizeStore(path)
    rng = np.random.default_rng(9)
    dims, batches = 1536, 12  # 6 MiB of float32 a batch, 72 MiB in all
    try:
        store.create_index("ix", dimensions=dims, metric="cosine")
        for b in range(batches):
            rows = rng.standard_normal((1000, dims)).astype(np.float32)
            store.write("ix", [VectorIn(f"b{b}-{i}", r) for i, r in enumerate(rows)], upsert=True)
        # The checkpoint runs in a thread: wait for the database file to hold the pages.
        deadline = time.monotonic() + 60
        while path.stat().st_size < 60 << 20 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert path.stat().st_size >= 60 << 20
    finally:
        store.close()
    store = VectorizeStore(path)
    try:
        assert store.info("ix")["vectorCount"] == batches * 1000
        got = store.get_by_ids("ix", ["b11-999"])
        assert np.array_equal(np.asarray(got[0]["values"], dtype=np.float32), rows[999])
    finally:
        store.close()
