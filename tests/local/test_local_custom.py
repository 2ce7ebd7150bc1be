"""`custom` Workers on the local platform: the user's own module, byte-for-byte, with exactly
the bindings and compatibility flags it declares (like the templated Workers)."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from support.stack import local_stack

from cfai.config import load_file
from cfai.local import LocalPlatform

REPO = Path(__file__).resolve().parents[2]

# Reports what the runtime gave it, never a secret's value.
# An app in the shape of the AI SDK's examples: one API route, 404 for everything else,
# `/health` included (Cloudflare asks no route of a Worker).
APP_JS = """\
export default {
  async fetch(request) {
    const { pathname } = new URL(request.url);
    if (pathname === "/api/ping") return Response.json({ pong: true });
    if (pathname === "/ready") return new Response(null, { status: 204 });
    return new Response("not found", { status: 404 });
  },
};
"""

PROBE_JS = """\
export default {
  async fetch(request, env) {
    const out = { keys: Object.keys(env).sort(), process: typeof process, buffer: typeof globalThis.Buffer };
    if (env.AI) out.ai_run = typeof env.AI.run;
    if (env.VECTORIZE) out.dimensions = (await env.VECTORIZE.describe()).dimensions;
    if (env.GATEWAY_ID) out.gateway = env.GATEWAY_ID;
    if (env.AUTH_TOKEN) out.token = typeof env.AUTH_TOKEN;
    return Response.json(out);
  },
};
"""


@pytest.fixture(scope="module")
def custom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    src = tmp_path_factory.mktemp("custom")
    (src / "src").mkdir()
    shutil.copy(REPO / "src" / "legacy.js", src / "src" / "legacy.js")
    (src / "src" / "probe.js").write_text(PROBE_JS)
    (src / "src" / "app.js").write_text(APP_JS)
    data = local_stack(src)
    staging = yaml.safe_load((REPO / "Pulumi.staging.yaml").read_text())["config"]
    legacy = staging["cfai:platform"]["workers"]["legacy"]
    legacy["bindings"]["vars"] = {"MODE": "local-test"}
    data["workers"] = {
        "legacy": legacy,
        "probe": {
            "kind": "custom",
            "main": "src/probe.js",
            "compatibility_flags": ["nodejs_compat"],
            "bindings": {
                "ai": "AI",
                "vectorize": {"binding": "VECTORIZE", "index": "docs"},
                "gateway": {"binding": "GATEWAY_ID", "gateway": "main"},
                "vars": {"FLAVOR": "node"},
                "auth_token": "AUTH_TOKEN",
            },
        },
        "bare": {
            "kind": "custom",
            "main": "src/probe.js",
            "bindings": {"vars": {"FLAVOR": "plain"}},
        },
        "app": {"kind": "custom", "main": "src/app.js"},
        "declared": {
            "kind": "custom",
            "main": "src/app.js",
            "health_path": "/ready",
            "health_status": 204,
        },
    }
    (src / "platform.yaml").write_text(yaml.safe_dump(data))
    platform = LocalPlatform(REPO, f"pytest-custom-{os.getpid()}", source_dir=src)
    try:
        yield platform.up(load_file(src / "platform.yaml"), timeout=60).to_json()
    finally:
        platform.down()
        shutil.rmtree(platform.state_dir, ignore_errors=True)


def probe(outputs: dict[str, Any], worker: str) -> dict[str, Any]:
    r = httpx.get(outputs["endpoints"][worker], timeout=10)
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_custom_worker_gets_exactly_its_declared_bindings(custom: dict[str, Any]) -> None:
    full = probe(custom, "probe")
    assert full["keys"] == ["AI", "AUTH_TOKEN", "FLAVOR", "GATEWAY_ID", "VECTORIZE"]
    assert full["ai_run"] == "function" and full["token"] == "string"
    assert full["dimensions"] == 768  # the declared index's, through the real binding class
    assert full["gateway"] == custom["gateways"]["main"]["id"]
    assert probe(custom, "bare")["keys"] == ["FLAVOR"]


def test_custom_worker_runs_with_exactly_its_compatibility_flags(custom: dict[str, Any]) -> None:
    with_flag, without = probe(custom, "probe"), probe(custom, "bare")
    assert (with_flag["process"], with_flag["buffer"]) == ("object", "function")
    assert (without["process"], without["buffer"]) == ("undefined", "undefined")


def test_legacy_worker_serves_its_mode_and_summarizes_through_the_gateway(
    custom: dict[str, Any],
) -> None:
    legacy = custom["endpoints"]["legacy"]
    health = httpx.get(f"{legacy}/health", timeout=10).json()
    assert health == {"worker": "legacy", "kind": "custom", "mode": "local-test"}
    assert httpx.post(f"{legacy}/summarize", json={"text": "x"}, timeout=10).status_code == 401
    text = f"The {uuid.uuid4().hex[:8]} release adds gateway caching and faster vector search."
    headers = {"authorization": f"Bearer {custom['auth_token']}"}
    answers = [
        httpx.post(f"{legacy}/summarize", json={"text": text}, headers=headers, timeout=30)
        for _ in range(2)
    ]
    assert all(a.status_code == 200 for a in answers), answers[0].text
    assert answers[0].json()["summary"] and answers[0].json() == answers[1].json()
    a = custom["api"]
    gateway = custom["gateways"]["main"]["id"]
    logs = httpx.get(
        f"{a['base_url']}/accounts/{a['account_id']}/ai-gateway/gateways/{gateway}/logs",
        headers={"authorization": f"Bearer {a['token']}"},
        timeout=10,
    ).json()["result"]
    mine = [log for log in logs if log["model"] == "@cf/meta/llama-3.1-8b-instruct"]
    # Through env.AI with {gateway: {id: GATEWAY_ID}}: logged, and the repeat is a cache hit.
    assert sorted(log["cached"] for log in mine) == [False, True]


def test_a_custom_worker_without_a_health_route_comes_up(custom: dict[str, Any]) -> None:
    # `local up` returned, so both were ready: `app` by answering at all (a 404 on `/`),
    # `declared` by its own probe.
    for worker in ("app", "declared"):
        url = custom["endpoints"][worker]
        assert httpx.get(f"{url}/api/ping", timeout=10).json() == {"pong": True}
        assert httpx.get(f"{url}/health", timeout=10).status_code == 404
    assert httpx.get(f"{custom['endpoints']['declared']}/ready", timeout=10).status_code == 204
