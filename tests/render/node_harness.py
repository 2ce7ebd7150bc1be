"""Run a rendered Worker module in Node with stub bindings and call its `fetch`.

`run_worker` writes the module and a harness into a tmp dir, runs `node` on a scenario
(requests + stub behaviour) and returns what the Worker answered and what reached the
stubs. `serve_worker` serves the module over HTTP (for the official `openai` client).

Stub `env.AI.run(model, inputs, options)` records every call and plays actions, first from
`ai_queue` (in order), then `ai_default[model]`, then a canned chat answer. Actions:
    {"throw": "3040: Capacity temporarily exceeded"}   reject with Error(message)
    {"json": {...}}                                     resolve an object
    {"sse": ["data: ...\\n\\n", ...]}                   resolve a ReadableStream of those chunks
    {"bytes_b64": "..."}                                resolve a ReadableStream of bytes
    {"embed": 4}                                        {shape, data}: one 4-dim vector per text
`env.VECTORIZE` is an in-memory index (upsert/query by dot product/deleteByIds) that records
every call. `env.AI.gateway(id).patchLog` records its arguments (and throws an error named
`feedback_throw.name` when the scenario has one).
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

HARNESS = r"""
import { readFileSync } from "node:fs";
import http from "node:http";

const [, , modulePath, scenarioPath, mode] = process.argv;
const worker = (await import(modulePath)).default;
const scenario = JSON.parse(readFileSync(scenarioPath, "utf8"));
const calls = { ai: [], vectorize: [], feedback: [] };

function streamOf(chunks) {
  return new ReadableStream({
    start(controller) {
      for (const c of chunks) controller.enqueue(c);
      controller.close();
    },
  });
}

function play(action, inputs) {
  if (action.throw !== undefined) throw new Error(action.throw);
  if (action.json !== undefined) return structuredClone(action.json);
  if (action.sse !== undefined) return streamOf(action.sse.map((s) => new TextEncoder().encode(s)));
  if (action.bytes_b64 !== undefined) return streamOf([Uint8Array.from(Buffer.from(action.bytes_b64, "base64"))]);
  if (action.embed !== undefined) {
    const texts = inputs.text;
    const data = texts.map((t, i) => Array.from({ length: action.embed }, (_, d) => (d === 0 ? 1 : (t.length + i + d) % 7)));
    return { shape: [texts.length, action.embed], data };
  }
  throw new Error("bad stub action " + JSON.stringify(action));
}

// What the binding returns with `returnRawResponse`: the backend's HTTP answer, with AI
// Gateway's headers; a failure is an error body ({internalCode, description} for
// "<code>: <description>"), as Workers AI sends it (workerd ai-api.ts `_parseError`).
function rawAnswer(action, inputs, logId) {
  const headers = { "cf-aig-cache-status": action.cache_status || scenario.cache_status || "MISS" };
  if (logId) headers["cf-aig-log-id"] = logId;
  if (action.throw !== undefined) {
    const coded = /^(\d+): ([\s\S]*)$/.exec(action.throw);
    const body = coded
      ? JSON.stringify({ internalCode: Number(coded[1]), description: coded[2], name: "InferenceUpstreamError" })
      : action.throw;
    return new Response(body, { status: coded && coded[1] === "3040" ? 429 : 400, headers });
  }
  const result = play(action, inputs);
  if (result instanceof ReadableStream) {
    const type = action.sse !== undefined ? "text/event-stream" : "application/octet-stream";
    return new Response(result, { headers: { ...headers, "content-type": type } });
  }
  return new Response(JSON.stringify(result), { headers: { ...headers, "content-type": "application/json" } });
}

const queue = [...(scenario.ai_queue || [])];
let logCounter = 0;
const AI = {
  aiGatewayLogId: null,
  async run(model, inputs, options) {
    calls.ai.push({ model, inputs: JSON.parse(JSON.stringify(inputs)), options: options === undefined ? null : options, nargs: arguments.length });
    if (options && options.gateway) this.aiGatewayLogId = "log-" + ++logCounter;
    const action = queue.length ? queue.shift() : (scenario.ai_default || {})[model] || { json: { response: "ok", usage: { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 } } };
    if (options && options.returnRawResponse) return rawAnswer(action, inputs, this.aiGatewayLogId);
    return play(action, inputs);
  },
  gateway(id) {
    return {
      async patchLog(logId, body) {
        calls.feedback.push({ id, logId, body });
        if (scenario.feedback_throw) {
          const err = new Error(scenario.feedback_throw.message);
          err.name = scenario.feedback_throw.name;
          throw err;
        }
      },
    };
  },
};

