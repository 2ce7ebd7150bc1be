"""Static assets of `custom` Workers on the local platform: uploaded through the Workers
scripts API's assets upload session by `local up`, served by workerd in front of the Worker
with Cloudflare's routing, and reachable from the Worker's code through its binding.

The proof Worker is src/chat-app, in the shape of Cloudflare's llm-chat-app-template
(TypeScript bundled with esbuild, nodejs_compat, ASSETS over public/, /api/chat streamed
with returnRawResponse), run unmodified."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from cfai.config import load_file
from cfai.local import LocalPlatform

REPO = Path(__file__).resolve().parents[2]
ESBUILD = REPO / "node_modules" / ".bin" / "esbuild"

# A Worker behind a small site: it says which path reached it, and fetches assets for
# /asset/<path> through its binding (404-page handling applies there).
SITE_JS = """\
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname.startsWith("/asset/")) {
      const inner = new URL(url.pathname.slice("/asset".length), url);
      return env.ASSETS.fetch(new Request(inner, request));
    }
    return Response.json({ worker: url.pathname, method: request.method });
  },
};
"""

SITE = {
    "index.html": "<h1>home</h1>",
    "about.html": "<h1>about</h1>",
    "docs/index.html": "<h1>docs</h1>",
    "docs/404.html": "<h1>no such doc</h1>",
    "404.html": "<h1>not here</h1>",
    "app.js": "console.log('app');",
    "api/data.json": '{"from": "asset"}',
    "api/docs/readme.txt": "read me",
}


def _bundle(src: Path) -> None:
    subprocess.run(
        [str(ESBUILD), "src/index.ts", "--bundle", "--format=esm", "--platform=neutral",
         "--external:node:*", "--outfile=dist/index.js", "--log-level=warning"],
        cwd=src, check=True, capture_output=True, timeout=60,
    )  # fmt: skip


@pytest.fixture(scope="module")
def assets_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    project = tmp_path_factory.mktemp("assets")
    app = project / "src" / "chat-app"
    shutil.copytree(REPO / "src" / "chat-app", app, ignore=shutil.ignore_patterns("dist"))
    _bundle(app)
    (project / "src" / "site.js").write_text(SITE_JS)
    for name, text in SITE.items():
        (project / "site" / name).parent.mkdir(parents=True, exist_ok=True)
        (project / "site" / name).write_text(text)
    data = yaml.safe_load((REPO / "Pulumi.local.yaml").read_text())["config"]["cfai:platform"]
    data.pop("finetunes", None)
    data["workers"] = {
        "chat-app": {
            "kind": "custom",
            "main": "src/chat-app/dist/index.js",
            "compatibility_flags": ["nodejs_compat"],
            "bindings": {"ai": "AI"},
            "assets": {"directory": "src/chat-app/public", "binding": "ASSETS"},
        },
        "site": {
            "kind": "custom",
            "main": "src/site.js",
            "assets": {
                "directory": "site",
                "binding": "ASSETS",
                "not_found_handling": "404-page",
                "run_worker_first": ["/api/*", "!/api/docs/*"],
            },
        },
        "spa": {
            "kind": "custom",
            "main": "src/site.js",
            "assets": {"directory": "site", "not_found_handling": "single-page-application"},
        },
    }
    (project / "platform.yaml").write_text(yaml.safe_dump(data))
    platform = LocalPlatform(REPO, f"pytest-assets-{os.getpid()}", source_dir=project)
    try:
        outputs = platform.up(load_file(project / "platform.yaml"), timeout=90).to_json()
        yield {"outputs": outputs, "platform": platform, "project": project}
    finally:
        platform.down()
        shutil.rmtree(platform.state_dir, ignore_errors=True)


def url(env: dict[str, Any], worker: str) -> str:
    return str(env["outputs"]["endpoints"][worker]).rstrip("/")


def test_chat_app_page_loads_from_its_assets(assets_platform: dict[str, Any]) -> None:
    base = url(assets_platform, "chat-app")
    page = httpx.get(base + "/", timeout=10)
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert '<form id="ask">' in page.text and 'src="/chat.js"' in page.text
    script = httpx.get(base + "/chat.js", timeout=10)
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert "/api/chat" in script.text
    css = httpx.get(base + "/style.css", timeout=10)
    assert css.headers["content-type"] == "text/css; charset=utf-8"


def test_chat_app_streams_a_chat(assets_platform: dict[str, Any]) -> None:
    base = url(assets_platform, "chat-app")
    body = {"messages": [{"role": "user", "content": "Tell me about static assets"}]}
    events = []
    with httpx.stream("POST", base + "/api/chat", json=body, timeout=30) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        # node:crypto's randomUUID, through nodejs_compat.
        uuid.UUID(r.headers["x-chat-id"])
        for line in r.iter_lines():
            if line.startswith("data: "):
                events.append(line[6:])
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e)["response"] for e in events[:-1]]
    assert len(chunks) > 3 and "".join(chunks).strip()


def test_chat_app_api_answers_json_errors(assets_platform: dict[str, Any]) -> None:
    base = url(assets_platform, "chat-app")
    assert httpx.get(base + "/api/chat", timeout=10).status_code == 405
    bad = httpx.post(base + "/api/chat", content=b"{", timeout=10)
    assert bad.status_code == 400 and "bad request" in bad.json()["error"]


@pytest.mark.parametrize(
    ("path", "status", "expect"),
    [
        ("/", 200, "<h1>home</h1>"),
        ("/about", 200, "<h1>about</h1>"),
        ("/about.html", 307, "/about"),
        ("/about/", 307, "/about"),
        ("/docs", 307, "/docs/"),
        ("/docs/", 200, "<h1>docs</h1>"),
        ("/docs/index.html", 307, "/docs/"),
        ("/index.html", 307, "/"),
        ("/app.js", 200, "console.log('app');"),
    ],
)
def test_auto_trailing_slash_as_cloudflare(
    assets_platform: dict[str, Any], path: str, status: int, expect: str
) -> None:
    r = httpx.get(url(assets_platform, "site") + path + "?q=1", timeout=10)
    assert r.status_code == status
    if status == 307:
        assert r.headers["location"] == expect + "?q=1"
    else:
        assert r.text == expect


def test_unmatched_paths_and_other_methods_reach_the_worker(
    assets_platform: dict[str, Any],
) -> None:
    base = url(assets_platform, "site")
    assert httpx.get(base + "/nope", timeout=10).json() == {"worker": "/nope", "method": "GET"}
    posted = httpx.post(base + "/about", timeout=10)
    assert posted.json() == {"worker": "/about", "method": "POST"}


def test_run_worker_first_globs_and_negations(assets_platform: dict[str, Any]) -> None:
    base = url(assets_platform, "site")
    first = httpx.get(base + "/api/data.json", timeout=10)
    assert first.json() == {"worker": "/api/data.json", "method": "GET"}
    negated = httpx.get(base + "/api/docs/readme.txt", timeout=10)
    assert negated.text == "read me"
    assert negated.headers["content-type"] == "text/plain; charset=utf-8"


def test_assets_binding_fetch_applies_404_page(assets_platform: dict[str, Any]) -> None:
    base = url(assets_platform, "site")
    found = httpx.get(base + "/asset/about", timeout=10)
    assert found.status_code == 200 and found.text == "<h1>about</h1>"
    nested = httpx.get(base + "/asset/docs/missing", timeout=10)
    assert nested.status_code == 404 and nested.text == "<h1>no such doc</h1>"
    top = httpx.get(base + "/asset/missing", timeout=10)
    assert top.status_code == 404 and top.text == "<h1>not here</h1>"


def test_assets_revalidate_by_etag(assets_platform: dict[str, Any]) -> None:
    base = url(assets_platform, "site")
    first = httpx.get(base + "/app.js", timeout=10)
    assert first.headers["cache-control"] == "public, max-age=0, must-revalidate"
    etag = first.headers["etag"]
    again = httpx.get(base + "/app.js", headers={"if-none-match": etag}, timeout=10)
    assert again.status_code == 304 and again.content == b""
    head = httpx.head(base + "/app.js", timeout=10)
    assert head.status_code == 200 and head.content == b""


def test_single_page_application_serves_navigations(assets_platform: dict[str, Any]) -> None:
    base = url(assets_platform, "spa")
    navigate = httpx.get(base + "/deep/route", headers={"sec-fetch-mode": "navigate"}, timeout=10)
    assert navigate.status_code == 200 and navigate.text == "<h1>home</h1>"
    fetched = httpx.get(base + "/deep/route", headers={"sec-fetch-mode": "cors"}, timeout=10)
    assert fetched.json() == {"worker": "/deep/route", "method": "GET"}


def test_unchanged_assets_are_not_uploaded_again(assets_platform: dict[str, Any]) -> None:
    # A second `up` (the emulator restores what was deployed) finds every Worker already
    # running its declared code and assets: nothing is uploaded, and the site still serves.
    platform: LocalPlatform = assets_platform["platform"]
    project: Path = assets_platform["project"]
    said: list[str] = []
    platform.progress = said.append
    outputs = platform.up(load_file(project / "platform.yaml"), timeout=90).to_json()
    assets_platform["outputs"] = outputs  # the later tests' (the emulator started anew)
    assert not [m for m in said if m.startswith(("worker ", "assets of "))], said
    assert httpx.get(outputs["endpoints"]["site"] + "/about", timeout=10).text == "<h1>about</h1>"


def test_a_static_assets_only_worker_serves_its_files(assets_platform: dict[str, Any]) -> None:
    # No code at all (wrangler deploys such a Worker with only `assets` in its config): the
    # files, their 404 page, and 405 for anything but GET/HEAD.
    api = assets_platform["outputs"]["api"]
    auth = {"authorization": f"Bearer {api['token']}"}
    base = f"{api['base_url']}/accounts/{api['account_id']}/workers"
    files = {"/index.html": b"<h1>static</h1>", "/404.html": b"<h1>gone</h1>"}
    digests = {p: hashlib.sha256(d).hexdigest()[:32] for p, d in files.items()}
    manifest = {p: {"hash": digests[p], "size": len(d)} for p, d in files.items()}
    session = httpx.post(f"{base}/scripts/static-only/assets-upload-session", headers=auth,
                         json={"manifest": manifest}, timeout=30).json()["result"]  # fmt: skip
    body = b"".join(
        f'--B\r\nContent-Disposition: form-data; name="{digests[p]}"\r\n'
        f"Content-Type: text/html\r\n\r\n".encode()
        + base64.b64encode(d)
        + b"\r\n"
        for p, d in files.items()
    )
    done = httpx.post(f"{base}/assets/upload?base64=true", content=body + b"--B--\r\n",
                      headers={"authorization": f"Bearer {session['jwt']}",
                               "content-type": "multipart/form-data; boundary=B"}, timeout=30)  # fmt: skip
    assert done.status_code == 201, done.text
    metadata = {"assets": {"jwt": done.json()["result"]["jwt"],
                           "config": {"not_found_handling": "404-page"}}}  # fmt: skip
    form = b'--B\r\nContent-Disposition: form-data; name="metadata"\r\n\r\n'
    form += json.dumps(metadata).encode() + b"\r\n--B--\r\n"
    put = httpx.put(f"{base}/scripts/static-only", content=form, timeout=60,
                    headers={**auth, "content-type": "multipart/form-data; boundary=B"})  # fmt: skip
    assert put.status_code == 200, put.text
    on = httpx.post(f"{base}/scripts/static-only/subdomain", json={"enabled": True},
                    headers=auth, timeout=60)  # fmt: skip
    assert on.status_code == 200, on.text
    platform: LocalPlatform = assets_platform["platform"]
    site = platform.script_urls()["static-only"]
    assert httpx.get(site + "/", timeout=10).text == "<h1>static</h1>"
    missing = httpx.get(site + "/nowhere", timeout=10)
    assert missing.status_code == 404 and missing.text == "<h1>gone</h1>"
    assert httpx.post(site + "/", timeout=10).status_code == 405
