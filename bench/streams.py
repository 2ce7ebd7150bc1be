"""sse_streams and reload: concurrent streaming chats, and `cfai dev` edit-to-answer time.

Both run on a temporary copy of the project (see `platform._project_copy`), loopback only,
and stop every process they start before returning.

- `sse_streams`: 200 streaming ``POST /chat`` requests at once (`_burst`: one connection
  each, a thin asyncio client), each read to ``data: [DONE]``; time to the first body
  bytes, p99 (the figure) and p50. The same burst goes to each hop on its own: the Worker
  on workerd's private port, and the emulator's streaming run through the gateway (what
  the Worker calls), so the difference between hops says where the time goes; with the
  CPU each process spent per stream in each hop's bursts. A fourth hop, ``passthrough``, is
  a minimal custom Worker on its own workerd that hands ``env.AI.run``'s stream (same
  model, same gateway) straight back: the chat Worker's workerd CPU against its says what
  the template's own JS costs a stream. The stand-in model makes its whole answer at once
  and the emulator writes its first event alone, then the rest in one write (see
  `cfai.local.services.workers_ai._core`): nothing is paced. Baseline: the TTFB p50 of one
  stream at a time on the same, idle platform. Met when every stream completes and the p99
  is within 250 ms.
- `reload`: ``python -m cfai dev --templates <copy>`` as a subprocess on a copy of the
  project with its own copy of ``templates/`` (as in ``tests/local/test_local_dev.py``);
  append a comment to the copy's ``workers/chat.js.j2`` and time until the assistant's
  ``/health`` reports a new ``template_sha256``. Baseline: `LocalPlatform.up()` of the same
  stack, cold, in the same run.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bench import _burst
from bench._util import Result, cpu_seconds, spawn, stats
from bench.platform import ROOT, _project_copy, no_limits
from cfai.local import LocalPlatform

STREAMS = 200
ROUNDS = 3
IDLE_RUNS = 15
BURST_BOUND = 60.0  # seconds for one stream of a burst, then it counts as failed
TTFB_P99_TARGET_MS = 250.0
EDITS = 3


# -- sse_streams -----------------------------------------------------------------------------

# Where a stream passes, outermost first: what each hop adds is its TTFB minus the next's.
# `passthrough` is not on the path: the floor of any Worker streaming the same model.
HOPS = ("router", "workerd", "passthrough", "emulator")

# The pass-through Worker: env.AI.run's stream through the same gateway, bytes untouched.
PASSTHROUGH_JS = """export default {
  async fetch(request, env) {
    const { prompt } = await request.json();
    const stream = await env.AI.run(
      "@cf/meta/llama-3.1-8b-instruct",
      { prompt, stream: true },
      { gateway: { id: env.GATEWAY_ID } },
    );
    return new Response(stream, { headers: { "content-type": "text/event-stream" } });
  },
};
"""


def _with_passthrough(p: dict[str, Any]) -> None:
    """`_project_copy` edit: no rate limits, plus the pass-through custom Worker."""
    no_limits(p)
    p["workers"]["passthrough"] = {
        "kind": "custom",
        "main": "src/passthrough.js",
        "bindings": {"ai": "AI", "gateway": {"gateway": "main"}},
    }


def _targets(platform: LocalPlatform, outputs: Any) -> dict[str, tuple[str, dict[str, str]]]:
    """hop -> (URL, headers): the assistant through the router, the same Worker
    on workerd's private port, and the emulator's streaming run of its model through its
    gateway (the call the Worker makes)."""
    worker = {"authorization": f"Bearer {outputs.auth_token or ''}"}
    routes = platform.routes().workers
    upstream = next(iter(routes["assistant"].versions.values())).upstream
    passthrough = next(iter(routes["passthrough"].versions.values())).upstream
    api = outputs.api
    root = api.base_url.split("/client/v4")[0]
    gateway = outputs.gateways["main"].id
    model = "@cf/meta/llama-3.1-8b-instruct"  # the assistant's (Pulumi.local.yaml)
    return {
        "router": (outputs.endpoints["assistant"] + "/chat", worker),
        "workerd": (f"http://{upstream}/chat", worker),
        "passthrough": (f"http://{passthrough}/", {}),
        "emulator": (
            f"{root}/v1/{api.account_id}/{gateway}/workers-ai/{model}",
            {"authorization": f"Bearer {api.token}"},
        ),
    }


def _bodies(tag: str, n: int) -> list[bytes]:
    # A distinct prompt per stream, so the gateway cache never answers.
    return [json.dumps({"prompt": f"stream {tag}-{i}", "stream": True}).encode() for i in range(n)]


def _pct(xs: list[float], q: float) -> float | None:
    s = sorted(xs)
    return round(s[min(len(s) - 1, int(q * len(s)))] * 1000, 2) if s else None


def _cpu(pids: dict[str, int]) -> dict[str, float]:
    out = {}
    for name, pid in pids.items():
        try:
            out[name] = cpu_seconds(pid)
        except OSError:
            continue
    out["client"] = time.process_time()
    return out


def sse_streams_bench(log: list[str], work: Path) -> list[Result]:
    (work / "sse-project" / "src").mkdir(parents=True, exist_ok=True)
    (work / "sse-project" / "src" / "passthrough.js").write_text(PASSTHROUGH_JS)
    project = _project_copy(work / "sse-project", _with_passthrough)
    platform = LocalPlatform(project, "local")
    per_hop: dict[str, list[dict[str, Any]]] = {hop: [] for hop in HOPS}
    # hop -> process -> CPU ms per stream, one figure a round
    cpu_ms: dict[str, dict[str, list[float]]] = {hop: {} for hop in HOPS}
    try:
        outputs = platform.up()
        targets = _targets(platform, outputs)
        run = platform.running()
        pids = dict(run.pids) if run is not None else {}  # workerd: one per Worker version
        url, headers = targets["router"]
        idle = [
            asyncio.run(_burst.stream(url, b, headers, BURST_BOUND))
            for b in _bodies("idle", IDLE_RUNS + 1)
        ][1:]  # the first warms up
        for n in range(ROUNDS):
            for hop in HOPS:
                url, headers = targets[hop]
                before = _cpu(pids)
                wall, rs = asyncio.run(
                    _burst.burst(url, _bodies(f"{hop}{n}", STREAMS), headers, BURST_BOUND)
                )
                after = _cpu(pids)
                per_hop[hop].append({"wall": wall, "results": rs})
                for name, t in after.items():
                    spent = (t - before.get(name, t)) / STREAMS * 1000
                    if spent > 0.005:  # the processes this hop's streams went through
                        cpu_ms[hop].setdefault(name, []).append(spent)
    finally:
        platform.down()
    idle_bad = [r for r in idle if not r["ok"]]
    if idle_bad:
        raise RuntimeError(f"idle stream failed: {idle_bad[0]['error']}")
    idle_ttfb = stats([r["ttfb"] for r in idle])
    summary: dict[str, Any] = {}
    errors: list[str] = []
    for hop in HOPS:
        rounds = []
        for burst in per_hop[hop]:
            rs = burst["results"]
            ttfb = [r["ttfb"] for r in rs if r["ttfb"] is not None]
            bad = [r for r in rs if not r["ok"]]
            errors += [f"{hop}: {r['error']}" for r in bad]
            rounds.append(
                {
                    "wall_s": round(burst["wall"], 3),
                    "completed_done": sum(1 for r in rs if r["ok"]),
                    "ttfb_p50_ms": _pct(ttfb, 0.5),
                    "ttfb_p99_ms": _pct(ttfb, 0.99),
                }
            )
        p99s = sorted(r["ttfb_p99_ms"] for r in rounds if r["ttfb_p99_ms"] is not None)
        p50s = sorted(r["ttfb_p50_ms"] for r in rounds if r["ttfb_p50_ms"] is not None)
        summary[hop] = {
            "rounds": rounds,
            "ttfb_p99_ms": p99s[len(p99s) // 2] if p99s else None,
            "ttfb_p50_ms": p50s[len(p50s) // 2] if p50s else None,
        }
    router = summary["router"]
    complete = all(r["completed_done"] == STREAMS for h in HOPS for r in summary[h]["rounds"])
    value = router["ttfb_p99_ms"]
    passed = complete and not errors and value is not None and value <= TTFB_P99_TARGET_MS
    cpu = {
        hop: {k: round(statistics.median(v), 3) for k, v in sorted(cpu_ms[hop].items())}
        for hop in HOPS
    }
    log.append(
        f"sse_streams: {ROUNDS} bursts of {STREAMS} per hop, {len(errors)} errors; TTFB p99 "
        + ", ".join(f"{h} {summary[h]['ttfb_p99_ms']} ms" for h in HOPS)
        + " (p50 "
        + ", ".join(f"{h} {summary[h]['ttfb_p50_ms']} ms" for h in HOPS)
        + f"); CPU ms per stream by hop and process (median of {ROUNDS}): {cpu}"
    )
    return [
        Result(
            "sse_streams",
            value,
            idle_ttfb["median"] * 1000,
            f"ms (TTFB p99, {STREAMS} concurrent streaming /chat through the router)",
            f"TTFB p99 <= {TTFB_P99_TARGET_MS:.0f} ms, every stream complete "
            "(baseline: TTFB p50 of one stream, idle)",
            "passed",
            TTFB_P99_TARGET_MS,
            {
                "hops": summary,
                "cpu_ms_per_stream": cpu,
                "cpu_ms_per_stream_rounds": {
                    hop: {k: [round(x, 3) for x in v] for k, v in cpu_ms[hop].items()}
                    for hop in HOPS
                },
                "idle_single_stream_ttfb_ms": _ms([r["ttfb"] for r in idle]),
                "first_errors": errors[:3],
            },
            passed,
        )
    ]


def _ms(xs: list[float]) -> dict[str, float]:
    return {
        k: round(v * 1000, 2) if k not in ("n", "iqr_pct") else round(v, 1)
        for k, v in stats(xs).items()
    }


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
