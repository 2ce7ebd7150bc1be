"""wrk_router_designs: /health requests per second through five designs of the public hop,
each as a ratio to the same Worker on its own workerd (the version's private port), for the
"router adds <= 20%" target (issue 15).

The five, measured in the same run with the same wrk load, rounds interleaved:

- ``a_python_base``: the Python router as it was before pooling (``cfai/`` of `BASE_REF`,
  unpacked with ``git archive`` and run from there; skipped without git);
- ``b_python``: the Python router of this checkout;
- ``c_front_workerd``: a second ("front") workerd whose socket leads to a small router
  Worker (`ROUTER_JS`) that forwards to the version's workerd through an ``external``
  service;
- ``d_same_workerd``: the router Worker in the version's own workerd process, forwarding
  through a service binding (the version's config plus one socket and one Worker);
- ``e_same_direct``: that process's second socket, pointed straight at the Worker: the floor
  (it differs from the baseline only by being another process serving the same config);
- ``d0_same_passthrough``: its third socket, to a Worker that only passes the request on
  through the service binding (`PASS_JS`): what the hop costs without any routing.

The router Worker does the work a router must on every request: the split (a counter and
the percentages), the override header, the declared-length check and the version header
on the answer (a copied Response). Besides rps, the CPU each process spent per request is
read from ``/proc`` around every run: the figure the designs differ in, less noisy than
rps on shared cores.

`probe_workerd_edges` sends what the Python router answers itself (an unknown method, a
malformed request line, a duplicate Content-Length, a body over the limit, declared and
chunked) to the router Worker and records what comes back.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench._util import Result, Skipped, cpu_seconds, spawn, stop, wait_http
from bench.platform import ROOT, _project_copy, no_limits
from bench.wrk import CONNECTIONS, THREADS, find_wrk
from cfai.local import LocalPlatform
from cfai.local.ports import free_port
from cfai.local.state import Routes, StateFiles, VersionRoute, WorkerRoute
from cfai.local.workerd import find_workerd

SECONDS, ROUNDS = 3, 5
ROUTER_LIMIT = 1 / 1.2
#: The last commit with the router opening one upstream connection a request.
BASE_REF = "6380b55"
LIMIT = 1024 * 1024  # the chat Worker's body limit

ROUTER_JS = """\
// The public hop as a Worker: split, override header, body limit, version header.
const OVERRIDE = /^\\s*([^=,\\s]+)\\s*=\\s*"([^"]*)"\\s*$/;
let n = 0;
let order = null;

function error(status, code, message, vid) {
  const headers = { "content-type": "application/json" };
  if (vid) headers["x-cfai-version-id"] = vid;
  return new Response(JSON.stringify({ error: { code, message } }), { status, headers });
}

function pick(route, override) {
  if (override) {
    for (const member of override.split(",")) {
      const m = OVERRIDE.exec(member);
      if (m && m[1] === route.script && m[2] in route.split) return m[2];
    }
  }
  order ??= Object.entries(route.split).sort();
  const slot = (n++ * 37) % 100;
  let edge = 0;
  for (const [vid, pct] of order) {
    edge += pct;
    if (slot < edge) return vid;
  }
  return null;
}

