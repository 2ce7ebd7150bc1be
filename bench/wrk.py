"""chat_rps, wrk_health_router, wrk_chat_router: requests per second measured by wrk.

wrk (https://github.com/wg/wrk; the Debian package ``wrk``, which ``make bench``
installs) is a C load generator: unlike a Python client in the bench process, it is not
what limits the figure. Each target gets the same load (`THREADS` threads, `CONNECTIONS`
keep-alive connections, `SECONDS` a run, `ROUNDS` rounds, targets interleaved, median
taken):

- ``hello``: bare workerd serving a hello-world Worker (``GET /``): the floor of any
  Worker on this machine;
- ``health_direct`` / ``chat_direct``: the assistant chat Worker on workerd's private
  port (``GET /health``; ``POST /chat``, a distinct prompt per request so the gateway
  cache never answers, the stand-in model behind it);
- ``health_router`` / ``chat_router``: the same through the router (the public port).

Figures: the router against direct workerd (/health and /chat: "adds <= 20%" is a ratio
>= 1/1.2), and chat through the whole stack against bare workerd's hello world.
Without wrk the three figures are skipped, saying so.
"""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
from pathlib import Path
from typing import Any

from bench._util import Result, Skipped, spawn, stop, wait_http
from bench.platform import HELLO_CAPNP, HELLO_JS, ROOT, _project_copy, no_limits
from cfai.local import LocalPlatform
from cfai.local.ports import free_port
from cfai.local.workerd import find_workerd

THREADS, CONNECTIONS, SECONDS, ROUNDS = 2, 16, 3, 3
ROUTER_LIMIT = 1 / 1.2  # the router adds at most 20% to a request's time
STACK_LIMIT = 0.5

_CHAT_LUA = """-- POST /chat with a distinct prompt per request (each thread numbers its own).
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
local n = 0
function request()
  n = n + 1
  local body = string.format('{"prompt":"hello %d-%d"}', tid, n)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json",
                                  ["Authorization"] = "Bearer {token}"}, body)
end
"""
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def find_wrk() -> str | None:
    return shutil.which("wrk")


