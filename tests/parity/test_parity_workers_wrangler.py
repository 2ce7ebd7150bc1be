"""wrangler 4.86 (the pinned dev dependency) deploys to the local platform as to Cloudflare:
``CLOUDFLARE_API_BASE_URL``, ``CLOUDFLARE_API_TOKEN`` and ``CLOUDFLARE_ACCOUNT_ID`` from the
outputs map, nothing else changed. A Worker written here with an ``ai`` and a ``vectorize``
binding is deployed and answers through the local platform; ``versions upload`` then
``versions deploy a@10% b@90%`` splits its traffic, and Cloudflare's version override
header pins one version.

Runs on the session's platform (tests/conftest.py) with the suite's `wrangler` (its own HOME
in a temporary directory, CI mode, no metrics), in a project directory of its own.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Wrangler

from cfai.local import LocalPlatform
from cfai.provision.rest import CloudflareClient

REPO = Path(__file__).resolve().parents[2]
WRANGLER = REPO / "node_modules" / ".bin" / "wrangler"
SCRIPT = "parity-wrangler"
ACCOUNT = "/accounts/{account_id}/workers"

WORKER_JS = """
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/ai") {
      const out = await env.AI.run("@cf/baai/bge-base-en-v1.5", { text: ["parity"] });
      return Response.json({ dimensions: out.data[0].length });
    }
    if (url.pathname === "/vectorize") {
      return Response.json(await env.VECTORIZE.describe());
    }
    return Response.json({ label: "LABEL", greeting: env.GREETING });
  },
};
"""


def write(project: Path, label: str) -> None:
    (project / "index.js").write_text(WORKER_JS.replace("LABEL", label))


@pytest.fixture(scope="module")
def project(local_platform: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wrangler project: a Worker with an ``ai`` and a ``vectorize`` binding and a var."""
    project = tmp_path_factory.mktemp("wrangler-project")
    config = {
        "name": SCRIPT,
        "main": "index.js",
        "compatibility_date": "2025-01-01",
        "workers_dev": True,
        "ai": {"binding": "AI"},
        "vectorize": [
            {"binding": "VECTORIZE", "index_name": local_platform["indexes"]["docs"]["name"]}
        ],
        "vars": {"GREETING": "hello from wrangler"},
    }
    (project / "wrangler.json").write_text(json.dumps(config))
    return project


@dataclass(frozen=True)
class Deployed:
    url: str
    version: str


def _url(local_platform: dict[str, Any]) -> str:
    return LocalPlatform(REPO, local_platform["stack"]).script_urls()[SCRIPT]


@pytest.fixture(scope="module")
def deployed(
    wrangler: Wrangler, project: Path, local_platform: dict[str, Any]
) -> Iterator[Deployed]:
    write(project, "a")
    done = wrangler("deploy", cwd=project)
    assert done.returncode == 0, done.stdout + done.stderr
    found = re.search(r"Current Version ID: ([0-9a-f-]{36})", done.stdout)
    assert found, done.stdout
    yield Deployed(_url(local_platform), found.group(1))
    api = local_platform["api"]
    with CloudflareClient(api["base_url"], token=api["token"], account_id=api["account_id"]) as cf:
        cf.workers.delete(SCRIPT)  # its processes stop; the session platform goes on


@pytest.mark.parity("GET " + ACCOUNT + "/services/{script_name}", client="wrangler")
@pytest.mark.parity("GET " + ACCOUNT + "/scripts/{script_name}/deployments", client="wrangler")
@pytest.mark.parity("GET " + ACCOUNT + "/scripts/{script_name}/settings", client="wrangler")
@pytest.mark.parity("PUT " + ACCOUNT + "/scripts/{script_name}", client="wrangler")
@pytest.mark.parity("GET " + ACCOUNT + "/subdomain", client="wrangler")
@pytest.mark.parity("GET " + ACCOUNT + "/scripts/{script_name}/subdomain", client="wrangler")
@pytest.mark.parity("POST " + ACCOUNT + "/scripts/{script_name}/subdomain", client="wrangler")
def test_wrangler_deploy_runs_the_worker_with_its_ai_and_vectorize_bindings(
    deployed: Deployed, local_platform: dict[str, Any]
) -> None:
    assert httpx.get(deployed.url, timeout=30).json() == {
        "label": "a",
        "greeting": "hello from wrangler",
    }
    assert httpx.get(f"{deployed.url}/ai", timeout=30).json() == {"dimensions": 768}
    index = httpx.get(f"{deployed.url}/vectorize", timeout=30).json()
    assert index["dimensions"] == local_platform["indexes"]["docs"]["dimensions"]


@pytest.mark.parity("POST " + ACCOUNT + "/scripts/{script_name}/versions", client="wrangler")
@pytest.mark.parity("GET " + ACCOUNT + "/scripts/{script_name}/versions", client="wrangler")
@pytest.mark.parity(
    "GET " + ACCOUNT + "/scripts/{script_name}/versions/{version_id}", client="wrangler"
)
@pytest.mark.parity("POST " + ACCOUNT + "/scripts/{script_name}/deployments", client="wrangler")
def test_wrangler_versions_deploy_splits_traffic_and_the_override_pins_a_version(
    wrangler: Wrangler, project: Path, deployed: Deployed
) -> None:
    write(project, "b")
    upload = wrangler("versions", "upload", "--message", "parity b", "--tag", "b", cwd=project)
    assert upload.returncode == 0, upload.stdout + upload.stderr
    found = re.search(r"Worker Version ID: ([0-9a-f-]{36})", upload.stdout)
    assert found, upload.stdout
    a, b = deployed.version, found.group(1)
    # Uploaded, not deployed: every request still reaches a.
    assert {httpx.get(deployed.url, timeout=30).json()["label"] for _ in range(10)} == {"a"}
    listed = wrangler("versions", "list", "--json", cwd=project)
    assert listed.returncode == 0, listed.stderr
    assert {v["id"] for v in json.loads(listed.stdout)} >= {a, b}

    split = wrangler("versions", "deploy", f"{a}@10%", f"{b}@90%", "--yes", cwd=project)
    assert split.returncode == 0, split.stdout + split.stderr
    assert f"version {a} at 10% and version {b} at 90%" in split.stdout
    labels = [httpx.get(deployed.url, timeout=30).json()["label"] for _ in range(200)]
    assert 8 <= labels.count("a") <= 40, labels.count("a")
    assert labels.count("a") + labels.count("b") == 200
    pin = {"Cloudflare-Workers-Version-Overrides": f'{SCRIPT}="{a}"'}
    assert {
        httpx.get(deployed.url, headers=pin, timeout=30).json()["label"] for _ in range(20)
    } == {"a"}
    status = wrangler("deployments", "status", cwd=project)
    assert status.returncode == 0, status.stderr
    assert "(10%)" in status.stdout and "(90%)" in status.stdout