export default {
  async fetch(request, env) {
    const route = env.ROUTE;
    const vid = pick(route, request.headers.get("cloudflare-workers-version-overrides"));
    if (vid === null) return error(503, "no_version", "the Worker has no deployed version");
    const tooLarge = () =>
      error(413, "payload_too_large", `request body exceeds ${route.limit} bytes`, vid);
    const declared = request.headers.get("content-length");
    if (declared !== null && Number(declared) > route.limit) return tooLarge();
    let forwarded = request;
    let over = false;
    if (request.body && declared === null) {
      // A chunked body is counted as it streams; past the limit the upstream's read fails
      // and whatever it answers, the client gets the 413.
      let size = 0;
      const counter = new TransformStream({
        transform(chunk, controller) {
          size += chunk.byteLength;
          if (size > route.limit) {
            over = true;
            controller.error(new RangeError("too large"));
          } else controller.enqueue(chunk);
        },
      });
      forwarded = new Request(request, { body: request.body.pipeThrough(counter) });
    }
    let answer;
    try {
      answer = await env[route.binding[vid]].fetch(forwarded);
    } catch {
      if (over) return tooLarge();
      return error(502, "upstream_unreachable", "the Worker did not answer", vid);
    }
    if (over) return tooLarge();
    const out = new Response(answer.body, answer);
    out.headers.set("x-cfai-version-id", vid);
    return out;
  },
};
"""


PASS_JS = "export default { fetch(request, env) { return env.V1.fetch(request); } };\n"


def _front_capnp(port: int, upstream: str, route: str) -> str:
    return f"""using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "router", worker = .router),
    (name = "v1", external = (address = "{upstream}", http = ())),
  ],
  sockets = [(name = "public", address = "127.0.0.1:{port}", http = (), service = "router")],
);
const router :Workerd.Worker = (
  modules = [(name = "router.js", esModule = embed "router.js")],
  compatibilityDate = "2025-09-01",
  bindings = [(name = "V1", service = "v1"), (name = "ROUTE", json = {json.dumps(route)})],
);
"""


def _same_capnp(version_config: str, service: str, ports: tuple[int, int, int], route: str) -> str:
    """The version's own config with its socket replaced by three: `ports[0]` to the router
    Worker (a service binding to the Worker), `ports[1]` straight to the Worker, `ports[2]`
    to a Worker that only passes the request on (`PASS_JS`: the hop without the routing)."""
    sockets = (
        "  sockets = [\n"
        f'    (name = "passed", address = "127.0.0.1:{ports[2]}", http = (), '
        'service = "cfai~pass"),\n'
        f'    (name = "routed", address = "127.0.0.1:{ports[0]}", http = (), '
        'service = "cfai~router"),\n'
        f'    (name = "direct", address = "127.0.0.1:{ports[1]}", http = (), '
        f'service = "{service}"),\n'
        "  ],\n"
    )
    text, count = re.subn(r"  sockets = \[\n.*?\n  \],\n", sockets, version_config, flags=re.S)
    if count != 1:
        raise RuntimeError("the version's workerd config has no sockets block to replace")
    text = text.replace(
        "  services = [\n",
        '  services = [\n    (name = "cfai~router", worker = .cfaiRouter),\n'
        '    (name = "cfai~pass", worker = .cfaiPass),\n',
        1,
    )
    return text + (
        "const cfaiRouter :Workerd.Worker = (\n"
        '  modules = [(name = "router.js", esModule = embed "bench-router.js")],\n'
        '  compatibilityDate = "2025-09-01",\n'
        f'  bindings = [(name = "V1", service = "{service}"), '
        f'(name = "ROUTE", json = {json.dumps(route)})],\n'
        ");\n"
        "const cfaiPass :Workerd.Worker = (\n"
        '  modules = [(name = "pass.js", esModule = embed "bench-pass.js")],\n'
        '  compatibilityDate = "2025-09-01",\n'
        f'  bindings = [(name = "V1", service = "{service}")],\n'
        ");\n"
    )


def _python_router(
    work: Path, name: str, pythonpath: Path, upstream: str, port: int
) -> subprocess.Popen[bytes]:
    files = StateFiles(work / name)
    files.state_dir.mkdir(parents=True, exist_ok=True)
    version = VersionRoute(
        upstream=upstream, sha256="0" * 64, process="workerd", max_request_bytes=LIMIT
    )
    files.write_routes(
        Routes(
            workers={
                "w": WorkerRoute(
                    script_name="assistant", port=port, versions={"v1": version}, split={"v1": 100}
                )
            }
        )
    )
    argv = [sys.executable, "-m", "cfai.local.router", "--routes", str(files.routes_path)]
    env = {"PYTHONPATH": str(pythonpath)}
    return spawn(argv, work / f"{name}.log", env=env, cwd=pythonpath)


def _base_checkout(work: Path) -> Path | None:
    dest = work / "router-base"
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", BASE_REF, "cfai"], capture_output=True, timeout=60
    )
    if archive.returncode != 0:
        return None
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True, timeout=60)
    return dest


def _run(wrk: str, url: str, pids: list[int], seconds: int) -> dict[str, Any]:
    argv = [wrk, f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", url]
    before = [cpu_seconds(p) for p in pids]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=True)
    cpu = [cpu_seconds(p) - b for p, b in zip(pids, before, strict=True)]
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out.stdout)
    total = re.search(r"(\d+) requests in", out.stdout)
    if rps is None or total is None:
        raise RuntimeError(f"wrk printed no Requests/sec:\n{out.stdout[-500:]}")
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out.stdout)
    sock = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out.stdout
    )
    n = int(total.group(1))
    return {
        "rps": float(rps.group(1)),
        "cpu_us": [round(1e6 * c / max(n, 1), 1) for c in cpu],
        "errors": (int(bad.group(1)) if bad else 0) + (sum(map(int, sock.groups())) if sock else 0),
    }


def raw(port: int, data: bytes, timeout: float = 20) -> bytes:
    """Send `data` as is; what the server answers until it closes (or goes quiet)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    return out