def _parse(out: str) -> dict[str, Any]:
    """rps, latency percentiles (ms) and error counts from wrk's report."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if rps is None:
        raise RuntimeError(f"wrk printed no Requests/sec:\n{out[-500:]}")
    row: dict[str, Any] = {"rps": float(rps.group(1))}
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        row[f"p{pct}_ms"] = round(float(m.group(1)) * _UNITS[m.group(2)], 3) if m else None
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    row["non_2xx"] = int(non2xx.group(1)) if non2xx else 0
    row["socket_errors"] = sum(int(x) for x in sock.groups()) if sock else 0
    return row


def _wrk(wrk: str, url: str, script: Path | None, seconds: int = SECONDS) -> dict[str, Any]:
    argv = [wrk, f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency"]
    if script is not None:
        argv += ["-s", str(script)]
    out = subprocess.run(
        [*argv, url], capture_output=True, text=True, timeout=seconds + 60, check=True
    )
    return _parse(out.stdout)


def _hello(work: Path) -> tuple[subprocess.Popen[bytes], str]:
    hello = work / "wrk-hello"
    hello.mkdir(parents=True, exist_ok=True)
    (hello / "index.js").write_text(HELLO_JS, encoding="utf-8")
    port = free_port()
    (hello / "config.capnp").write_text(HELLO_CAPNP.replace("{port}", str(port)), encoding="utf-8")
    proc = spawn(
        [str(find_workerd(ROOT)), "serve", "config.capnp"], work / "wrk-hello.log", cwd=hello
    )
    url = f"http://127.0.0.1:{port}/"
    if not wait_http(url, proc, 30):
        stop(proc)
        raise RuntimeError(f"bare workerd did not answer; see {work / 'wrk-hello.log'}")
    return proc, url


def wrk_bench(log: list[str], work: Path) -> list[Result]:
    wrk = find_wrk()
    if wrk is None:
        raise Skipped(
            "wrk is not installed: chat_rps, wrk_health_router and wrk_chat_router need it. "
            "`make bench` installs the Debian package (apt-get install -y wrk); it could not "
            "here (no root, no sudo, or no package source)."
        )
    project = _project_copy(work / "wrk-project", no_limits)
    platform = LocalPlatform(project, "local")
    hello, hello_url = _hello(work)
    runs: dict[str, list[dict[str, Any]]] = {}
    try:
        outputs = platform.up()
        upstream = next(iter(platform.routes().workers["assistant"].versions.values())).upstream
        public = outputs.endpoints["assistant"]
        script = work / "wrk-chat.lua"  # the Workers' token: a file of this run's temp dir
        script.write_text(_CHAT_LUA.replace("{token}", outputs.auth_token or ""), "utf-8")
        script.chmod(0o600)
        targets: dict[str, tuple[str, Path | None]] = {
            "hello": (hello_url, None),
            "health_direct": (f"http://{upstream}/health", None),
            "health_router": (f"{public}/health", None),
            "chat_direct": (f"http://{upstream}/chat", script),
            "chat_router": (f"{public}/chat", script),
        }
        for url, lua in targets.values():  # warm-up: JIT, connections, the gateway's tables
            _wrk(wrk, url, lua, seconds=1)
        for _ in range(ROUNDS):
            for name, (url, lua) in targets.items():
                runs.setdefault(name, []).append(_wrk(wrk, url, lua))
    finally:
        platform.down()
        stop(hello)
    summary = {name: _summary(rs) for name, rs in runs.items()}
    rps = {name: s["rps"] for name, s in summary.items()}
    bad = {n: s["errors"] for n, s in summary.items() if s["errors"]}
    log.append(
        "wrk ("
        + f"{THREADS} threads, {CONNECTIONS} connections, {SECONDS} s x {ROUNDS}): "
        + ", ".join(f"{n} {r:.0f} rps" for n, r in rps.items())
        + (f"; errors {bad}" if bad else "; no errors")
    )
    load = f"wrk -t{THREADS} -c{CONNECTIONS}, {SECONDS} s x {ROUNDS}, median"
    return [
        Result(
            "wrk_health_router",
            rps["health_router"],
            rps["health_direct"],
            f"requests/s (GET /health through the router; {load})",
            "ratio >= 0.83 (the router adds <= 20%; baseline: the same Worker on workerd directly)",
            "ratio>=",
            ROUTER_LIMIT,
            {"router": summary["health_router"], "direct": summary["health_direct"]},
        ),
        Result(
            "wrk_chat_router",
            rps["chat_router"],
            rps["chat_direct"],
            f"requests/s (POST /chat through the router; {load})",
            "ratio >= 0.83 (the router adds <= 20%; baseline: the same Worker on workerd directly)",
            "ratio>=",
            ROUTER_LIMIT,
            {"router": summary["chat_router"], "direct": summary["chat_direct"]},
        ),
        Result(
            "chat_rps",
            rps["chat_router"],
            rps["hello"],
            f"requests/s (POST /chat, the whole local stack; {load})",
            "ratio >= 0.5 (baseline: bare workerd hello world)",
            "ratio>=",
            STACK_LIMIT,
            {"chat": summary["chat_router"], "bare_workerd_hello": summary["hello"]},
        ),
    ]


def _summary(rs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "rps": statistics.median(r["rps"] for r in rs),
        "rps_rounds": [round(r["rps"], 1) for r in rs],
        "p50_ms": statistics.median(r["p50_ms"] for r in rs if r["p50_ms"] is not None),
        "p99_ms": max((r["p99_ms"] for r in rs if r["p99_ms"] is not None), default=None),
        "errors": sum(r["non_2xx"] + r["socket_errors"] for r in rs),
    }
