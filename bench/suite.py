"""make_test: ``make test`` itself, from a fresh clone.

The committed HEAD of this checkout is cloned into the bench's temporary directory;
``make setup`` (a new .venv and node_modules, from the package caches) is timed apart, then
``make test`` (lint, then the whole pytest suite) with pytest asked for every test's
durations. The figure is the wall time of ``make test``; its baseline is the sum of the
tests' own durations (setup + call + teardown, as pytest reports them): a ratio above 1 is
what lint, collection and start-up add, below 1 what running tests side by side saves.
The 10 slowest tests are listed.

Uncommitted changes are not measured (a clone has only commits). The suite's output
goes to ``make-test.log`` in the bench's temporary directory (copied to
``$CFAI_BENCH_KEEP_LOGS`` when set); its outcome line is reported.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

from bench._util import Result

ROOT = Path(__file__).resolve().parent.parent
BOUND = 3600  # seconds for `make setup` and for `make test`, each

_DURATION = re.compile(r"^([\d.]+)s (setup|call|teardown) +(.+?)\s*$", re.M)
_SUMMARY = re.compile(r"^=* ?(\d+ (?:passed|failed|error)\b.* in [\d.]+s\b.*?) ?=*$", re.M)


def _make(target: str, clone: Path, log: Path, env: dict[str, str]) -> tuple[float, int]:
    t0 = time.perf_counter()
    with open(log, "wb") as out:
        rc = subprocess.run(
            ["make", target],
            cwd=clone,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            timeout=BOUND,
        ).returncode
    return time.perf_counter() - t0, rc


def make_test_bench(log: list[str], work: Path) -> list[Result]:
    clone = work / "clone"
    subprocess.run(
        ["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(clone)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=clone, capture_output=True, text=True
    ).stdout.strip()
    # The clone's own venv and tools, not this run's.
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    setup_s, rc = _make("setup", clone, work / "make-setup.log", env)
    if rc != 0:
        raise RuntimeError(f"make setup failed in a fresh clone; see {work / 'make-setup.log'}")
    env["PYTEST_ADDOPTS"] = "--durations=0 --durations-min=0 -p no:cacheprovider"
    test_log = work / "make-test.log"
    wall, rc = _make("test", clone, test_log, env)
    text = test_log.read_text(encoding="utf-8", errors="replace")
    keep = os.environ.get("CFAI_BENCH_KEEP_LOGS")
    if keep:  # the suite's output outlives the bench's temporary directory
        Path(keep).mkdir(parents=True, exist_ok=True)
        (Path(keep) / "make-test.log").write_text(text, encoding="utf-8")
    per_test: dict[str, float] = {}
    for secs, _, test in _DURATION.findall(text):
        per_test[test] = per_test.get(test, 0.0) + float(secs)
    summary = _SUMMARY.findall(text)
    outcome = summary[-1] if summary else "no pytest summary (lint failed?)"
    if not per_test:
        raise RuntimeError(f"make test reported no test durations ({outcome}); see {test_log}")
    serial = sum(per_test.values())
    slowest = sorted(per_test.items(), key=lambda kv: -kv[1])[:10]
    log.append(
        f"make_test: fresh clone of {head}: make setup {setup_s:.0f} s, make test {wall:.0f} s"
        f" (exit {rc}: {outcome}); the tests' own time {serial:.0f} s over {len(per_test)} tests"
    )
    return [
        Result(
            "make_test",
            wall,
            serial,
            "s (make test wall time in a fresh clone, lint included)",
            "report (baseline: the sum of the tests' own durations)",
            None,
            None,
            {
                "commit": head,
                "exit_code": rc,
                "pytest": outcome,
                "make_setup_s": round(setup_s, 1),
                "tests": len(per_test),
                "slowest_10_s": {t: round(s, 2) for t, s in slowest},
            },
        )
    ]
