"""cold_start: the local platform (emulator + workerd) against wrangler dev; the project copy
and the bare hello-world Worker the other platform benches share.

Platform benches run on a temporary copy of the project (``Pulumi.yaml``,
``Pulumi.local.yaml``, its finetunes' adapters and a ``node_modules`` symlink for the
pinned workerd), so the project's own ``.cfai/`` is never touched. Every process started
here is stopped before the function returns.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from bench._util import Result, spawn, stats, stop, wait_http
from cfai.local import LocalPlatform
from cfai.local.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
COLD_RUNS = 3
HELLO_JS = 'export default { fetch() { return new Response("hello"); } };\n'


def _project_copy(dest: Path, edit: Any = None) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "Pulumi.yaml", dest / "Pulumi.yaml")
    doc = yaml.safe_load((ROOT / "Pulumi.local.yaml").read_text(encoding="utf-8"))
    if edit is not None:
        edit(doc["config"]["cfai:platform"])
    (dest / "Pulumi.local.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    adapters = dest / "src" / "adapters"  # the local stack's finetunes
    if not adapters.exists():
        shutil.copytree(ROOT / "src" / "adapters", adapters)
    link = dest / "node_modules"
    if not link.exists():
        link.symlink_to(ROOT / "node_modules")
    return dest


def _up_once(project: Path) -> float:
    platform = LocalPlatform(project, "local")
    try:
        t0 = time.perf_counter()
        outputs = platform.up()
        elapsed = time.perf_counter() - t0
        for url in outputs.endpoints.values():  # up() waited for these; check anyway
            httpx.get(f"{url}/health", timeout=5).raise_for_status()
        return elapsed
    finally:
        platform.down()


def _install_wrangler(dest: Path, log: list[str]) -> tuple[Path | None, str]:
    npm = shutil.which("npm")
    if npm is None:
        return None, "npm not on PATH"
    try:
        out = subprocess.run(
            [
                npm,
                "install",
                "--prefix",
                str(dest),
                "wrangler",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
    except subprocess.TimeoutExpired:
        return None, "npm install wrangler timed out after 300 s"
    binary = dest / "node_modules" / ".bin" / "wrangler"
    if out.returncode != 0 or not binary.exists():
        return None, f"npm install wrangler failed: {out.stderr.strip()[-300:]}"
    version = subprocess.run(
        [str(binary), "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **_WRANGLER_ENV},
    )
    log.append(
        f"wrangler {((version.stdout + version.stderr).strip().splitlines() or ['?'])[-1]} installed by the bench"
    )
    return binary, ""


_WRANGLER_ENV = {
    "WRANGLER_SEND_METRICS": "false",
    "CI": "1",
    "NO_UPDATE_NOTIFIER": "1",
    "WRANGLER_LOG": "info",
}


def _wrangler_once(binary: Path, work: Path, n: int) -> float | None:
    app = work / f"hello-{n}"
    app.mkdir(parents=True, exist_ok=True)
    (app / "index.js").write_text(HELLO_JS, encoding="utf-8")
    (app / "wrangler.json").write_text(
        json.dumps({"name": "hello", "main": "index.js", "compatibility_date": "2025-09-01"}),
        encoding="utf-8",
    )
    port = free_port()
    t0 = time.perf_counter()
    proc = spawn(
        [
            str(binary),
            "dev",
            "--ip",
            "127.0.0.1",
            "--port",
            str(port),
            "--inspector-port",
            str(free_port()),
            "--show-interactive-dev-session=false",
        ],
        work / f"wrangler-{n}.log",
        env=_WRANGLER_ENV,
        cwd=app,
    )
    try:
        ok = wait_http(f"http://127.0.0.1:{port}/", proc, 90)
        return time.perf_counter() - t0 if ok else None
    finally:
        stop(proc)


def cold_start_bench(log: list[str], work: Path) -> list[Result]:
    project = _project_copy(work / "cold-project")
    _up_once(project)  # warm the OS caches (workerd binary, Python imports) once, untimed
    ours = stats([_up_once(project) for _ in range(COLD_RUNS)])
    binary, why = _install_wrangler(work / "wrangler", log)
    base = None
    if binary is not None:
        _wrangler_once(binary, work, 0)  # untimed warm-up, as for ours
        runs = [_wrangler_once(binary, work, n) for n in range(1, COLD_RUNS + 1)]
        if all(r is not None for r in runs):
            base = stats([r for r in runs if r is not None])
        else:
            why = f"wrangler dev did not answer within 90 s; see {work}/wrangler-*.log"
    if why:
        log.append(f"cold_start baseline unavailable: {why}")
    return [
        Result(
            "cold_start",
            ours["median"],
            base["median"] if base else None,
            "s (up until every /health answers)",
            "ratio <= 1.0 (stretch 0.5)",
            "ratio<=",
            1.0,
            {"cfai_local_up_s": _round(ours), "wrangler_dev_s": _round(base) if base else why},
        )
    ]


def _round(s: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 3) for k, v in s.items()}


# -- chat_rps --------------------------------------------------------------------------------

HELLO_CAPNP = """using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [(name = "hello", worker = .hello)],
  sockets = [(name = "http", address = "127.0.0.1:{port}", http = (), service = "hello")],
);
const hello :Workerd.Worker = (
  modules = [(name = "index.js", esModule = embed "index.js")],
  compatibilityDate = "2025-09-01",
);
"""


def no_limits(p: dict[str, Any]) -> None:
    """`_project_copy` edit: drop every gateway's rate limit (the shipped one allows 120
    requests a minute; a load test measures throughput)."""
    for gw in p.get("gateways", {}).values():
        gw.pop("rate_limit", None)
