"""wrangler 4.86 deploys a Worker with static assets to the local platform as to Cloudflare:
it hashes the folder into a manifest, opens an assets upload session, uploads the missing
files with the session token and names the completion token in the script upload
(https://developers.cloudflare.com/workers/static-assets/direct-upload/). The Worker then
serves its assets before its code, and its ASSETS binding fetches them.

A second deploy of the same files uploads nothing: the session answers no buckets and its
token is already the completion token.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Wrangler

from cfai.local import LocalPlatform
from cfai.provision.rest import CloudflareClient

REPO = Path(__file__).resolve().parents[2]
SCRIPT = "parity-assets"
ACCOUNT = "/accounts/{account_id}/workers"

WORKER_JS = """
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/via-binding") {
      return env.ASSETS.fetch(new Request(new URL("/data.json", url)));
    }
    return Response.json({ worker: url.pathname });
  },
};
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tmp_path_factory.mktemp("wrangler-assets")
    (project / "index.js").write_text(WORKER_JS)
    public = project / "public"
    public.mkdir()
    (public / "index.html").write_text("<h1>from wrangler</h1>")
    (public / "data.json").write_text('{"asset": true}')
    (public / "404.html").write_text("<h1>lost</h1>")
    config = {
        "name": SCRIPT,
        "main": "index.js",
        "compatibility_date": "2025-01-01",
        "workers_dev": True,
        "assets": {"directory": "public", "binding": "ASSETS", "not_found_handling": "404-page"},
    }
    (project / "wrangler.json").write_text(json.dumps(config))
    return project


@pytest.fixture(scope="module")
def deployed(
    wrangler: Wrangler, project: Path, local_platform: dict[str, Any]
) -> Iterator[tuple[str, str]]:
    done = wrangler("deploy", cwd=project)
    assert done.returncode == 0, done.stdout + done.stderr
    yield LocalPlatform(REPO, local_platform["stack"]).script_urls()[SCRIPT], done.stdout
    api = local_platform["api"]
    with CloudflareClient(api["base_url"], token=api["token"], account_id=api["account_id"]) as cf:
        cf.workers.delete(SCRIPT)


@pytest.mark.parity(
    "POST " + ACCOUNT + "/scripts/{script_name}/assets-upload-session", client="wrangler"
)
@pytest.mark.parity("POST " + ACCOUNT + "/assets/upload", client="wrangler")
def test_wrangler_deploy_uploads_and_serves_the_assets(deployed: tuple[str, str]) -> None:
    url, stdout = deployed
    assert re.search(r"Uploaded 3 of 3 asset", stdout), stdout
    page = httpx.get(url + "/", timeout=30)
    assert page.status_code == 200 and page.text == "<h1>from wrangler</h1>"
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert httpx.get(url + "/other", timeout=30).json() == {"worker": "/other"}
    via = httpx.get(url + "/via-binding", timeout=30)
    assert via.json() == {"asset": True}
    assert via.headers["content-type"].startswith("application/json")


def test_a_second_wrangler_deploy_uploads_no_file_again(
    wrangler: Wrangler, project: Path, deployed: tuple[str, str]
) -> None:
    again = wrangler("deploy", cwd=project)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "No updated asset files to upload" in again.stdout, again.stdout
    assert httpx.get(deployed[0] + "/", timeout=30).text == "<h1>from wrangler</h1>"
