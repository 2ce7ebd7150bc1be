"""vectorize_binding_insert: a Worker's ``env.VECTORIZE.upsert`` of 1,000 vectors on workerd.

A `custom` Worker (below) makes 1,000 seeded 768-dimension Float32Array vectors per request
and upserts them through its real Vectorize binding: workerd's ``vectorize-api`` module
turns them into NDJSON (``JSON.stringify`` of ``Array.from(values)``: 17-digit decimals) and
sends them to the emulator's binding route. Two requests are in flight at a time, so
workerd builds one batch while the emulator stores the other, as a Worker fed by a queue
would. The baseline is the same Worker doing everything but the call (``?dry=1``: make the
vectors and serialise them as the binding does), on the same platform in the same run.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from bench._util import Result, cpu_seconds, rss_kib
from bench.platform import _project_copy
from cfai.local import LocalPlatform

BIND_N = int(os.environ.get("CFAI_BENCH_BINDING_N", "50000"))
BATCH, DIMS, STREAMS = 1000, 768, 2

INGEST_JS = """\
// cfai bench: upsert `n` seeded vectors through env.VECTORIZE (or only build them: ?dry=1).
function build(batch, n, dims) {
  let s = (Math.imul(batch + 1, 2654435761) >>> 0) || 1;
  const vectors = [];
  for (let i = 0; i < n; i++) {
    const values = new Float32Array(dims);
    for (let j = 0; j < dims; j++) {
      s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
      values[j] = s / 2147483648 - 1;
    }
    vectors.push({ id: `w${batch}-${i}`, values, metadata: { category: `c${i % 10}` } });
  }
  return vectors;
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/health") return Response.json({ worker: "ingest" });
    const batch = Number(url.searchParams.get("batch") ?? 0);
    const vectors = build(batch, Number(url.searchParams.get("n") ?? 1000), 768);
    if (url.searchParams.get("dry") === "1") {
      // What the binding does before its fetch (workerd's vectorize-api.ts toNdJson).
      const body = vectors
        .map((v) => JSON.stringify({ ...v, values: Array.from(v.values) }))
        .join("\\n");
      return Response.json({ bytes: body.length });
    }
    const result = await env.VECTORIZE.upsert(vectors);
    return Response.json(result);
  },
};
"""


def _edit(p: dict[str, Any]) -> None:
    p["indexes"] = {
        "bench": {
            "dimensions": DIMS,
            "metric": "cosine",
            "metadata_indexes": {"category": "string"},
        }
    }
    p["workers"] = {
        "ingest": {
            "kind": "custom",
            "main": "src/ingest.js",
            "bindings": {"vectorize": {"binding": "VECTORIZE", "index": "bench"}},
        }
    }
    for gw in p.get("gateways", {}).values():
        gw.pop("rate_limit", None)


def _drive(url: str, batches: int, dry: bool) -> tuple[float, int]:
    """(seconds, errors) for `batches` requests, STREAMS at a time."""
    lock = threading.Lock()
    todo = list(range(batches))
    errors = [0]

    def stream() -> None:
        with httpx.Client(timeout=300) as client:
            while True:
                with lock:
                    if not todo:
                        return
                    b = todo.pop(0)
                r = client.get(url, params={"batch": b, "dry": int(dry)})
                ok = r.status_code == 200 and (
                    "bytes" in r.json() if dry else "mutationId" in r.json()
                )
                if not ok:
                    with lock:
                        errors[0] += 1
                        if errors[0] == 1:
                            print(f"bench: ingest batch {b}: {r.status_code} {r.text[:300]}")

    threads = [threading.Thread(target=stream) for _ in range(STREAMS)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0, errors[0]


def binding_insert_bench(log: list[str], work: Path) -> list[Result]:
    project = _project_copy(work / "binding-project", _edit)
    (project / "src").mkdir(exist_ok=True)
    (project / "src" / "ingest.js").write_text(INGEST_JS, encoding="utf-8")
    platform = LocalPlatform(project, "local")
    batches = BIND_N // BATCH
    try:
        outputs = platform.up().to_json()
        url = outputs["endpoints"]["ingest"]
        processes = platform.status().processes
        emulator = processes["emulator"].pid
        workerds = [p.pid for name, p in processes.items() if name.startswith("workerd") and p.pid]
        # Warm-up: compile the Worker, open connections, load the index (batch 0 is written
        # again by the timed run: an upsert, so the count stays BIND_N).
        _drive(url, 2, dry=True)
        _drive(url, 1, dry=False)
        dry_s, dry_errors = _drive(url, batches, dry=True)
        rss0, cpu0 = rss_kib(emulator), cpu_seconds(emulator)
        workerd0 = sum(cpu_seconds(pid) for pid in workerds)
        real_s, errors = _drive(url, batches, dry=False)
        cpu = cpu_seconds(emulator) - cpu0
        workerd_cpu = sum(cpu_seconds(pid) for pid in workerds) - workerd0
        hwm = rss_kib(emulator, "VmHWM")
        api = outputs["api"]
        count = httpx.get(
            f"{api['base_url']}/accounts/{api['account_id']}/vectorize/v2/indexes/"
            f"{outputs['indexes']['bench']['name']}/info",
            headers={"authorization": f"Bearer {api['token']}"},
            timeout=300,
        ).json()["result"]["vectorCount"]
    finally:
        platform.down()
    rate, dry_rate = BIND_N / real_s, BIND_N / dry_s
    log.append(
        f"vectorize_binding_insert: {rate:.0f} vectors/s through env.VECTORIZE.upsert"
        f" ({STREAMS} requests in flight); the Worker alone builds and serialises"
        f" {dry_rate:.0f}/s; CPU a vector: emulator {cpu / BIND_N * 1e6:.0f} us,"
        f" workerd {workerd_cpu / BIND_N * 1e6:.0f} us"
    )
    return [
        Result(
            "vectorize_binding_insert",
            rate,
            dry_rate,
            f"vectors/s (Worker env.VECTORIZE.upsert of 1000 x 768 on workerd, {BIND_N // 1000}k)",
            ">= 10000 vectors/s (baseline: the Worker building and serialising the same"
            " batches without the call)",
            "value>=",
            10_000.0,
            {
                "vectors": BIND_N,
                "vectorCount": count,
                "errors": errors + dry_errors,
                "requests_in_flight": STREAMS,
                "emulator_cpu_us_per_vector": round(cpu / BIND_N * 1e6, 1),
                "workerd_cpu_us_per_vector": round(workerd_cpu / BIND_N * 1e6, 1),
                "vectors_per_emulator_cpu_s": round(BIND_N / cpu) if cpu else None,
                "emulator_peak_rss_delta_mib": round((hwm - rss0) / 1024, 1),
            },
        )
    ]
