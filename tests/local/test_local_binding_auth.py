"""Bindings reach only their own routes, through workerd: custom Workers try to use their
bindings' connection to the emulator for something else.

Reproductions from issue 11: "a Worker with only an ai binding reaches every emulator route"
(``env.AI.fetch`` to ``/__cfai/reset``, to Vectorize's ``/upsert`` naming an index in
``x-cfai-index``, to the REST API) and "admin route without a token" /
"binding routes without a secret" as a web page or local process sends them (plain HTTP to
the emulator's port). Only HTTP is used, so the same tests run against any emulator build.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
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
LLAMA = "@cf/meta/llama-3.1-8b-instruct"
OTHER = "local-other"

# Only an `ai` binding; it tries every other route through it.
AI_ONLY_JS = """\
export default {
  async fetch(request, env) {
    if (new URL(request.url).pathname === "/health") return Response.json({ ok: true });
    const out = {};
    const attempt = async (name, target, init) => {
      const r = await env.AI.fetch(target, init);
      out[name] = { status: r.status, body: await r.text() };
    };
    const line = JSON.stringify({ id: "planted", values: Array(768).fill(0.5), metadata: { text: "INJECTED" } });
    const ndjson = { "content-type": "application/x-ndjson" };
    await attempt("reset", "http://x/__cfai/reset", { method: "POST" });
    await attempt("reset_page", "http://127.0.0.1/__cfai/reset", {
      method: "POST", headers: { "content-type": "text/plain", origin: "http://evil.example" }, body: "x" });
    await attempt("upsert", "http://vector-search/upsert", {
      method: "POST", headers: { ...ndjson, "x-cfai-index": env.OTHER }, body: line });
    await attempt("upsert_forged", "http://vector-search/upsert", {
      method: "POST", headers: { ...ndjson, "x-cfai-index": env.OTHER, "cf-cfai-binding": "v1.forged.mac" }, body: line });
    await attempt("rest", `http://x/client/v4/accounts/${env.ACCOUNT}/vectorize/v2/indexes`, {});
    out.run = (await env.AI.run(env.MODEL, { prompt: "hi" })).response.length > 0;
    return Response.json(out);
  },
};
"""

# A `vectorize` binding on docs; it uses the binding's own fetcher naming another index.
VECTOR_JS = """\
export default {
  async fetch(request, env) {
    if (new URL(request.url).pathname === "/health") return Response.json({ ok: true });
    const fetcher = env.VECTORIZE.fetcher;
    const out = { fetcher: typeof fetcher };
    const line = JSON.stringify({ id: "planted", values: Array(768).fill(0.5) });
    const r = await fetcher.fetch("http://vector-search/upsert", {
      method: "POST", headers: { "content-type": "application/x-ndjson", "x-cfai-index": env.OTHER }, body: line });
    out.upsert = r.status;
    out.reset = (await fetcher.fetch("http://x/__cfai/reset", { method: "POST" })).status;
    out.dimensions = (await env.VECTORIZE.describe()).dimensions;
    return Response.json(out);
  },
};
"""


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    src = tmp_path_factory.mktemp("binding-auth")
    (src / "src").mkdir()
    (src / "src" / "ai_only.js").write_text(AI_ONLY_JS)
    (src / "src" / "vector.js").write_text(VECTOR_JS)
    data = local_stack(src)
    del data["gateways"]["main"]["rate_limit"]
    data["indexes"]["other"] = {"dimensions": 768, "metric": "cosine"}
    account = data["account_id"]
    data["workers"] = {
        "aionly": {
            "kind": "custom",
            "main": "src/ai_only.js",
            "bindings": {"ai": "AI", "vars": {"OTHER": OTHER, "ACCOUNT": account, "MODEL": LLAMA}},
        },
        "vector": {
            "kind": "custom",
            "main": "src/vector.js",
            "bindings": {
                "vectorize": {"binding": "VECTORIZE", "index": "docs"},
                "vars": {"OTHER": OTHER},
            },
        },
    }
    (src / "platform.yaml").write_text(yaml.safe_dump(data))
    platform = LocalPlatform(REPO, f"pytest-binding-auth-{os.getpid()}", source_dir=src)
    try:
        out = platform.up(load_file(src / "platform.yaml"), timeout=60).to_json()
        assert out["indexes"]["other"]["name"] == OTHER
        out["state_dir"] = str(platform.state_dir)
        yield out
    finally:
        platform.down()
        shutil.rmtree(platform.state_dir, ignore_errors=True)


def rest(outputs: dict[str, Any]) -> httpx.Client:
    a = outputs["api"]
    return httpx.Client(
        base_url=f"{a['base_url']}/accounts/{a['account_id']}",
        headers={"authorization": f"Bearer {a['token']}"},
        timeout=30,
    )


def emulator(outputs: dict[str, Any]) -> str:
    return str(outputs["api"]["base_url"]).removesuffix("/client/v4")


def planted(outputs: dict[str, Any], index: str) -> list[Any]:
    with rest(outputs) as cf:
        r = cf.post(f"/vectorize/v2/indexes/{index}/get_by_ids", json={"ids": ["planted"]})
        assert r.status_code == 200, r.text
        return list(r.json()["result"])


def gateway_exists(outputs: dict[str, Any]) -> bool:
    with rest(outputs) as cf:
        gid = outputs["gateways"]["main"]["id"]
        return cf.get(f"/ai-gateway/gateways/{gid}").status_code == 200


def test_an_ai_binding_reaches_only_the_ai_routes(outputs: dict[str, Any]) -> None:
    r = httpx.get(outputs["endpoints"]["aionly"], timeout=30)
    assert r.status_code == 200, r.text
    seen = r.json()
    assert seen["run"] is True  # the binding itself works
    assert seen["reset"]["status"] == seen["reset_page"]["status"] == 401
    # workerd replaced the Worker's own binding header with its binding's token: an `ai`
    # token, which a Vectorize route refuses whatever index the request names.
    assert seen["upsert"]["status"] == seen["upsert_forged"]["status"] == 403
    assert seen["rest"]["status"] == 401
    assert gateway_exists(outputs)
    assert (
        planted(outputs, OTHER) == [] and planted(outputs, outputs["indexes"]["docs"]["name"]) == []
    )


def test_a_vectorize_binding_acts_only_on_its_own_index(outputs: dict[str, Any]) -> None:
    r = httpx.get(outputs["endpoints"]["vector"], timeout=30)
    assert r.status_code == 200, r.text
    seen = r.json()
    assert seen["fetcher"] == "object" and seen["dimensions"] == 768
    assert seen["upsert"] == 200 and seen["reset"] == 401
    # The header named the other index; the binding is for docs, so docs got the vector.
    assert planted(outputs, OTHER) == []
    assert [v["id"] for v in planted(outputs, outputs["indexes"]["docs"]["name"])] == ["planted"]
    assert gateway_exists(outputs)


def test_a_web_page_cannot_reset_the_emulator(outputs: dict[str, Any]) -> None:
    r = httpx.post(
        f"{emulator(outputs)}/__cfai/reset",
        content=b"x",
        headers={"origin": "http://evil.example", "content-type": "text/plain"},
        timeout=10,
    )
    assert r.status_code in (401, 403) and r.json()["success"] is False
    assert gateway_exists(outputs)
    r = httpx.get(outputs["endpoints"]["vector"], timeout=30)  # the Workers still serve
    assert r.status_code == 200, r.text


def test_a_local_process_cannot_use_the_binding_routes(outputs: dict[str, Any]) -> None:
    base = emulator(outputs)
    line = json.dumps({"id": "evil#0", "values": [0.5] * 768, "metadata": {"text": "INJECTED"}})
    vec = {"host": "vector-search", "x-cfai-index": OTHER}
    calls = [
        ("POST", "/upsert", {**vec, "content-type": "application/x-ndjson"}, line),
        ("POST", "/getByIds", vec, json.dumps({"ids": ["evil#0"]})),
        ("POST", "/deleteByIds", vec, json.dumps({"ids": ["evil#0"]})),
        ("POST", "/query", vec, json.dumps({"vector": [0.5] * 768})),
    ]
    ai = {"host": "workers-binding.ai", "cf-consn-model-id": LLAMA}
    gid = outputs["gateways"]["main"]["id"]
    run = json.dumps({"inputs": {"prompt": "x"}, "options": {"gateway": {"id": gid}}})
    calls += [
        ("POST", "/run?version=3", ai, run),
        ("POST", "/ai-gateway/run?version=3", ai, run),
        ("PATCH", f"/ai-gateway/gateways/{gid}/logs/01ANY", ai, json.dumps({"feedback": -1})),
        ("GET", f"/ai-gateway/gateways/{gid}/url/workers-ai", ai, None),
    ]
    with httpx.Client(base_url=base, timeout=30) as raw:
        for method, path, headers, body in calls:
            r = raw.request(method, path, headers=headers, content=body)
            assert r.status_code == 401, (path, r.status_code, r.text)
    assert planted(outputs, OTHER) == []
    with rest(outputs) as cf:
        r = cf.post(f"/vectorize/v2/indexes/{OTHER}/get_by_ids", json={"ids": ["evil#0"]})
        assert r.json()["result"] == []


def test_the_binding_secret_lives_in_private_files(outputs: dict[str, Any]) -> None:
    state = Path(outputs["state_dir"])
    configs = sorted(state.glob("workerd-*.capnp"))  # one per running version
    assert len(configs) == len(outputs["workers"])
    assert all("injectRequestHeaders" in c.read_text() for c in configs)
    assert (state / "binding.key").is_file()
    for path in state.iterdir():
        if path.suffix == ".capnp" or path.name == "binding.key":
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert not any(outputs["api"]["token"] in c.read_text() for c in configs)
