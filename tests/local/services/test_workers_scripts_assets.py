"""The assets upload session of the emulated Workers scripts API, without a runtime (what
runs: tests/local/test_local_assets.py, wrangler: tests/parity/test_parity_assets_wrangler.py):
a manifest answered with the missing hashes in buckets, files taken only with the session
token and only when in its manifest, the completion token once all arrived, a script upload
naming it (or keeping the previous assets), and Cloudflare's envelope for every refusal."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from cfai.local.services import EmulatorContext, WorkersScriptsService

ACCOUNT = "a" * 32
TOKEN = "test-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}
V4 = f"/client/v4/accounts/{ACCOUNT}/workers"
FILES = {"/index.html": b"<h1>hi</h1>", "/app.js": b"console.log(1)"}


def _hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


MANIFEST = {path: {"hash": _hash(data), "size": len(data)} for path, data in FILES.items()}


def _form(parts: list[tuple[str, str, bytes]]) -> tuple[bytes, dict[str, str]]:
    out = b""
    for name, kind, data in parts:
        head = f'--B\r\nContent-Disposition: form-data; name="{name}"; filename="{name}"\r\n'
        out += (head + f"Content-Type: {kind}\r\n\r\n").encode() + data + b"\r\n"
    return out + b"--B--\r\n", {"content-type": "multipart/form-data; boundary=B"}


@pytest.fixture
def client(tmp_path: Path, serve: Callable[..., Starlette]) -> Iterator[TestClient]:
    ctx = EmulatorContext(state_dir=tmp_path, account_id=ACCOUNT, api_token=TOKEN)
    service = WorkersScriptsService(ctx)
    try:
        yield TestClient(serve(ctx, service))
    finally:
        service.close()


def _session(client: TestClient, manifest: Any = MANIFEST) -> Any:
    return client.post(f"{V4}/scripts/site/assets-upload-session", headers=AUTH,
                       json={"manifest": manifest})  # fmt: skip


def _upload(client: TestClient, token: str, names: list[str]) -> Any:
    by_hash = {_hash(d): d for d in FILES.values()}
    body, headers = _form([(h, "text/html", base64.b64encode(by_hash[h])) for h in names])
    return client.post(f"{V4}/assets/upload?base64=true", content=body,
                       headers={**headers, "authorization": f"Bearer {token}"})  # fmt: skip


def _script(client: TestClient, **meta: Any) -> Any:
    """wrangler's framing: the metadata as a plain field, then the module (if any)."""
    metadata = json.dumps({"compatibility_date": "2025-01-01", **meta}).encode()
    body = b'--B\r\nContent-Disposition: form-data; name="metadata"\r\n\r\n' + metadata
    body += b"\r\n"
    if meta.get("main_module"):
        js = b"export default { fetch() { return new Response('hi'); } };"
        body += (
            b'--B\r\nContent-Disposition: form-data; name="index.js"; filename="index.js"\r\n'
            b"Content-Type: application/javascript+module\r\n\r\n" + js + b"\r\n"
        )
    return client.put(f"{V4}/scripts/site", content=body + b"--B--\r\n",
                      headers={**AUTH, "content-type": "multipart/form-data; boundary=B"})  # fmt: skip


def _complete(client: TestClient) -> str:
    session = _session(client).json()["result"]
    done = _upload(client, session["jwt"], [h for b in session["buckets"] for h in b])
    assert done.status_code == 201
    return str(done.json()["result"]["jwt"])


def test_a_session_lists_missing_files_then_completes(client: TestClient) -> None:
    r = _session(client)
    assert r.status_code == 200 and r.json()["success"] is True
    session = r.json()["result"]
    assert sorted(h for b in session["buckets"] for h in b) == sorted(
        e["hash"] for e in MANIFEST.values()
    )
    first, second = (e["hash"] for e in MANIFEST.values())
    partial = _upload(client, session["jwt"], [first])
    assert partial.status_code == 202 and partial.json()["result"] == {}
    done = _upload(client, session["jwt"], [second])
    assert done.status_code == 201 and done.json()["result"]["jwt"]
    # Every file is stored now: a new session needs nothing, its token completes at once.
    again = _session(client).json()["result"]
    assert again["buckets"] == [] and again["jwt"]


def test_uploads_need_the_session_token_not_the_api_token(client: TestClient) -> None:
    _session(client)
    refused = _upload(client, TOKEN, [MANIFEST["/app.js"]["hash"]])
    assert refused.status_code == 401
    assert refused.json()["success"] is False and refused.json()["errors"][0]["code"] == 10000


def test_a_file_outside_the_manifest_is_refused(client: TestClient) -> None:
    jwt = _session(client, {"/index.html": MANIFEST["/index.html"]}).json()["result"]["jwt"]
    r = _upload(client, jwt, [MANIFEST["/app.js"]["hash"]])
    assert r.status_code == 400 and "not in this upload session's manifest" in r.text


@pytest.mark.parametrize(
    ("manifest", "why"),
    [
        ({}, "manifest: expected an object"),
        ({"index.html": {"hash": "0" * 32, "size": 1}}, "is not an absolute path"),
        ({"/a": {"hash": "xyz", "size": 1}}, "expected 32 hexadecimal characters"),
        ({"/a": {"hash": "0" * 32, "size": 26 * 1024 * 1024}}, "(25 MiB)"),
    ],
)
def test_bad_manifests_are_refused_in_cloudflares_shape(
    client: TestClient, manifest: Any, why: str
) -> None:
    r = _session(client, manifest)
    assert r.status_code == 400
    error = r.json()["errors"][0]
    assert error["code"] == 10021 and why in error["message"]


def test_a_script_upload_takes_the_completion_token(client: TestClient) -> None:
    jwt = _complete(client)
    binding = [{"type": "assets", "name": "ASSETS"}]
    r = _script(client, main_module="index.js", bindings=binding,
                assets={"jwt": jwt, "config": {"not_found_handling": "404-page"}})  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["result"]["has_assets"] is True
    settings = client.get(f"{V4}/scripts/site/settings", headers=AUTH).json()["result"]
    assert {"type": "assets", "name": "ASSETS"} in settings["bindings"]
    # keep_assets: a new version with the same files, no token needed.
    kept = _script(client, main_module="index.js", keep_assets=True)
    assert kept.status_code == 200 and kept.json()["result"]["has_assets"] is True


def test_a_static_assets_only_worker_is_taken(client: TestClient) -> None:
    r = _script(client, assets={"jwt": _complete(client)})
    assert r.status_code == 200, r.text
    assert r.json()["result"]["has_modules"] is False


@pytest.mark.parametrize(
    ("meta", "why"),
    [
        ({"assets": {"jwt": "made-up"}}, "assets.jwt: not a completion token"),
        ({"bindings": [{"type": "assets", "name": "A"}]}, "needs assets uploaded"),
        ({"assets": {"jwt": "x", "config": {"html_handling": "sometimes"}}}, "html_handling"),
        ({"assets": {"jwt": "x", "config": {"run_worker_first": "yes"}}}, "run_worker_first"),
    ],
)
def test_script_uploads_with_bad_assets_are_refused(
    client: TestClient, meta: dict[str, Any], why: str
) -> None:
    r = _script(client, main_module="index.js", **meta)
    assert r.status_code == 400
    assert r.json()["errors"][0]["code"] == 10021 and why in r.json()["errors"][0]["message"]