def probe_workerd_edges(port: int, token: str) -> dict[str, str]:
    """What the router Worker's socket answers to the requests the Python router answers
    itself (status line, content type and the start of the body)."""
    big = 2 * LIMIT
    cases = {
        "unknown_method": b"FOO /x HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        "lowercase_method": b"get /x HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        "malformed_request_line": b"GET /x y HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        "duplicate_content_length": (
            b"POST /x HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\ncontent-length: 3\r\n"
            b"connection: close\r\n\r\n{}"
        ),
        "declared_over_limit": (
            f"POST /chat HTTP/1.1\r\nhost: x\r\ncontent-length: {big}\r\n"
            f"authorization: Bearer {token}\r\nconnection: close\r\n\r\n"
        ).encode(),
        "chunked_over_limit": (
            b"POST /chat HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n"
            + f"authorization: Bearer {token}\r\n".encode()
            + b"content-type: application/json\r\nconnection: close\r\n\r\n"
            + b"".join(f"{65536:x}\r\n".encode() + b"x" * 65536 + b"\r\n" for _ in range(32))
            + b"0\r\n\r\n"
        ),
    }
    found = {}
    for name, data in cases.items():
        answer = raw(port, data, timeout=10)
        head, _, body = answer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        kind = next(
            (
                h.split(":", 1)[1].strip()
                for h in lines[1:]
                if h.lower().startswith("content-type:")
            ),
            "-",
        )
        found[name] = f"{lines[0]} [{kind}] {body[:80]!r}" if answer else "(closed, no answer)"
    return found


