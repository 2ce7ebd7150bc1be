"""Load generator run as a second process: ``python -m bench._load URL TOKEN BODY OUT``.

8 threads share one bounded budget (REQUESTS requests or SECONDS seconds, whichever ends
first); writes ``{rps, requests, errors, p50_ms, p99_ms, rounds}`` to OUT. Each round is
timed separately so the summary carries a median and a spread of rps over rounds.
"""

from __future__ import annotations

import json
import statistics
import sys
import threading
import time
from pathlib import Path

import httpx

THREADS, ROUNDS, REQUESTS, SECONDS = 8, 3, 1200, 10.0


def _round(url: str, token: str, body: object, n: int) -> tuple[float, list[float], int]:
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    left = [n]
    deadline = time.monotonic() + SECONDS

    def worker(seed: int) -> None:
        nonlocal errors
        headers = {"authorization": f"Bearer {token}"} if token else {}
        with httpx.Client(timeout=30, headers=headers) as client:
            i = 0
            while time.monotonic() < deadline:
                with lock:
                    if left[0] <= 0:
                        return
                    left[0] -= 1
                i += 1
                t0 = time.perf_counter()
                try:
                    if body is None:
                        r = client.get(url)
                    else:
                        # A distinct prompt per request, so the gateway cache never answers.
                        r = client.post(url, json={"prompt": f"{body['prompt']} {seed}-{i}"})
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                dt = time.perf_counter() - t0
                with lock:
                    latencies.append(dt)
                    errors += 0 if ok else 1

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(THREADS)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0, latencies, errors


def main(url: str, token: str, body_json: str, out: str) -> None:
    body = json.loads(body_json)
    _round(url, token, body, 50)  # warm-up
    rounds = []
    lat: list[float] = []
    errors = 0
    for _ in range(ROUNDS):
        secs, latencies, errs = _round(url, token, body, REQUESTS // ROUNDS)
        rounds.append(len(latencies) / secs)
        lat += latencies
        errors += errs
    lat.sort()
    summary = {
        "rps": statistics.median(rounds),
        "rps_rounds": [round(r, 1) for r in rounds],
        "requests": len(lat),
        "errors": errors,
        "p50_ms": round(lat[len(lat) // 2] * 1000, 2),
        "p99_ms": round(lat[min(len(lat) - 1, int(0.99 * len(lat)))] * 1000, 2),
    }
    Path(out).write_text(json.dumps(summary), encoding="utf-8")


if __name__ == "__main__":
    main(*sys.argv[1:5])
