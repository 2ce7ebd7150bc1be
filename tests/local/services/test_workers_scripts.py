"""The emulated Workers scripts API through the front door, without a runtime (scripts are
stored and answered, not run: running them is tests/local/test_local_scripts.py): every
client's multipart framing, Cloudflare's envelope and codes, the deployment rules, inherited
and kept bindings, paging that ends, state that survives the emulator."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from cfai.local.services import (
    EmulatorContext,
    VectorizeService,
    WorkersAIService,
    WorkersScriptsService,
)

Serve = Callable[..., Starlette]  # the `serve` fixture (conftest)

ACCOUNT = "a" * 32
TOKEN = "test-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}
V4 = f"/client/v4/accounts/{ACCOUNT}/workers"
JS = b"export default { fetch() { return new Response('hi'); } };"


def _form(parts: list[tuple[str, str | None, str | None, bytes]]) -> tuple[bytes, str]:
    """A multipart body framed by hand: (name, filename, content type, data) per part."""
    out = b""
    for name, filename, kind, data in parts:
        disposition = f'form-data; name="{name}"' + (
            f'; filename="{filename}"' if filename is not None else ""
        )
        head = f"--XyZ\r\nContent-Disposition: {disposition}\r\n"
        head += f"Content-Type: {kind}\r\n" if kind else ""
        out += head.encode() + b"\r\n" + data + b"\r\n"
    return out + b"--XyZ--\r\n", "multipart/form-data; boundary=XyZ"


def _metadata(**extra: Any) -> bytes:
    meta = {"main_module": "index.js", "compatibility_date": "2025-01-01", **extra}
    return json.dumps(meta).encode()


def wrangler_form(**extra: Any) -> tuple[bytes, str]:
    """wrangler: metadata first as a plain field, modules named after themselves."""
    return _form(
        [
            ("metadata", None, None, _metadata(**extra)),
            ("index.js", "index.js", "application/javascript+module", JS),
        ]
    )


@pytest.fixture
def client(tmp_path: Path, serve: Serve) -> Iterator[TestClient]:
    ctx = EmulatorContext(tmp_path, ACCOUNT, TOKEN)
    services = [WorkersAIService(ctx), VectorizeService(ctx), WorkersScriptsService(ctx)]
    services[1].store.create_index("docs", dimensions=32, metric="cosine")
    with TestClient(serve(ctx, *services)) as c:
        yield c
    for s in services:
        s.close()


def upload(client: TestClient, name: str = "hello", **extra: Any) -> dict[str, Any]:
    body, kind = wrangler_form(**extra)
    r = client.put(f"{V4}/scripts/{name}", content=body, headers={**AUTH, "content-type": kind})
    assert r.status_code == 200, r.text
    return dict(r.json()["result"])


def error(r: Any, status: int, code: int) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["success"] is False and body["result"] is None
    assert body["errors"][0]["code"] == code
    return str(body["errors"][0]["message"])


def test_every_clients_framing_uploads_the_same_script(client: TestClient) -> None:
    sdk = _form(  # the Python SDK: modules as `files` parts, metadata last as JSON
        [
            ("files", "index.js", "application/javascript+module", JS),
            ("metadata", None, "application/json", _metadata()),
        ]
    )
    terraform = _form(  # terraform-provider-cloudflare: metadata with an empty filename
        [
            ("metadata", "", "application/json", _metadata()),
            ("index.js", "index.js", "application/javascript+module", JS),
        ]
    )
    for name, (body, kind) in {"w": wrangler_form(), "s": sdk, "t": terraform}.items():
        r = client.put(f"{V4}/scripts/{name}", content=body, headers={**AUTH, "content-type": kind})
        assert r.status_code == 200, (name, r.text)
        result = r.json()["result"]
        # What wrangler prints: the startup time and "Current Version ID" (deployment_id).
        assert result["id"] == name and result["deployment_id"] and result["etag"]
        content = client.get(f"{V4}/scripts/{name}", headers=AUTH)
        assert content.status_code == 200 and content.content == JS


def test_refusals_come_in_cloudflares_envelope_and_codes(client: TestClient) -> None:
    missing = [
        ("GET", "/services/nope"),
        ("GET", "/scripts/nope/settings"),
        ("GET", "/scripts/nope/deployments"),
        ("GET", "/scripts/nope/versions"),
        ("GET", "/scripts/nope/content/v2"),
        ("GET", "/scripts/nope/subdomain"),
        ("DELETE", "/scripts/nope"),
    ]
    for method, path in missing:
        message = error(client.request(method, V4 + path, headers=AUTH), 404, 10007)
        assert message == "This Worker does not exist on your account."
    body, kind = wrangler_form(main_module="main.js")
    r = client.put(f"{V4}/scripts/hello", content=body, headers={**AUTH, "content-type": kind})
    assert 'No such module "main.js"' in error(r, 400, 10021)
    r = client.put(
        f"{V4}/scripts/hello", content=b"{}", headers={**AUTH, "content-type": "application/json"}
    )
    assert "multipart/form-data" in error(r, 400, 10021)
    r = client.put(f"{V4}/scripts/Bad_Name", content=body, headers={**AUTH, "content-type": kind})
    assert "Worker name 'Bad_Name' is invalid" in error(r, 400, 10021)
    assert error(client.get(f"{V4}/scripts"), 401, 10000) == "Authentication error"


def test_bindings_are_checked_and_secrets_never_read_back(client: TestClient) -> None:
    bindings = [
        {"type": "secret_text", "name": "TOKEN", "text": "hunter2-secret"},
        {"type": "vectorize", "name": "VEC", "index_name": "docs"},
        {"type": "json", "name": "CONF", "json": {"a": 1}},
    ]
    upload(client, bindings=bindings)
    for path in ("/scripts/hello/settings", "/scripts/hello/versions"):
        assert "hunter2-secret" not in client.get(V4 + path, headers=AUTH).text
    shown = client.get(f"{V4}/scripts/hello/settings", headers=AUTH).json()["result"]["bindings"]
    assert {"type": "secret_text", "name": "TOKEN"} in shown
    for bad, words in [
        ({"type": "d1", "name": "DB", "id": "x"}, "binding DB of type d1 is not supported"),
        ({"type": "vectorize", "name": "V", "index_name": "x"}, "no index 'x' exists"),
        ({"type": "plain_text", "name": "P"}, "binding P of type plain_text must have a string"),
        ({"type": "inherit", "name": "GONE"}, "inherit binding 'GONE' is invalid"),
    ]:
        body, kind = wrangler_form(bindings=[bad])
        r = client.put(
            f"{V4}/scripts/hello?bindings_inherit=strict",
            content=body,
            headers={**AUTH, "content-type": kind},
        )
        code = 10057 if bad["type"] == "inherit" else 10021
        assert words in error(r, 400, code)


def test_versions_inherit_and_keep_bindings_and_page_to_an_end(client: TestClient) -> None:
    first = upload(client, bindings=[{"type": "secret_text", "name": "S", "text": "x"}])
    # wrangler's versions upload keeps secrets; an `inherit` binding copies one by name.
    body, kind = wrangler_form(
        keep_bindings=["secret_text"],
        bindings=[{"type": "inherit", "name": "S2", "old_name": "S"}],
    )
    r = client.post(
        f"{V4}/scripts/hello/versions", content=body, headers={**AUTH, "content-type": kind}
    )
    assert r.status_code == 200, r.text
    two = r.json()["result"]
    assert two["number"] == 2 and two["metadata"]["has_preview"] is False
    assert sorted(b["name"] for b in two["resources"]["bindings"]) == ["S", "S2"]
    seen, page = [], 1
    while True:
        r = client.get(f"{V4}/scripts/hello/versions?per_page=1&page={page}", headers=AUTH)
        items = r.json()["result"]["items"]
        if not items:
            break
        seen += [v["id"] for v in items]
        page += 1
    assert seen == [two["id"], first["deployment_id"]] and page == 3
    # Uploaded, not deployed: the live deployment still names the first version.
    live = client.get(f"{V4}/scripts/hello/deployments", headers=AUTH).json()["result"]
    assert [v["version_id"] for v in live["deployments"][0]["versions"]] == [first["deployment_id"]]


def test_deployments_follow_cloudflares_rules(client: TestClient) -> None:
    a = upload(client)["deployment_id"]
    body, kind = wrangler_form()
    b = client.post(
        f"{V4}/scripts/hello/versions", content=body, headers={**AUTH, "content-type": kind}
    ).json()["result"]["id"]

    def deploy(versions: list[tuple[str, float]]) -> Any:
        payload = {
            "strategy": "percentage",
            "versions": [{"version_id": v, "percentage": p} for v, p in versions],
        }
        return client.post(f"{V4}/scripts/hello/deployments", json=payload, headers=AUTH)

    assert "add up to 100" in error(deploy([(a, 50), (b, 40)]), 400, 10021)
    assert "1 to 2 versions" in error(deploy([(a, 50), (b, 25), (a, 25)]), 400, 10021)
    error(deploy([("no-such-version", 100)]), 404, 10026)
    made = deploy([(a, 10), (b, 90)])
    assert made.status_code == 200, made.text
    deployment = made.json()["result"]
    assert deployment["strategy"] == "percentage" and deployment["source"] == "api"
    listed = client.get(f"{V4}/scripts/hello/deployments", headers=AUTH).json()["result"]
    assert listed["deployments"][0]["id"] == deployment["id"]  # newest first
    latest = f"{V4}/scripts/hello/deployments/{deployment['id']}"
    assert "latest deployment cannot be deleted" in error(
        client.delete(latest, headers=AUTH), 400, 10021
    )
    older = listed["deployments"][1]["id"]
    assert client.delete(f"{V4}/scripts/hello/deployments/{older}", headers=AUTH).json()["success"]


def test_settings_patch_makes_a_version_and_script_settings_do_not(client: TestClient) -> None:
    upload(client)
    patch = json.dumps({"bindings": [{"type": "plain_text", "name": "P", "text": "v"}]}).encode()
    body, kind = _form([("settings", None, None, patch)])  # wrangler: no content type
    r = client.patch(
        f"{V4}/scripts/hello/settings", content=body, headers={**AUTH, "content-type": kind}
    )
    assert r.status_code == 200, r.text
    assert r.json()["result"]["bindings"] == [{"type": "plain_text", "name": "P", "text": "v"}]
    versions = client.get(f"{V4}/scripts/hello/versions", headers=AUTH).json()["result"]["items"]
    assert len(versions) == 2
    # wrangler deploy's non-versioned settings, sent as text/plain JSON.
    r = client.patch(
        f"{V4}/scripts/hello/script-settings",
        content=b'{"observability":{"enabled":false},"tags":["t"]}',
        headers={**AUTH, "content-type": "text/plain;charset=UTF-8"},
    )
    assert r.json()["result"]["tags"] == ["t"]
    versions = client.get(f"{V4}/scripts/hello/versions", headers=AUTH).json()["result"]["items"]
    assert len(versions) == 2


def test_the_service_view_and_content_are_what_clients_read(client: TestClient) -> None:
    upload(client)
    service = client.get(f"{V4}/services/hello", headers=AUTH).json()["result"]
    script = service["default_environment"]["script"]
    assert service["default_environment"]["environment"] == "production"
    assert script["last_deployed_from"] == "api" and len(script["tag"]) == 32
    content = client.get(f"{V4}/scripts/hello/content/v2", headers=AUTH)
    assert content.headers["cf-entrypoint"] == "index.js"
    assert content.headers["content-type"].startswith("multipart/form-data")
    assert JS in content.content


def test_scripts_survive_the_emulator(tmp_path: Path, serve: Serve) -> None:
    def app() -> tuple[TestClient, list[Any]]:
        ctx = EmulatorContext(tmp_path, ACCOUNT, TOKEN)
        services = [WorkersAIService(ctx), VectorizeService(ctx), WorkersScriptsService(ctx)]
        return TestClient(serve(ctx, *services)), services

    first, services = app()
    with first:
        made = upload(first)
    for s in services:
        s.close()
    again, services = app()
    with again:
        live = again.get(f"{V4}/scripts/hello/deployments", headers=AUTH).json()["result"]
        assert live["deployments"][0]["versions"][0]["version_id"] == made["deployment_id"]
    for s in services:
        s.close()
    mode = (tmp_path / "workers_scripts.sqlite3").stat().st_mode & 0o777
    assert mode == 0o600  # it holds secret bindings