def router_designs_bench(log: list[str], work: Path) -> list[Result]:
    wrk = find_wrk()
    if wrk is None:
        raise Skipped("wrk is not installed (make bench-tools installs it)")
    workerd = str(find_workerd(ROOT))
    project = _project_copy(work / "designs-project", no_limits)
    platform = LocalPlatform(project, "local")
    procs: dict[str, subprocess.Popen[bytes]] = {}
    runs: dict[str, list[dict[str, Any]]] = {}
    edges: dict[str, dict[str, str]] = {}
    try:
        token = platform.up().auth_token or ""
        route_table = platform.routes().workers["assistant"]
        vid, version = next(iter(route_table.versions.items()))
        upstream = version.upstream
        version_pid = platform.status().processes[version.process].pid
        route = json.dumps(
            {"script": "assistant", "split": {vid: 100}, "binding": {vid: "V1"}, "limit": LIMIT}
        )
        ports = {name: free_port() for name in ("a", "b", "c", "d", "e", "p")}
        base = _base_checkout(work)
        if base is not None:
            procs["a"] = _python_router(work, "router-a", base, upstream, ports["a"])
        procs["b"] = _python_router(work, "router-b", ROOT, upstream, ports["b"])
        front = work / "front"
        front.mkdir(exist_ok=True)
        (front / "router.js").write_text(ROUTER_JS, encoding="utf-8")
        (front / "config.capnp").write_text(_front_capnp(ports["c"], upstream, route), "utf-8")
        procs["c"] = spawn([workerd, "serve", "config.capnp"], work / "front.log", cwd=front)
        state = platform.state_dir
        version_config = (state / f"{version.process}.capnp").read_text(encoding="utf-8")
        (state / "bench-router.js").write_text(ROUTER_JS, encoding="utf-8")
        (state / "bench-pass.js").write_text(PASS_JS, encoding="utf-8")
        served = re.search(r'sockets = \[\n.*?service = ("[^"]*")', version_config, re.S)
        if served is None:
            raise RuntimeError("the version's workerd config has no socket")
        service = json.loads(served.group(1))
        same = _same_capnp(version_config, service, (ports["d"], ports["e"], ports["p"]), route)
        (state / "bench-same.capnp").write_text(same, encoding="utf-8")
        # The Worker's secrets come from the environment (the runtime passes them so); the
        # chat Worker's one is its bearer token.
        secrets = dict.fromkeys(re.findall(r'fromEnvironment = "([^"]+)"', same), token)
        procs["d"] = spawn(
            [workerd, "serve", "bench-same.capnp", "--experimental"],
            work / "same.log",
            env=secrets,
            cwd=state,
        )
        targets: dict[str, tuple[str, list[int]]] = {
            "direct": (f"http://{upstream}", [version_pid])
        }
        names = {
            "a": "a_python_base",
            "b": "b_python",
            "c": "c_front_workerd",
            "d": "d_same_workerd",
            "e": "e_same_direct",
            "p": "d0_same_passthrough",
        }
        for key, name in names.items():
            proc = procs.get("d" if key in "ep" else key)
            if proc is None:
                continue
            url = f"http://127.0.0.1:{ports[key]}"
            if not wait_http(f"{url}/health", proc, 30):
                raise RuntimeError(f"{name} did not answer; see the logs in {work}")
            # the hop's process, then the version's (d, e and p: one process does both)
            targets[name] = (url, [proc.pid] if key in "dep" else [proc.pid, version_pid])
        for url, pids in targets.values():  # warm-up: JIT, pools
            _run(wrk, f"{url}/health", pids, 1)
        for _ in range(ROUNDS):
            for name, (url, pids) in targets.items():
                runs.setdefault(name, []).append(_run(wrk, f"{url}/health", pids, SECONDS))
        edges["c_front_workerd"] = probe_workerd_edges(ports["c"], token)
        edges["d_same_workerd"] = probe_workerd_edges(ports["d"], token)
        edges["b_python"] = probe_workerd_edges(ports["b"], token)
    finally:
        for proc in procs.values():
            stop(proc)
        platform.down()
        with_state = platform.state_dir
        for leftover in ("bench-router.js", "bench-pass.js", "bench-same.capnp"):
            (with_state / leftover).unlink(missing_ok=True)
        shutil.rmtree(work / "router-base", ignore_errors=True)
    base_rounds = [r["rps"] for r in runs["direct"]]
    results = []
    summary: dict[str, Any] = {}
    for name, rs in runs.items():
        ratios = [r["rps"] / d for r, d in zip(rs, base_rounds, strict=True)]
        summary[name] = {
            "rps": statistics.median(r["rps"] for r in rs),
            "ratio_median": round(statistics.median(ratios), 3),
            "ratio_min": round(min(ratios), 3),
            "ratio_max": round(max(ratios), 3),
            "cpu_us_per_request": [
                round(statistics.median(r["cpu_us"][i] for r in rs), 1)
                for i in range(len(rs[0]["cpu_us"]))
            ],
            "errors": sum(r["errors"] for r in rs),
        }
    log.append(
        f"router designs (wrk -t{THREADS} -c{CONNECTIONS}, {SECONDS} s x {ROUNDS}, /health): "
        + "; ".join(
            f"{n} {s['rps']:.0f} rps ({s['ratio_median']}x, {s['ratio_min']}-{s['ratio_max']}) "
            f"cpu/req {s['cpu_us_per_request']} us"
            for n, s in summary.items()
        )
    )
    log.append("router designs, edge cases: " + json.dumps(edges))
    direct = summary["direct"]["rps"]
    for name, s in summary.items():
        if name == "direct":
            continue
        results.append(
            Result(
                f"wrk_health_{name}",
                s["rps"],
                direct,
                f"requests/s (GET /health; wrk -t{THREADS} -c{CONNECTIONS}, {SECONDS} s x {ROUNDS})",
                "ratio >= 0.83 (baseline: the same Worker on workerd directly)",
                "ratio>=",
                ROUTER_LIMIT,
                {**s, "edges": edges.get(name)},
            )
        )
    return results
