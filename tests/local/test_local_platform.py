"""The local platform end to end: the rendered Workers on real workerd, their real `env.AI`
and `env.VECTORIZE` bindings backed by the emulator, provisioned through its REST API."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from cfai.config import load_stack
from cfai.local import LocalPlatform
from cfai.render import module_path, module_sha256

REPO = Path(__file__).resolve().parents[2]


def auth(outputs: dict[str, Any]) -> dict[str, str]:
    return {"authorization": f"Bearer {outputs['auth_token']}"}


def api(outputs: dict[str, Any]) -> httpx.Client:
    a = outputs["api"]
    return httpx.Client(
        base_url=f"{a['base_url']}/accounts/{a['account_id']}",
        headers={"authorization": f"Bearer {a['token']}"},
        timeout=10,
    )


def test_up_serves_every_worker_of_the_stack_with_its_rendered_hash(
    local_platform: dict[str, Any],
) -> None:
    declared = load_stack("local", REPO)
    assert set(local_platform["workers"]) == set(declared.workers)
    for key, worker in local_platform["workers"].items():
        health = httpx.get(f"{worker['url']}/health", timeout=10).json()
        assert health["worker"] == key and health["kind"] == worker["kind"]
        committed = module_path(REPO / "workers", key)
        assert health["template_sha256"] == module_sha256(committed.read_text(encoding="utf-8"))


def test_chat_through_gateway_is_logged_and_repeat_is_a_cache_hit(
    local_platform: dict[str, Any],
) -> None:
    chat = local_platform["endpoints"]["assistant"]
    gateway = local_platform["workers"]["assistant"]["gateway"]
    prompt = f"Which colour is the sky? {uuid.uuid4()}"
    first = httpx.post(
        f"{chat}/chat", json={"prompt": prompt}, headers=auth(local_platform), timeout=30
    )
    second = httpx.post(
        f"{chat}/chat", json={"prompt": prompt}, headers=auth(local_platform), timeout=30
    )
    assert first.status_code == second.status_code == 200
    assert first.json()["response"] == second.json()["response"]
    with api(local_platform) as cf:
        logs = [
            cf.get(f"/ai-gateway/gateways/{gateway}/logs/{r.headers['cf-aig-log-id']}").json()[
                "result"
            ]
            for r in (first, second)
        ]
    assert [log["cached"] for log in logs] == [False, True]
    assert logs[0]["model"] == "@cf/meta/llama-3.1-8b-instruct"
    assert logs[0]["tokens_out"] == first.json()["usage"]["completion_tokens"]


def test_rag_ingest_lands_in_the_emulated_index(local_platform: dict[str, Any]) -> None:
    kb = local_platform["endpoints"]["kb"]
    index = local_platform["indexes"]["docs"]["name"]
    doc = f"zebra-{uuid.uuid4().hex[:8]}"
    text = f"The {doc} migration guide explains how zebras cross rivers at dawn."
    with api(local_platform) as cf:
        before = cf.get(f"/vectorize/v2/indexes/{index}/info").json()["result"]["vectorCount"]
        r = httpx.post(
            f"{kb}/documents",
            json={"documents": [{"id": doc, "text": text}]},
            headers=auth(local_platform),
            timeout=30,
        )
        assert r.status_code == 200, r.text
        info = cf.get(f"/vectorize/v2/indexes/{index}/info").json()["result"]
        assert info["vectorCount"] == before + 1
        assert info["dimensions"] == 768
        got = cf.post(
            f"/vectorize/v2/indexes/{index}/get_by_ids", json={"ids": [f"{doc}#0"]}
        ).json()["result"]
    assert got[0]["metadata"]["document_id"] == doc and got[0]["metadata"]["text"] == text
    answer = httpx.post(
        f"{kb}/query",
        json={"question": f"How do zebras cross rivers in the {doc} guide?"},
        headers=auth(local_platform),
        timeout=30,
    ).json()
    assert answer["matches"][0]["document_id"] == doc
    assert "zebras cross rivers" in answer["answer"]


def test_image_worker_returns_the_models_bytes(local_platform: dict[str, Any]) -> None:
    studio = local_platform["endpoints"]["studio"]
    r = httpx.post(
        f"{studio}/image",
        json={"prompt": "a lighthouse", "width": 320, "height": 256},
        headers=auth(local_platform),
        timeout=30,
    )
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    from io import BytesIO

    from PIL import Image

    assert Image.open(BytesIO(r.content)).size == (320, 256)


def test_secrets_stay_out_of_config_logs_and_outputs_files_mode(
    local_platform: dict[str, Any],
) -> None:
    state = REPO / ".cfai" / local_platform["stack"]
    secrets = [local_platform["auth_token"], local_platform["api"]["token"]]
    # A workerd config and log per running version of a script.
    files = [*state.glob("workerd-*.capnp"), *state.glob("workerd-*.log"), state / "emulator.log"]
    assert len(files) >= 1 + 2 * len(local_platform["workers"])
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        assert not any(s in text for s in secrets), path.name
    assert oct((state / "outputs.json").stat().st_mode & 0o777) == "0o600"


def test_committed_vectors_survive_kill_9_of_the_emulator(tmp_path: Path) -> None:
    platform = LocalPlatform(REPO, "pytest-persist")
    declaration = load_stack("local", REPO)
    try:
        out = platform.up(declaration).to_json()
        doc = f"persist-{uuid.uuid4().hex[:8]}"
        r = httpx.post(
            f"{out['endpoints']['kb']}/documents",
            json={"documents": [{"id": doc, "text": "kept after a crash"}]},
            headers=auth(out),
            timeout=30,
        )
        assert r.status_code == 200
        os.kill(platform.status().processes["emulator"].pid, signal.SIGKILL)
        out = platform.up(declaration).to_json()
        with api(out) as cf:
            got = cf.post(
                f"/vectorize/v2/indexes/{out['indexes']['docs']['name']}/get_by_ids",
                json={"ids": [f"{doc}#0"]},
            ).json()
        assert got["result"][0]["metadata"]["text"] == "kept after a crash"
    finally:
        platform.down()
    assert platform.running() is None
    shutil.rmtree(platform.state_dir, ignore_errors=True)


def test_cli_local_up_status_down(tmp_path: Path) -> None:
    def cfai(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "cfai",
                "local",
                *args,
                "--stack",
                "local",
                "--project",
                str(project),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )

    project = tmp_path / "proj"
    project.mkdir()
    for name in ("Pulumi.yaml", "Pulumi.local.yaml"):
        (project / name).write_text((REPO / name).read_text())
    shutil.copytree(REPO / "src" / "adapters", project / "src" / "adapters")  # the tone finetune
    (project / "node_modules").symlink_to(REPO / "node_modules")
    try:
        up = cfai("up", "--demo")
        assert up.returncode == 0, up.stderr
        assert "demo: kb ingested 3 documents" in up.stderr
        status = cfai("status")
        assert status.returncode == 0
        row = next(line for line in status.stdout.splitlines() if " assistant " in line)
        assert "http://127.0.0.1:" in row and " ok " in row  # its endpoint, and it answers
        token = cfai("token").stdout.strip()
        assert token and token not in up.stdout + up.stderr
    finally:
        down = cfai("down")
    assert down.returncode == 0 and "stopped" in down.stdout
    assert cfai("status").returncode == 1


def test_up_without_workerd_says_how_to_install_it(tmp_path: Path) -> None:
    project = tmp_path / "bare"
    project.mkdir()
    for name in ("Pulumi.yaml", "Pulumi.local.yaml"):
        (project / name).write_text((REPO / name).read_text())
    shutil.copytree(REPO / "src" / "adapters", project / "src" / "adapters")  # the tone finetune
    env = {**os.environ, "PATH": "/usr/bin:/bin"}
    r = subprocess.run(
        [sys.executable, "-m", "cfai", "local", "up", "--project", str(project)],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    assert r.returncode == 2
    assert "workerd is not installed" in r.stderr and "make setup" in r.stderr
    assert not (project / ".cfai" / "local" / "run.json").exists()


@pytest.mark.parametrize("worker", ["assistant", "kb", "studio"])
def test_workers_refuse_requests_without_the_token(
    local_platform: dict[str, Any], worker: str
) -> None:
    url = local_platform["endpoints"][worker]
    path = {"assistant": "/chat", "kb": "/query", "studio": "/image"}[worker]
    r = httpx.post(f"{url}{path}", json={"prompt": "x", "question": "x"}, timeout=10)
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
