"""The local platform under load and abuse: dozens of simultaneous SSE streams, concurrent
writes with queries, malformed requests to the emulator, and a `down` that leaves nothing.

Load goes to a dedicated platform whose gateway has no rate limit (the session platform's
gateway allows 120 requests a minute, shared by every test); malformed requests go to the
session platform, which must keep serving after them."""

from __future__ import annotations

import json
import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from support.stack import local_stack

from cfai.config import load_file
from cfai.local import LocalPlatform
from cfai.local.services.frontdoor import BINDING_HEADER, BindingKey, BindingScope

REPO = Path(__file__).resolve().parents[2]


def unlimited_declaration(tmp: Path) -> Path:
    data = local_stack(tmp)
    del data["gateways"]["main"]["rate_limit"]
    path = tmp / "platform.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def unlimited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A platform of its own, gateway without rate limit (the outputs map)."""
    declaration = load_file(unlimited_declaration(tmp_path_factory.mktemp("unlimited")))
    platform = LocalPlatform(REPO, f"pytest-load-{os.getpid()}")
    try:
        yield platform.up(declaration, timeout=60).to_json()
    finally:
        platform.down()
        shutil.rmtree(platform.state_dir, ignore_errors=True)


def auth(outputs: dict[str, Any]) -> dict[str, str]:
    return {"authorization": f"Bearer {outputs['auth_token']}"}


def rest(outputs: dict[str, Any]) -> httpx.Client:
    a = outputs["api"]
    return httpx.Client(
        base_url=f"{a['base_url']}/accounts/{a['account_id']}",
        headers={"authorization": f"Bearer {a['token']}"},
        timeout=30,
    )


def emulator(outputs: dict[str, Any]) -> str:
    return str(outputs["api"]["base_url"]).removesuffix("/client/v4")


def test_forty_simultaneous_sse_chat_streams_all_complete(unlimited: dict[str, Any]) -> None:
    url = f"{unlimited['endpoints']['assistant']}/chat"

    def stream(i: int) -> list[str]:
        body = {"prompt": f"Tell me about stream {i} {uuid.uuid4()}", "stream": True}
        with (
            httpx.Client(timeout=60) as client,
            client.stream("POST", url, json=body, headers=auth(unlimited)) as r,
        ):
            assert r.status_code == 200, r.read()
            assert r.headers["content-type"].startswith("text/event-stream")
            return [line[6:] for line in r.iter_lines() if line.startswith("data: ")]

    with ThreadPoolExecutor(max_workers=40) as pool:
        results = list(pool.map(stream, range(40)))
    assert len(results) == 40
    for events in results:
        assert events[-1] == "[DONE]"
        payloads = [json.loads(e) for e in events[:-1]]
        assert payloads and not any("error" in p for p in payloads)
        assert "".join(p.get("response", "") for p in payloads).strip()


def test_concurrent_upserts_and_queries_lose_no_writes(unlimited: dict[str, Any]) -> None:
    index = f"load-{uuid.uuid4().hex[:8]}"
    writers, batches, per_batch = 8, 5, 20
    with rest(unlimited) as cf:
        created = cf.post("/vectorize/v2/indexes", json={"name": index, "config": {"dimensions": 32, "metric": "cosine"}})  # fmt: skip
        assert created.status_code == 201, created.text

        def write(w: int) -> int:
            with rest(unlimited) as c:
                for b in range(batches):
                    lines = [
                        json.dumps(
                            {
                                "id": f"w{w}-b{b}-{i}",
                                "values": [float(w + 1), float(b + 1), float(i + 1)] + [1.0] * 29,
                            }
                        )
                        for i in range(per_batch)
                    ]
                    r = c.post(
                        f"/vectorize/v2/indexes/{index}/upsert",
                        content="\n".join(lines),
                        headers={"content-type": "application/x-ndjson"},
                    )
                    assert r.status_code == 200 and r.json()["success"], r.text
            return batches * per_batch

        def query(q: int) -> int:
            with rest(unlimited) as c:
                for _ in range(batches):
                    r = c.post(f"/vectorize/v2/indexes/{index}/query", json={"vector": [1.0] * 32, "topK": 5})  # fmt: skip
                    assert r.status_code == 200 and r.json()["success"], r.text
            return 0

        with ThreadPoolExecutor(max_workers=16) as pool:
            jobs = [pool.submit(write, w) for w in range(writers)]
            jobs += [pool.submit(query, q) for q in range(writers)]
            written = sum(j.result() for j in jobs)
        info = cf.get(f"/vectorize/v2/indexes/{index}/info").json()["result"]
        assert info["vectorCount"] == written == writers * batches * per_batch
        cf.delete(f"/vectorize/v2/indexes/{index}")