const store = new Map();
const VECTORIZE = {
  async upsert(vectors) {
    calls.vectorize.push({ op: "upsert", vectors: JSON.parse(JSON.stringify(vectors)) });
    if (scenario.upsert_throw) throw new Error(scenario.upsert_throw);
    for (const v of vectors) store.set(v.id, v);
    return { mutationId: "m-" + calls.vectorize.length };
  },
  async deleteByIds(ids) {
    calls.vectorize.push({ op: "deleteByIds", ids: [...ids] });
    for (const id of ids) store.delete(id);
    return { mutationId: "m-" + calls.vectorize.length };
  },
  async query(vector, options) {
    calls.vectorize.push({ op: "query", vector: [...vector], options });
    if (scenario.vectorize_throw) throw new Error(scenario.vectorize_throw);
    const dot = (a, b) => a.reduce((s, x, i) => s + x * b[i], 0);
    const matches = [...store.values()]
      .map((v) => ({ id: v.id, score: dot(vector, v.values), metadata: v.metadata }))
      .sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : 1))
      .slice(0, options.topK);
    return { count: matches.length, matches };
  },
};

const env = { AI, VECTORIZE, ...(scenario.env || {}) };

async function call(r) {
  const init = { method: r.method, headers: r.headers || {} };
  if (r.body_b64 !== undefined) init.body = Buffer.from(r.body_b64, "base64");
  if (r.body_stream !== undefined) {
    init.body = streamOf([new TextEncoder().encode(r.body_stream)]);
    init.duplex = "half";
  }
  const response = await worker.fetch(new Request("http://worker.test" + r.path, init), env, {});
  const bytes = Buffer.from(await response.arrayBuffer());
  return {
    status: response.status,
    headers: Object.fromEntries(response.headers),
    body_b64: bytes.toString("base64"),
  };
}

if (mode === "serve") {
  const server = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const body = Buffer.concat(chunks);
    const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)]));
    const init = { method: req.method, headers };
    if (body.length) init.body = body;
    const response = await worker.fetch(new Request("http://worker.test" + req.url, init), env, {});
    res.writeHead(response.status, Object.fromEntries(response.headers));
    if (response.body) for await (const c of response.body) res.write(c);
    res.end();
  });
  server.listen(0, "127.0.0.1", () => console.log(JSON.stringify({ port: server.address().port })));
} else {
  const responses = [];
  for (const r of scenario.requests) responses.push(await call(r));
  process.stdout.write(JSON.stringify({ responses, calls }));
}
"""


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    method: str,
    path: str,
    body: Any = None,
    *,
    token: str | None = None,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
) -> dict[str, Any]:
    """One request of a scenario: `body` is sent as JSON, `raw` as bytes."""
    h = dict(headers or {})
    if token is not None:
        h["authorization"] = f"Bearer {token}"
    out: dict[str, Any] = {"method": method, "path": path, "headers": h}
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    if data is not None:
        h.setdefault("content-type", "application/json")
        out["body_b64"] = base64.b64encode(data).decode()
    return out


def _write(tmp: Path, source: str, scenario: dict[str, Any]) -> tuple[Path, Path, Path]:
    tmp.mkdir(parents=True, exist_ok=True)
    module, harness, data = tmp / "worker.mjs", tmp / "harness.mjs", tmp / "scenario.json"
    module.write_text(source, encoding="utf-8")
    harness.write_text(HARNESS, encoding="utf-8")
    data.write_text(json.dumps(scenario), encoding="utf-8")
    return module, harness, data


def node() -> str:
    """The `node` executable, or a failure saying what to install (not a raw
    FileNotFoundError from subprocess)."""
    found = shutil.which("node")
    if found is None:
        pytest.fail(
            "node (Node.js 20 or newer) is not on PATH: these tests run the rendered Workers in "
            "Node; install Node.js and npm (`make setup` checks for both)",
            pytrace=False,
        )
    return found


def run_worker(
    tmp: Path, source: str, scenario: dict[str, Any]
) -> tuple[list[Reply], dict[str, Any]]:
    """Play `scenario["requests"]` against the module; return replies and recorded calls."""
    module, harness, data = _write(tmp, source, scenario)
    proc = subprocess.run(
        [node(), str(harness), str(module), str(data)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    replies = [
        Reply(r["status"], r["headers"], base64.b64decode(r["body_b64"])) for r in out["responses"]
    ]
    return replies, out["calls"]


@contextmanager
def serve_worker(tmp: Path, source: str, scenario: dict[str, Any]) -> Iterator[str]:
    """Serve the module on 127.0.0.1; yields its base URL."""
    module, harness, data = _write(tmp, source, scenario)
    proc = subprocess.Popen(
        [node(), str(harness), str(module), str(data), "serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, proc.stderr.read() if proc.stderr else "node exited"
        yield f"http://127.0.0.1:{json.loads(line)['port']}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
