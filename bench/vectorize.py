"""vectorize_query, vectorize_filtered (store search path) and vectorize_insert (REST NDJSON).

The query benches load 100k x 768 seeded vectors straight into a `VectorizeStore` (one
metadata index on ``category`` first, so a ``{"category": "c3"}`` filter selects 10%) and
time `VectorizeStore.query` -- the function both the binding and the REST routes call --
against a bare numpy cosine top-k (argpartition) over the same matrix in the same process.

The insert bench upserts INSERT_N vectors of 768 dimensions through the REST API of an
emulator process, in NDJSON batches of 1,000 encoded before each request (not timed): the
values are ``row.tolist()`` of float32 rows, the 17-digit decimals a Python client sending
numpy embeddings produces. Its baseline is the JSON parsing alone of the same bodies
(orjson, a line at a time, in this process), the floor of an emulator reading them into
Python floats; simdjson's parse of the same lines (values copied out as float64, as the
emulator's reader does) is reported beside it: the floor of the emulator as it reads them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
import orjson
import simdjson

from bench._util import Result, cpu_seconds, rss_kib, spawn, stats, stop, timed, wait_http
from cfai.local.ports import free_port
from cfai.local.services.vectorize import VectorizeStore
from cfai.local.services.vectorize._wire import VectorIn, parse_query

N, DIMS, TOP_K, CATEGORIES = 100_000, 768, 10, 10
QUERIES = 7
INSERT_N = int(os.environ.get("CFAI_BENCH_INSERT_N", "100000"))
INSERT_BATCH = 1000
DIRECT_BATCHES = 5
ACCOUNT = "0" * 32
TOKEN = "bench"


def dataset(n: int, seed: int = 7) -> npt.NDArray[np.float32]:
    return np.random.default_rng(seed).standard_normal((n, DIMS), dtype=np.float32)


def vectors(matrix: npt.NDArray[np.float32], start: int) -> list[VectorIn]:
    return [
        VectorIn(f"v{start + i:07d}", row, None, {"category": f"c{(start + i) % 10}"})
        for i, row in enumerate(matrix)
    ]


def numpy_topk(
    matrix: npt.NDArray[np.float32], norms: npt.NDArray[np.float32], q: npt.NDArray[np.float32]
) -> npt.NDArray[np.intp]:
    """Bare numpy brute force: cosine scores of every row, top k by argpartition."""
    scores = (matrix @ q) / (norms * np.linalg.norm(q))
    top = np.argpartition(-scores, TOP_K)[:TOP_K]
    return top[np.argsort(-scores[top])]


def ms(s: dict[str, float]) -> dict[str, float]:
    return {
        k: (round(v * 1000, 2) if k not in ("n", "iqr_pct") else round(v, 1)) for k, v in s.items()
    }


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
                    "bench", vectors(matrix[start : start + INSERT_BATCH], start), upsert=True
                )
            load_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            store.query("bench", parse_query({"vector": queries[0].tolist(), "topK": TOP_K}))
            first_s = time.perf_counter() - t0
            log.append(
                f"vectorize: loaded {N} vectors in {load_s:.1f}s, first query {first_s:.2f}s"
            )

            norms = np.linalg.norm(matrix, axis=1)
            it = iter(range(10**6))

            def bare() -> None:
                numpy_topk(matrix, norms, queries[next(it) % len(queries)])

            def emulated(filt: dict[str, str] | None = None) -> None:
                raw: dict[str, Any] = {
                    "vector": queries[next(it) % len(queries)].tolist(),
                    "topK": TOP_K,
                }
                if filt:
                    raw["filter"] = filt
                store.query("bench", parse_query(raw))

            # Check both paths agree before timing them.
            got = store.query("bench", parse_query({"vector": queries[1].tolist(), "topK": TOP_K}))
            want = [f"v{i:07d}" for i in numpy_topk(matrix, norms, queries[1])]
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
    return [
        Result(
            "vectorize_query",
            emu["median"] * 1000,
            base["median"] * 1000,
            "ms (p50 query latency, 100k x 768 in process)",
            "ratio <= 1.5",
            "ratio<=",
            1.5,
            {
                "emulator": ms(emu),
                "numpy": ms(base),
                "same_top10_as_numpy": agree,
                "load_s": round(load_s, 1),
                "first_query_s": round(first_s, 2),
            },
        ),
        Result(
            "vectorize_filtered",
            filtered["median"] * 1000,
            emu["median"] * 1000,
            "ms (p50 query latency, filter selects 10%)",
            "ratio <= 1.0 (vs unfiltered)",
            "ratio<=",
            1.0,
            {"filtered": ms(filtered), "unfiltered": ms(emu), "filtered_topk100_count": count},
        ),
    ]


def ndjson(batch: int) -> bytes:
    """The NDJSON body of insert batch `batch` (seeded, so the baseline parses the same)."""
    rows = np.random.default_rng(1000 + batch).standard_normal((INSERT_BATCH, DIMS), np.float32)
    start = batch * INSERT_BATCH
    return b"\n".join(
        orjson.dumps(
            {
                "id": f"v{start + i:07d}",
                "values": row.tolist(),
                "metadata": {"category": f"c{i % 10}"},
            }
        )
        for i, row in enumerate(rows)
    )


def _parse_rate(batches: int) -> float:
    """Vectors/s of orjson alone over the same NDJSON bodies, in this process."""
    spent = 0.0
    for b in range(batches):
        body = ndjson(b)
        t0 = time.perf_counter()
        for line in body.split(b"\n"):
            orjson.loads(line)
        spent += time.perf_counter() - t0
    return batches * INSERT_BATCH / spent


def _simdjson_rate(batches: int) -> float:
    """Vectors/s of simdjson alone over the same NDJSON bodies, in this process: each line
    parsed and its values copied out as float64 (what the emulator's reader does first)."""
    parser = simdjson.Parser()
    spent = 0.0
    for b in range(batches):
        body = ndjson(b)
        t0 = time.perf_counter()
        for line in body.split(b"\n"):
            doc = parser.parse(line)
            np.frombuffer(doc["values"].as_buffer(of_type="d"), dtype=np.float64)
            del doc
        spent += time.perf_counter() - t0
    return batches * INSERT_BATCH / spent


def _direct_write_rate(work: Path) -> float:
    """Vectors/s of `VectorizeStore.write` in this process: the store without HTTP/JSON."""
    store = VectorizeStore(work / "direct" / "vectorize.sqlite3")
    try:
        store.create_index("bench", dimensions=DIMS, metric="cosine")
        store.create_metadata_index("bench", "category", "string")
        rng = np.random.default_rng(5)
        batches = [
            vectors(rng.standard_normal((INSERT_BATCH, DIMS), np.float32), b * INSERT_BATCH)
            for b in range(DIRECT_BATCHES)
        ]
        t0 = time.perf_counter()
        for batch in batches:
            store.write("bench", batch, upsert=True)
        return DIRECT_BATCHES * INSERT_BATCH / (time.perf_counter() - t0)
    finally:
        store.close()


def start_emulator(work: Path, name: str) -> tuple[subprocess.Popen[bytes], str]:
    """An emulator process on the state dir `work / f"{name}-state"` (made if missing);
    (process, REST base URL of the account's indexes)."""
    port = free_port()
    state = work / f"{name}-state"
    state.mkdir(parents=True, exist_ok=True)
    proc = spawn(
        [sys.executable, "-m", "cfai.local.emulator", "--port", str(port)],
        work / f"{name}-emulator.log",
        env={
            "CFAI_EMULATOR_TOKEN": TOKEN,
            "CFAI_EMULATOR_STATE": str(state),
            "CFAI_EMULATOR_ACCOUNT": ACCOUNT,
        },
    )
    if not wait_http(f"http://127.0.0.1:{port}/__cfai/health", proc, 60):
        stop(proc)
        raise RuntimeError(f"emulator did not start; see {work / f'{name}-emulator.log'}")
    return proc, f"http://127.0.0.1:{port}/client/v4/accounts/{ACCOUNT}/vectorize/v2/indexes"


def rest(base: str) -> httpx.Client:
    return httpx.Client(base_url=base, headers={"authorization": f"Bearer {TOKEN}"}, timeout=300)


def create_index(cf: httpx.Client, name: str) -> None:
    config = {"dimensions": DIMS, "metric": "cosine"}
    cf.post(str(cf.base_url).rstrip("/"), json={"name": name, "config": config}).raise_for_status()
    body = {"propertyName": "category", "indexType": "string"}
    cf.post(f"/{name}/metadata_index/create", json=body).raise_for_status()


def insert_bench(log: list[str], work: Path) -> list[Result]:
    """Upsert INSERT_N vectors in NDJSON batches of 1000 through the REST API."""
    batches = INSERT_N // INSERT_BATCH
    proc, base = start_emulator(work, "insert")
    try:
        with rest(base) as cf:
            create_index(cf, "bench")
            rss0, cpu0 = rss_kib(proc.pid), cpu_seconds(proc.pid)
            per_batch = []
            for b in range(batches):
                body = ndjson(b)
                t0 = time.perf_counter()
                r = cf.post(
                    "/bench/upsert", content=body, headers={"content-type": "application/x-ndjson"}
                )
                per_batch.append(time.perf_counter() - t0)
                if r.status_code != 200 or not r.json()["result"]["mutationId"]:
                    raise RuntimeError(f"upsert batch {b}: {r.status_code} {r.text[:300]}")
            cpu = cpu_seconds(proc.pid) - cpu0
            query = {"vector": [0.1] * DIMS, "topK": 1}
            cf.post("/bench/query", json=query).raise_for_status()  # peak includes a query
            hwm = rss_kib(proc.pid, "VmHWM")
            count = cf.get("/bench/info").json()["result"]["vectorCount"]
    finally:
        stop(proc)
    parse = _parse_rate(min(batches, 20))
    simd = _simdjson_rate(min(batches, 20))
    direct = _direct_write_rate(work)
    rate = INSERT_N / sum(per_batch)
    raw_mib = INSERT_N * DIMS * 4 / 2**20
    delta_mib = (hwm - rss0) / 1024
    log.append(
        f"vectorize_insert: {rate:.0f} vectors/s over REST (JSON parse alone: orjson"
        f" {parse:.0f}/s, simdjson {simd:.0f}/s; store alone {direct:.0f}/s);"
        f" emulator CPU {cpu / INSERT_N * 1e6:.0f} us/vector;"
        f" peak RSS delta {delta_mib:.0f} MiB for {raw_mib:.0f} MiB of float32"
    )
    s = stats([INSERT_BATCH / t for t in per_batch])
    return [
        Result(
            "vectorize_insert",
            rate,
            parse,
            f"vectors/s (REST NDJSON upsert of {INSERT_N // 1000}k x 768, batches of 1000)",
            ">= 20000 vectors/s (baseline: orjson parsing alone of the same bodies)",
            "value>=",
            20_000.0,
            {
                "vectors": INSERT_N,
                "vectorCount": count,
                "per_batch_vectors_per_s": {k: round(v, 1) for k, v in s.items()},
                "emulator_cpu_us_per_vector": round(cpu / INSERT_N * 1e6, 1),
                "vectors_per_emulator_cpu_s": round(INSERT_N / cpu) if cpu else None,
                "store_write_alone_vectors_per_s": round(direct),
                "simdjson_parse_alone_vectors_per_s": round(simd),
            },
        ),
        Result(
            "vectorize_insert_memory",
            delta_mib,
            raw_mib,
            f"MiB (emulator peak RSS delta over the {INSERT_N // 1000}k ingest vs raw float32)",
            "ratio <= 2.0",
            "ratio<=",
            2.0,
            {"rss_before_mib": round(rss0 / 1024, 1), "peak_rss_mib": round(hwm / 1024, 1)},
        ),
    ]