def cf_error(r: httpx.Response, status: int) -> dict[str, Any]:
    """A v4 error envelope with `status`; its first error."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["success"] is False and body["result"] is None and body["messages"] == []
    assert isinstance(body["errors"][0]["code"], int) and body["errors"][0]["message"]
    return dict(body["errors"][0])


def test_bad_rest_requests_get_cloudflare_errors(local_platform: dict[str, Any]) -> None:
    with rest(local_platform) as cf:
        idx = local_platform["indexes"]["docs"]["name"]
        bad_json = cf.post(
            f"/vectorize/v2/indexes/{idx}/query",
            content=b"{not json",
            headers={"content-type": "application/json"},
        )
        assert cf_error(bad_json, 400)["code"] == 40026
        wrong_type = cf.post(
            f"/vectorize/v2/indexes/{idx}/insert",
            content=b"<xml/>",
            headers={"content-type": "application/xml"},
        )
        # Cloudflare refuses a write of another content type before reading it
        assert cf_error(wrong_type, 400) == {
            "code": 1005,
            "message": "vectorize.unknown_content_type",
        }
        unknown = cf.post("/vectorize/v2/indexes/no-such-index/query", json={"vector": [0.1] * 768})
        assert cf_error(unknown, 404)["code"] == 3000
        bad_create = cf.post("/vectorize/v2/indexes", content=b"[1,2", headers={"content-type": "application/json"})  # fmt: skip
        assert cf_error(bad_create, 400)["code"] in (3001, 40026)
        ai = cf.post("/ai/run/@cf/meta/llama-3.1-8b-instruct", content=b"{", headers={"content-type": "application/json"})  # fmt: skip
        assert cf_error(ai, 400)["code"] == 3003
        no_model = cf.post("/ai/run/@cf/nobody/nothing", json={"prompt": "x"})
        assert cf_error(no_model, 400)["code"] == 5007
        # Still serving, and answering correctly.
        ok = cf.get(f"/vectorize/v2/indexes/{idx}")
        assert ok.status_code == 200 and ok.json()["result"]["name"] == idx


def token(kind: str, index: str | None = None) -> dict[str, str]:
    """The binding token workerd's external service injects, minted with the session
    platform's key (its state directory is ``.cfai/pytest-<pid>``, see tests/conftest.py)."""
    key = BindingKey.read(REPO / ".cfai" / f"pytest-{os.getpid()}")
    return {BINDING_HEADER: key.mint(BindingScope(kind, "pytest", index))}


def test_bad_binding_requests_get_the_binding_error_shape(local_platform: dict[str, Any]) -> None:
    base = emulator(local_platform)
    idx = local_platform["indexes"]["docs"]["name"]
    with httpx.Client(base_url=base, timeout=10) as raw:
        vec = {"host": "vector-search", **token("vectorize", idx)}
        r = raw.post("/query", content=b"{nope", headers={**vec, "content-type": "application/json"})  # fmt: skip
        assert r.status_code == 400 and r.json()["code"] == 40026 and r.json()["error"]
        r = raw.post("/insert", content=b"\x00\x01", headers={**vec, "content-type": "application/x-ndjson"})  # fmt: skip
        assert r.status_code == 400 and r.json()["code"] == 40023
        r = raw.get(
            "/info", headers={"host": "vector-search", **token("vectorize", "no-such-index")}
        )
        assert r.status_code == 404 and r.json()["code"] == 3000
        ai = {
            "host": "workers-binding.ai",
            "cf-consn-model-id": "@cf/meta/llama-3.1-8b-instruct",
            **token("ai"),
        }
        r = raw.post("/run?version=3", content=b"{", headers={**ai, "content-type": "application/json"})  # fmt: skip
        assert r.status_code == 400 and r.headers["content-type"] == "application/json"
        assert r.json()["internalCode"] == 3003 and r.json()["name"] == "InferenceUpstreamError"
        r = raw.post("/run?version=3", content=b"hello", headers={**ai, "content-type": "text/plain"})  # fmt: skip
        assert r.status_code == 400 and r.json()["internalCode"] == 3003
        r = raw.post("/nowhere", headers={"host": "workers-binding.ai"})
        assert r.status_code == 404 and r.json()["success"] is False
        assert raw.get("/__cfai/health").json()["ok"] is True
    # The Workers behind those bindings still answer.
    r = httpx.post(
        f"{local_platform['endpoints']['kb']}/query",
        json={"question": "How does gateway caching work?"},
        headers=auth(local_platform),
        timeout=30,
    )
    assert r.status_code == 200, r.text


def refused(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_down_leaves_no_process_and_no_listening_port(tmp_path: Path) -> None:
    platform = LocalPlatform(REPO, f"pytest-down-{os.getpid()}")
    try:
        outputs = platform.up(load_file(unlimited_declaration(tmp_path)), timeout=60).to_json()
        pids = [p.pid for p in platform.status().processes.values()]
        ports = [httpx.URL(u).port for u in outputs["endpoints"].values()]
        ports.append(httpx.URL(outputs["api"]["base_url"]).port)
        assert all(p is not None and not refused(p) for p in ports)
    finally:
        platform.down()
        shutil.rmtree(platform.state_dir, ignore_errors=True)
    for pid in pids:
        stat = Path(f"/proc/{pid}/stat")
        assert not stat.exists() or stat.read_text().rsplit(")", 1)[-1].split()[0] == "Z"
    assert all(refused(p) for p in ports if p is not None)
