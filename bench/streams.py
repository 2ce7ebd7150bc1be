"""sse_streams and reload: concurrent streaming chats, and `cfai dev` edit-to-answer time.

Both run on a temporary copy of the project (see `platform._project_copy`), loopback only,
and stop every process they start before returning.

- `sse_streams`: 200 streaming ``POST /chat`` requests at once (asyncio + httpx), each read
  to ``data: [DONE]``; time-to-first-byte (first body chunk) p50/p99 and the wall time of
  the burst. Baseline: the TTFB p50 of one stream at a time on the same, idle platform.
  Met when every stream completes and none errs.
- `reload`: ``python -m cfai dev --templates <copy>`` as a subprocess on a copy of the
  project with its own copy of ``templates/`` (as in ``tests/local/test_local_dev.py``);
  append a comment to the copy's ``workers/chat.js.j2`` and time until the assistant's
  ``/health`` reports a new ``template_sha256``. Baseline: `LocalPlatform.up()` of the same
  stack, cold, in the same run.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bench._util import Result, spawn, stats
from bench.platform import ROOT, _project_copy, no_limits
from cfai.local import LocalPlatform

STREAMS = 200
ROUNDS = 3
IDLE_RUNS = 15
STREAM_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
BURST_BOUND = 180.0  # seconds for one whole burst of STREAMS, then it is cancelled
EDITS = 3


# -- sse_streams -----------------------------------------------------------------------------


async def _one_stream(client: httpx.AsyncClient, url: str, prompt: str) -> dict[str, Any]:
    t0 = time.perf_counter()
    ttfb: float | None = None
    body = b""
    try:
        async with client.stream("POST", url, json={"prompt": prompt, "stream": True}) as r:
            async for chunk in r.aiter_raw():
                if ttfb is None and chunk:
                    ttfb = time.perf_counter() - t0
                body += chunk
            status = r.status_code
    except httpx.HTTPError as err:
        return {"ok": False, "error": f"{type(err).__name__}: {err}", "ttfb": ttfb}
    done = b"data: [DONE]" in body
    ok = status == 200 and done
    return {
        "ok": ok,
        "done": done,
        "error": None if ok else f"HTTP {status}: {body[:200]!r}",
        "ttfb": ttfb,
        "total": time.perf_counter() - t0,
    }


def _client(token: str, connections: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        headers={"authorization": f"Bearer {token}"},
        timeout=STREAM_TIMEOUT,
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
    )


async def _idle(url: str, token: str) -> list[dict[str, Any]]:
    async with _client(token, 1) as client:
        await _one_stream(client, url, "warm-up")
        return [await _one_stream(client, url, f"idle stream {i}") for i in range(IDLE_RUNS)]


async def _burst(url: str, token: str, round_: int) -> tuple[float, list[dict[str, Any]]]:
    async with _client(token, STREAMS) as client:
        t0 = time.perf_counter()
        # A distinct prompt per stream, so the gateway cache never answers.
        tasks = [_one_stream(client, url, f"stream {round_}-{i}") for i in range(STREAMS)]
        out = await asyncio.wait_for(asyncio.gather(*tasks), BURST_BOUND)
        return time.perf_counter() - t0, list(out)


def _ms(xs: list[float]) -> dict[str, float]:
    return {
        k: round(v * 1000, 2) if k not in ("n", "iqr_pct") else round(v, 1)
        for k, v in stats(xs).items()
    }


def sse_streams_bench(log: list[str], work: Path) -> list[Result]:
    project = _project_copy(work / "sse-project", no_limits)
    platform = LocalPlatform(project, "local")
    try:
        outputs = platform.up()
        url = outputs.endpoints["assistant"] + "/chat"
        token = outputs.auth_token or ""
        idle = asyncio.run(_idle(url, token))
        bursts = [asyncio.run(_burst(url, token, n)) for n in range(ROUNDS)]
    finally:
        platform.down()
    idle_bad = [r for r in idle if not r["ok"]]
    if idle_bad:
        raise RuntimeError(f"idle stream failed: {idle_bad[0]['error']}")
    idle_ttfb = stats([r["ttfb"] for r in idle])
    rounds = []
    errors: list[str] = []
    for wall, rs in bursts:
        ttfb = sorted(r["ttfb"] for r in rs if r["ttfb"] is not None)
        bad = [r for r in rs if not r["ok"]]
        errors += [r["error"] for r in bad]
        rounds.append(
            {
                "wall_s": round(wall, 3),
                "completed_done": sum(1 for r in rs if r.get("done") and r["ok"]),
                "errors": len(bad),
                "ttfb_p50_ms": round(ttfb[len(ttfb) // 2] * 1000, 2) if ttfb else None,
                "ttfb_p99_ms": (
                    round(ttfb[min(len(ttfb) - 1, int(0.99 * len(ttfb)))] * 1000, 2)
                    if ttfb
                    else None
                ),
            }
        )
    all_ttfb = [r["ttfb"] for _, rs in bursts for r in rs if r["ttfb"] is not None]
    p50s = [r["ttfb_p50_ms"] for r in rounds if r["ttfb_p50_ms"] is not None]
    value = sorted(p50s)[len(p50s) // 2] if p50s else None
    passed = not errors and all(r["completed_done"] == STREAMS for r in rounds)
    walls = [wall for wall, _ in bursts]
    log.append(
        f"sse_streams: {ROUNDS} bursts of {STREAMS}: {sum(r['completed_done'] for r in rounds)}"
        f" completed with [DONE], {len(errors)} errors; wall {stats(walls)['median']:.2f} s"
    )
    return [
        Result(
            "sse_streams",
            value,
            idle_ttfb["median"] * 1000,
            f"ms (TTFB p50, {STREAMS} concurrent streaming /chat)",
            "all complete, zero errors (baseline: TTFB p50 of one stream, idle)",
            "passed",
            None,
            {
                "rounds": rounds,
                "ttfb_all_rounds_ms": _ms(all_ttfb) if all_ttfb else None,
                "wall_s": _round(stats(walls)),
                "idle_single_stream_ttfb_ms": _ms([r["ttfb"] for r in idle]),
                "first_errors": errors[:3],
            },
            passed,
        )
    ]


def _round(s: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 3) for k, v in s.items()}


# -- reload ----------------------------------------------------------------------------------


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return False


def _wait(what: str, check: Any, bound: float, proc: subprocess.Popen[bytes], log: Path) -> Any:
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"cfai dev exited ({proc.returncode}) waiting for {what}; see {log}")
        try:
            value = check()
        except (OSError, httpx.HTTPError, ValueError, KeyError):
            value = None
        if value:
            return value
        time.sleep(0.01)
    raise RuntimeError(f"timed out after {bound:.0f} s waiting for {what}; see {log}")


def _dev_copy(dest: Path) -> tuple[Path, Path]:
    """A project copy and a templates copy `cfai dev --templates` renders from."""
    project = _project_copy(dest)
    templates = dest / "templates"
    shutil.copytree(ROOT / "templates", templates)
    return project, templates


def _cold_up(project: Path) -> float:
    lp = LocalPlatform(project, "local")
    try:
        t0 = time.perf_counter()
        lp.up()
        return time.perf_counter() - t0
    finally:
        lp.down()


def reload_bench(log: list[str], work: Path) -> list[Result]:
    project, templates = _dev_copy(work / "dev-project")
    _cold_up(project)  # untimed warm-up, as in cold_start
    cold = stats([_cold_up(project) for _ in range(3)])

    dev = LocalPlatform(project, "local")  # run by the `cfai dev` subprocess; read here
    dev_log = work / "dev.log"
    argv = ["dev", "--stack", "local", "--project", str(project), "--templates", str(templates)]
    proc = spawn(
        [sys.executable, "-m", "cfai", *argv],
        dev_log,
        cwd=project,
    )
    text = lambda: dev_log.read_text(errors="replace")  # noqa: E731
    pids: list[int] = []
    times: list[float] = []
    clean_exit = False
    try:
        _wait("cfai dev to serve", lambda: "watching" in text(), 120, proc, dev_log)
        outputs = dev.outputs()
        assert outputs is not None, "cfai dev serves without an outputs map"
        health = outputs.endpoints["assistant"] + "/health"
        sha = lambda: httpx.get(health, timeout=5).json()["template_sha256"]  # noqa: E731
        before = sha()
        template = templates / "workers" / "chat.js.j2"
        for i in range(EDITS):
            time.sleep(1.0)  # idle between edits, so no edit lands inside the previous reload
            template.write_text(template.read_text() + f"\n// bench edit {i}\n")
            t0 = time.perf_counter()
            _wait("the edited template to serve", lambda b=before: sha() != b, 60, proc, dev_log)
            times.append(time.perf_counter() - t0)
            before = sha()
            _wait(
                "the reload report",
                lambda n=i + 1: text().count("reloaded:") >= n,
                60,
                proc,
                dev_log,
            )
        pids = [p.pid for p in dev.status().processes.values()]
        proc.send_signal(signal.SIGINT)
        clean_exit = proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        if dev.status().processes:
            subprocess.run(
                [sys.executable, "-m", "cfai", "local", "down", "--project", str(project)],
                capture_output=True,
                timeout=60,
                cwd=project,
            )
    left = [p for p in pids if _running(p)]
    if left or not clean_exit or dev.status().processes:
        for p in left:
            os.kill(p, signal.SIGKILL)
        raise RuntimeError(
            f"cfai dev did not stop cleanly (exit ok: {clean_exit}, left running: {left}); "
            f"see {dev_log}"
        )
    med = stats(times)
    log.append(
        f"reload: edit -> new template_sha256 in {med['median']:.2f} s (median of {EDITS}); "
        f"cold up {cold['median']:.2f} s; SIGINT left no process"
    )
    return [
        Result(
            "reload",
            med["median"],
            cold["median"],
            "s (cfai dev: template edit until /health shows the new template_sha256)",
            "ratio <= 0.3 (baseline: cold LocalPlatform.up() of the same stack)",
            "ratio<=",
            0.3,
            {
                "edit_to_answer_s": [round(t, 3) for t in times],
                "cold_up_s": _round(cold),
                "watch_poll_interval_s": 0.1,
            },
        )
    ]
