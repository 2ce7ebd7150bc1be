"""vectorize_query, vectorize_filtered (store search path) and vectorize_insert (REST NDJSON).

The query benches load 100k x 768 seeded vectors straight into a `VectorizeStore` (one
metadata index on ``category`` first, so a ``{"category": "c3"}`` filter selects 10%) and
time `VectorizeStore.query` -- the function both the binding and the REST routes call --
against a bare numpy cosine top-k (argpartition) over the same matrix in the same process.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt

from bench._util import Result, rss_kib, spawn, stats, stop, timed, wait_http
from cfai.local.ports import free_port
from cfai.local.services.vectorize import VectorizeStore
from cfai.local.services.vectorize._wire import VectorIn, parse_query
from cfai.provision.rest import CloudflareClient

N, DIMS, TOP_K, CATEGORIES = 100_000, 768, 10, 10
QUERIES = 7
INSERT_N, INSERT_BATCH = 10_000, 1000
DIRECT_BATCHES = 3
ACCOUNT = "0" * 32


def dataset(n: int, seed: int = 7) -> npt.NDArray[np.float32]:
    return np.random.default_rng(seed).standard_normal((n, DIMS), dtype=np.float32)


def _vectors(matrix: npt.NDArray[np.float32], start: int) -> list[VectorIn]:
    return [
        VectorIn(f"v{start + i:07d}", row.tolist(), None, {"category": f"c{(start + i) % 10}"})
        for i, row in enumerate(matrix)
    ]


def _numpy_topk(
    matrix: npt.NDArray[np.float32], norms: npt.NDArray[np.float32], q: npt.NDArray[np.float32]
) -> npt.NDArray[np.intp]:
    scores = (matrix @ q) / (norms * np.linalg.norm(q))
    top = np.argpartition(-scores, TOP_K)[:TOP_K]
    return top[np.argsort(-scores[top])]


def query_benches(log: list[str]) -> list[Result]:
    matrix = dataset(N)
    queries = dataset(QUERIES + 1, seed=11)
    with tempfile.TemporaryDirectory(prefix="cfai-bench-") as tmp:
        store = VectorizeStore(Path(tmp) / "vectorize.sqlite3")
        try:
            store.create_index("bench", dimensions=DIMS, metric="cosine")
            store.create_metadata_index("bench", "category", "string")
            t0 = time.perf_counter()
            for start in range(0, N, INSERT_BATCH):
                store.write(
                    "bench", _vectors(matrix[start : start + INSERT_BATCH], start), upsert=True
                )
            load_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            store.query("bench", parse_query({"vector": queries[0].tolist(), "topK": TOP_K}))
            snapshot_s = time.perf_counter() - t0
            log.append(
                f"vectorize: loaded {N} vectors in {load_s:.1f}s, snapshot {snapshot_s:.1f}s"
            )

            norms = np.linalg.norm(matrix, axis=1)
            it = iter(range(10**6))

            def bare() -> None:
                _numpy_topk(matrix, norms, queries[next(it) % len(queries)])

            def emulated(filt: dict[str, str] | None = None) -> None:
                raw = {"vector": queries[next(it) % len(queries)].tolist(), "topK": TOP_K}
                if filt:
                    raw["filter"] = filt
                store.query("bench", parse_query(raw))

            # Check both paths agree before timing them.
            got = store.query("bench", parse_query({"vector": queries[1].tolist(), "topK": TOP_K}))
            want = [f"v{i:07d}" for i in _numpy_topk(matrix, norms, queries[1])]
            agree = [m["id"] for m in got["matches"]] == want

            base = stats(timed(bare, repeat=QUERIES * 3, warmup=2))
            emu = stats(timed(emulated, repeat=QUERIES, warmup=1))
            filtered = stats(timed(lambda: emulated({"category": "c3"}), repeat=QUERIES, warmup=1))
            count = store.query(
                "bench",
                parse_query(
                    {"vector": queries[2].tolist(), "topK": 100, "filter": {"category": "c3"}}
                ),
            )["count"]
        finally:
            store.close()
    ms = 1000.0
    return [
        Result(
            "vectorize_query",
            emu["median"] * ms,
            base["median"] * ms,
            "ms (p50 query latency)",
            "ratio <= 1.5",
            "ratio<=",
            1.5,
            {
                "emulator": _ms(emu),
                "numpy": _ms(base),
                "same_top10_as_numpy": agree,
                "load_s": round(load_s, 1),
                "first_query_snapshot_s": round(snapshot_s, 1),
            },
        ),
        Result(
            "vectorize_filtered",
            filtered["median"] * ms,
            emu["median"] * ms,
            "ms (p50 query latency, filter selects 10%)",
            "ratio <= 1.0 (vs unfiltered)",
            "ratio<=",
            1.0,
            {"filtered": _ms(filtered), "unfiltered": _ms(emu), "filtered_topk100_count": count},
        ),
    ]


def _ms(s: dict[str, float]) -> dict[str, float]:
    return {
        k: (round(v * 1000, 2) if k not in ("n", "iqr_pct") else round(v, 1)) for k, v in s.items()
    }


def _direct_write_rate(matrix: npt.NDArray[np.float32], work: Path) -> float:
    """Vectors/s of `VectorizeStore.write` in this process: the store without HTTP/NDJSON."""
    store = VectorizeStore(work / "direct" / "vectorize.sqlite3")
    try:
        store.create_index("bench", dimensions=DIMS, metric="cosine")
        store.create_metadata_index("bench", "category", "string")
        batches = [
            _vectors(matrix[s : s + INSERT_BATCH], s)
            for s in range(0, DIRECT_BATCHES * INSERT_BATCH, INSERT_BATCH)
        ]
        t0 = time.perf_counter()
        for batch in batches:
            store.write("bench", batch, upsert=True)
        return DIRECT_BATCHES * INSERT_BATCH / (time.perf_counter() - t0)
    finally:
        store.close()


def insert_bench(log: list[str], work: Path) -> list[Result]:
    """Upsert INSERT_N vectors in batches of 1000 through `CloudflareClient` to the emulator."""
    matrix = dataset(INSERT_N, seed=13)
    batches = [
        [
            {"id": f"v{s + i:07d}", "values": row.tolist(), "metadata": {"category": f"c{i % 10}"}}
            for i, row in enumerate(matrix[s : s + INSERT_BATCH])
        ]
        for s in range(0, INSERT_N, INSERT_BATCH)
    ]
    port = free_port()
    state = work / "insert-state"
    state.mkdir(parents=True, exist_ok=True)
    proc = spawn(
        [sys.executable, "-m", "cfai.local.emulator", "--port", str(port)],
        work / "insert-emulator.log",
        env={
            "CFAI_EMULATOR_TOKEN": "bench",
            "CFAI_EMULATOR_STATE": str(state),
            "CFAI_EMULATOR_ACCOUNT": ACCOUNT,
        },
    )
    try:
        if not wait_http(f"http://127.0.0.1:{port}/__cfai/health", proc, 30):
            raise RuntimeError(f"emulator did not start; see {work / 'insert-emulator.log'}")
        base_url = f"http://127.0.0.1:{port}/client/v4"
        with CloudflareClient(
            base_url, token="bench", account_id=ACCOUNT, max_retries=0, timeout=120
        ) as cf:
            cf.vectorize.create_index("bench", dimensions=DIMS, metric="cosine")
            cf.vectorize.create_metadata_index("bench", "category", "string")
            rss0 = rss_kib(proc.pid)
            per_batch = []
            t0 = time.perf_counter()
            for batch in batches:
                b0 = time.perf_counter()
                cf.vectorize.upsert("bench", batch)
                per_batch.append(time.perf_counter() - b0)
            total = time.perf_counter() - t0
            # One query makes the index searchable (snapshot built): count it in the peak.
            cf.vectorize.query("bench", matrix[0].tolist(), top_k=1)
            hwm = rss_kib(proc.pid, "VmHWM")
            info = cf.vectorize.info("bench")
    finally:
        stop(proc)
    direct = _direct_write_rate(matrix, work)
    raw_mib = INSERT_N * DIMS * 4 / 2**20
    delta_mib = (hwm - rss0) / 1024
    rate = INSERT_N / total
    log.append(f"vectorize_insert: {rate:.0f} vectors/s, peak RSS delta {delta_mib:.0f} MiB")
    s = stats([INSERT_BATCH / t for t in per_batch])
    return [
        Result(
            "vectorize_insert",
            rate,
            direct,
            "vectors/s (REST NDJSON upsert, batches of 1000)",
            ">= 20000 vectors/s (baseline: in-process VectorizeStore.write, same vectors)",
            "value>=",
            20_000.0,
            {
                "vectors": INSERT_N,
                "per_batch_vectors_per_s": {k: round(v, 1) for k, v in s.items()},
                "vectorCount": info.get("vectorCount"),
            },
        ),
        Result(
            "vectorize_insert_memory",
            delta_mib,
            raw_mib,
            "MiB (emulator peak RSS delta vs raw float32)",
            "ratio <= 2.0",
            "ratio<=",
            2.0,
            {"rss_before_mib": round(rss0 / 1024, 1), "peak_rss_mib": round(hwm / 1024, 1)},
        ),
    ]
