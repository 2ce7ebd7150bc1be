"""`cfai models` lists the catalog; `cfai models sync` reads every page of the model search
API (the local platform's here, Cloudflare's shape) into catalog.json, which loading prefers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from cfai.catalog import CATALOG, catalog_for
from cfai.catalog.search import search_object
from cfai.catalog.sync import search_models, sync_catalog
from cfai.errors import CloudflareApiError
from cfai.provision.rest import CloudflareClient

REPO = Path(__file__).resolve().parents[2]
ACCOUNT = "0123456789abcdef0123456789abcdef"


def _cfai(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cfai", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "250"},
    )


def _fake(objects: list[dict[str, Any]], *, honour_page: bool = True) -> CloudflareClient:
    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params.get("page", "1")) if honour_page else 1
        per = int(request.url.params["per_page"])
        chunk = objects[(page - 1) * per : page * per]
        return httpx.Response(
            200, json={"success": True, "errors": [], "messages": [], "result": chunk}
        )

    return CloudflareClient(
        "https://api.example/client/v4",
        token="t",
        account_id=ACCOUNT,
        transport=httpx.MockTransport(handler),
    )


def test_sync_reads_every_page_and_keeps_known_tasks(tmp_path: Path) -> None:
    objects = [search_object(s) for s in CATALOG.values()]
    objects.append(
        {**objects[0], "name": "@cf/acme/detector", "task": {"name": "Object Detection"}}
    )
    with _fake(objects) as client:
        report = sync_catalog(client, tmp_path)
    assert report.pages == 1 + len(objects) // 50
    assert {m.name for m in report.models} == set(CATALOG)
    assert report.skipped == ("@cf/acme/detector",)
    data = json.loads((tmp_path / "catalog.json").read_text())
    assert data["source"] == "https://api.example/client/v4" and len(data["models"]) == len(CATALOG)


def test_sync_stops_on_an_api_that_ignores_page() -> None:
    objects = [search_object(s) for s in CATALOG.values()] * 3
    with (
        _fake(objects, honour_page=False) as client,
        pytest.raises(CloudflareApiError, match="repeats"),
    ):
        search_models(client, per_page=10)


def test_models_lists_by_task_and_as_json() -> None:
    done = _cfai("models", "--task", "automatic-speech-recognition", "--json")
    assert done.returncode == 0, done.stderr
    rows = {r["name"]: r for r in json.loads(done.stdout)}
    assert set(rows) == {
        "@cf/openai/whisper",
        "@cf/openai/whisper-large-v3-turbo",
        "@cf/deepgram/nova-3",
    }
    assert rows["@cf/deepgram/nova-3"]["prices"] == [
        {"unit": "audio_minutes", "usd": 0.0052, "per": 1}
    ]
    table = _cfai("models", "--task", "text-generation")
    assert table.returncode == 0
    assert "@cf/openai/gpt-oss-120b" in table.stdout and "reasoning" in table.stdout
    assert "@cf/baai/bge-base-en-v1.5" not in table.stdout


@pytest.mark.platform
def test_models_sync_against_the_local_platform(
    local_platform: dict[str, Any], tmp_path: Path
) -> None:
    # A project directory that sees the session's running platform (its state directory).
    stack = f"pytest-{os.getpid()}"
    (tmp_path / ".cfai").mkdir()
    (tmp_path / ".cfai" / stack).symlink_to(REPO / ".cfai" / stack, target_is_directory=True)
    done = _cfai("models", "sync", "--local", "--stack", stack, "--project", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert f"{len(CATALOG)} model(s)" in done.stdout
    catalog = catalog_for(tmp_path)
    assert catalog.source == str(tmp_path / "catalog.json")
    assert catalog.synced == set(CATALOG)
    qwen3 = catalog["@cf/qwen/qwen3-30b-a3b-fp8"]
    assert (
        qwen3.context_window == 32768
        and qwen3.tools
        and [p.usd for p in qwen3.prices] == [0.051, 0.34]
    )
    listed = _cfai("models", "--project", str(tmp_path))
    assert str(tmp_path / "catalog.json") in listed.stdout.replace("\n", "")


def test_models_sync_needs_a_target(tmp_path: Path) -> None:
    done = _cfai("models", "sync", "--project", str(tmp_path))
    assert done.returncode == 2 and "--stack NAME or --local" in done.stderr
    done = _cfai("models", "sync", "--local", "--project", str(tmp_path))
    assert done.returncode == 2 and "not running" in done.stderr
    assert not (tmp_path / "catalog.json").exists()
