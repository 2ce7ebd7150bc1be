"""``python -m bench``: run every benchmark, write results/latest.json, results/latest.png
and results/README.md.

``python -m bench vectorize_query render`` runs a subset (by group name).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from bench import _plot, _report
from bench._util import Result, Skipped

RESULTS = Path(__file__).resolve().parent / "results"


def _groups(work: Path, log: list[str]) -> dict[str, Callable[[], list[Result]]]:
    from bench import (
        binding,
        platform,
        render,
        router_designs,
        scale,
        streams,
        suite,
        vectorize,
        wrk,
    )

    return {
        "vectorize_query": lambda: vectorize.query_benches(log),
        "vectorize_insert": lambda: vectorize.insert_bench(log, work),
        "vectorize_binding_insert": lambda: binding.binding_insert_bench(log, work),
        "vectorize_scale": lambda: scale.scale_bench(log, work),
        "render": lambda: render.render_bench(log, work),
        "cold_start": lambda: platform.cold_start_bench(log, work),
        "wrk": lambda: wrk.wrk_bench(log, work),
        "wrk_router_designs": lambda: router_designs.router_designs_bench(log, work),
        "sse_streams": lambda: streams.sse_streams_bench(log, work),
        "reload": lambda: streams.reload_bench(log, work),
        "make_test": lambda: suite.make_test_bench(log, work),
    }


def main(argv: list[str]) -> int:
    log: list[str] = []
    results: list[Result] = []
    failures: dict[str, str] = {}
    skipped: dict[str, str] = {}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cfai-bench-") as tmp:
        groups = _groups(Path(tmp), log)
        for name, run in groups.items():
            if argv and name not in argv:
                continue
            t0 = time.monotonic()
            print(f"bench: {name} ...", flush=True)
            try:
                results.extend(run())
            except Skipped as why:
                skipped[name] = str(why)
                print(f"bench: {name} skipped: {why}", flush=True)
            except Exception as err:  # one broken bench must not hide the others' numbers
                failures[name] = f"{type(err).__name__}: {err}"
                traceback.print_exc()
            print(f"bench: {name} done in {time.monotonic() - t0:.0f}s", flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(
        json.dumps([r.row() for r in results], indent=2) + "\n", encoding="utf-8"
    )
    try:
        _plot.draw(results, RESULTS / "latest.png", _report.picture_title())
    except Exception as err:  # the picture must not cost the numbers
        failures["picture"] = f"{type(err).__name__}: {err}"
        traceback.print_exc()
    (RESULTS / "README.md").write_text(
        _report.markdown(results, failures, skipped, log, time.monotonic() - started),
        encoding="utf-8",
    )
    for r in results:
        print(json.dumps(r.row()))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
