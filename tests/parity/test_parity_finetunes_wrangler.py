"""``wrangler ai finetune create`` and ``list`` (wrangler 4.86.0 from node_modules) against the
local platform's REST API: the emulator app (every registered service, through the front
door) on a free 127.0.0.1 port, wrangler pointed at it with CLOUDFLARE_API_BASE_URL. wrangler
reports API errors on stderr and still exits 0, so the tests read what it prints."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from cfai.finetunes.demo import write_adapter
from cfai.local.emulator import build_app
from cfai.local.services import EmulatorContext

REPO = Path(__file__).resolve().parents[2]
WRANGLER = REPO / "node_modules" / ".bin" / "wrangler"
ACCOUNT = "0123456789abcdef0123456789abcdef"
TOKEN = "wrangler-parity-token-0123456789"
LLAMA = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"

pytestmark = pytest.mark.platform


@pytest.fixture
def api(tmp_path: Path) -> Iterator[str]:
    """The emulator's REST base URL (``.../client/v4``), served from a background thread."""
    app, services = build_app(
        EmulatorContext(state_dir=tmp_path / "state", account_id=ACCOUNT, api_token=TOKEN)
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off", ws="none")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "emulator did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/client/v4"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        for service in services.values():
            service.close()


def wrangler(api: str, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    home.mkdir(exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "CI": "true",
        "WRANGLER_SEND_METRICS": "false",
        "WRANGLER_HIDE_BANNER": "true",
        "NO_COLOR": "1",
        "FORCE_COLOR": "0",
        "CLOUDFLARE_API_BASE_URL": api,
        "CLOUDFLARE_API_TOKEN": TOKEN,
        "CLOUDFLARE_ACCOUNT_ID": ACCOUNT,
    }
    return subprocess.run(
        [str(WRANGLER), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=home,
        stdin=subprocess.DEVNULL,
    )


def rest(api: str) -> httpx.Client:
    return httpx.Client(
        base_url=f"{api}/accounts/{ACCOUNT}",
        headers={"authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )


# One operation per test (the parity suite's convention): `ai finetune create` is judged on the
# create (its uploads are also the asset route's happy path), `ai finetune list` on the list.


@pytest.mark.parity("POST /accounts/{account_id}/ai/finetunes", client="wrangler")
def test_wrangler_creates_a_finetune_with_both_assets(api: str, tmp_path: Path) -> None:
    write_adapter(tmp_path / "adapter")
    made = wrangler(
        api, tmp_path / "home", "ai", "finetune", "create", LLAMA, "tone", str(tmp_path / "adapter")
    )
    out = made.stdout + made.stderr
    assert made.returncode == 0 and "ERROR" not in out, out
    assert f'Creating new finetune "tone" for model "{LLAMA}"' in out
    assert out.count('Uploading file "') == 2
    assert '✅ Assets uploaded, finetune "tone" is ready to use.' in out

    # What wrangler uploaded is an adapter a model run applies.
    with rest(api) as client:
        run = client.post(f"/ai/run/{LLAMA}", json={"prompt": "hello", "lora": "tone"})
    assert run.status_code == 200, run.text
    assert run.json()["result"]["response"].startswith("[cfai stand-in] [LoRA tone] ")


@pytest.mark.parity("GET /accounts/{account_id}/ai/finetunes", client="wrangler")
def test_wrangler_lists_finetunes(api: str, tmp_path: Path) -> None:
    with rest(api) as client:
        made = client.post("/ai/finetunes", json={"model": LLAMA, "name": "tone"})
    assert made.status_code == 200, made.text

    listed = wrangler(api, tmp_path / "home", "ai", "finetune", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    (entry,) = json.loads(listed.stdout)
    assert (entry["name"], entry["model"], entry["description"]) == ("tone", LLAMA, "")
    assert entry["id"] == made.json()["result"]["id"]
    table = wrangler(api, tmp_path / "home", "ai", "finetune", "list")
    assert entry["id"] in table.stdout and "finetune_id" in table.stdout


@pytest.mark.parity(
    "POST /accounts/{account_id}/ai/finetunes/{finetune_id}/finetune-assets", client="wrangler"
)
def test_wrangler_reports_an_adapter_cloudflare_refuses(api: str, tmp_path: Path) -> None:
    write_adapter(tmp_path / "adapter", rank=64)
    made = wrangler(
        api, tmp_path / "home", "ai", "finetune", "create", LLAMA, "wide", str(tmp_path / "adapter")
    )
    out = made.stdout + made.stderr
    assert "Couldn't upload file" in out
    assert "rank r=64 exceeds Cloudflare's limit of 32" in out
    assert "ready to use" not in out
    # The finetune exists without its assets, so a run with it is Cloudflare's 3039.
    with rest(api) as client:
        run = client.post(f"/ai/run/{LLAMA}", json={"prompt": "hello", "lora": "wide"})
    assert run.status_code == 400 and run.json()["errors"][0]["code"] == 3039


@pytest.mark.parity("POST /accounts/{account_id}/ai/finetunes", client="wrangler")
def test_wrangler_reports_a_model_without_lora(api: str, tmp_path: Path) -> None:
    write_adapter(tmp_path / "adapter")
    made = wrangler(
        api,
        tmp_path / "home",
        "ai",
        "finetune",
        "create",
        "@cf/meta/llama-3.1-8b-instruct",
        "nope",
        str(tmp_path / "adapter"),
    )
    out = made.stdout + made.stderr
    assert "Finetune couldn't be created" in out
    assert "does not support LoRa inference" in out
    listed = wrangler(api, tmp_path / "home", "ai", "finetune", "list", "--json")
    assert json.loads(listed.stdout) == []
