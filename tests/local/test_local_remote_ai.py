"""`cfai local up --remote-ai`: the Workers' AI calls go to a remote Workers AI REST API (here
a second emulator, in this process, that counts what reaches it) while the gateway's cache
and logs stay local; remote errors come back in the binding's error shape; the token
travels only in the emulator's environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import yaml
from PIL import Image
from starlette.types import ASGIApp, Receive, Scope, Send
from support.polling import wait_for
from support.stack import local_stack

from cfai.local.emulator import build_app
from cfai.local.ports import free_port
from cfai.local.services.base import EmulatorContext
from cfai.local.services.frontdoor import BINDING_HEADER, BindingKey, BindingScope

REPO = Path(__file__).resolve().parents[2]
ACCOUNT = "1" * 32
TOKEN = "remote-token-" + uuid.uuid4().hex
LLAMA = "@cf/meta/llama-3.1-8b-instruct"


class Recorder:
    """ASGI wrapper: records every `ai/run` call; fails the ones whose body says FAIL-REMOTE."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.runs: list[dict[str, str]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or "/ai/run/" not in scope["path"]:
            await self.app(scope, receive, send)
            return
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        headers = dict((k.decode(), v.decode()) for k, v in scope["headers"])
        model = scope["path"].split("/ai/run/", 1)[1]
        self.runs.append({"model": model, "auth": headers.get("authorization", "")})
        if b"FAIL-REMOTE" in body:
            data = json.dumps({"result": None, "success": False, "errors": [{"code": 5006, "message": "remote says no"}], "messages": []}).encode()  # fmt: skip
            await send({"type": "http.response.start", "status": 400, "headers": [(b"content-type", b"application/json")]})  # fmt: skip
            await send({"type": "http.response.body", "body": data})
            return
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Recorder]]:
    ctx = EmulatorContext(tmp_path_factory.mktemp("remote"), ACCOUNT, TOKEN)
    app, _ = build_app(ctx)
    recorder = Recorder(app)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(recorder, host="127.0.0.1", port=port, log_level="warning", ws="none")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for("the recorder to serve", lambda: server.started, timeout=20, alive=thread.is_alive)
        yield f"http://127.0.0.1:{port}/client/v4", recorder
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def platform(
    remote: tuple[str, Recorder], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[dict[str, Any], Path]]:
    project = tmp_path_factory.mktemp("remote-ai-project")
    (project / "Pulumi.yaml").write_text((REPO / "Pulumi.yaml").read_text())
    data = local_stack(project)
    del data["gateways"]["main"]["rate_limit"]
    (project / "platform.yaml").write_text(yaml.safe_dump(data))
    (project / "node_modules").symlink_to(REPO / "node_modules")
    env = {
        **os.environ,
        "CLOUDFLARE_API_TOKEN": TOKEN,
        "CLOUDFLARE_ACCOUNT_ID": ACCOUNT,
        "CFAI_REMOTE_AI_BASE_URL": remote[0],
    }

    def cfai(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cfai", "local", *args, "--project", str(project)],
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
            env=env,
        )

    try:
        up = cfai("up", "--config", str(project / "platform.yaml"), "--remote-ai", "--json")
        assert up.returncode == 0, up.stderr
        assert TOKEN not in up.stdout + up.stderr
        outputs = json.loads((project / ".cfai" / "local" / "outputs.json").read_text())
        yield outputs, project / ".cfai" / "local"
    finally:
        cfai("down")


def auth(outputs: dict[str, Any]) -> dict[str, str]:
    return {"authorization": f"Bearer {outputs['auth_token']}"}


def test_chat_runs_remotely_and_the_gateway_cache_and_logs_stay_local(
    platform: tuple[dict[str, Any], Path], remote: tuple[str, Recorder]
) -> None:
    outputs, _ = platform
    recorder = remote[1]
    before = len(recorder.runs)
    prompt = f"What is a remote binding? {uuid.uuid4()}"
    chat = f"{outputs['endpoints']['assistant']}/chat"
    first, second = (
        httpx.post(chat, json={"prompt": prompt}, headers=auth(outputs), timeout=30)
        for _ in range(2)
    )
    assert first.status_code == second.status_code == 200, first.text
    assert first.json()["response"] and first.json()["response"] == second.json()["response"]
    # One remote run, with the account's token; the repeat came from the local cache.
    assert recorder.runs[before:] == [{"model": LLAMA, "auth": f"Bearer {TOKEN}"}]
    a = outputs["api"]
    gateway = outputs["workers"]["assistant"]["gateway"]
    with httpx.Client(headers={"authorization": f"Bearer {a['token']}"}, timeout=10) as cf:
        logs = [
            cf.get(
                f"{a['base_url']}/accounts/{a['account_id']}/ai-gateway/gateways/{gateway}/logs/{r.headers['cf-aig-log-id']}"
            ).json()["result"]
            for r in (first, second)
        ]
    assert [log["cached"] for log in logs] == [False, True]
    assert logs[0]["tokens_out"] == first.json()["usage"]["completion_tokens"]


def test_streams_and_images_pass_through_from_the_remote(
    platform: tuple[dict[str, Any], Path], remote: tuple[str, Recorder]
) -> None:
    outputs, _ = platform
    recorder = remote[1]
    before = len(recorder.runs)
    with httpx.stream(
        "POST",
        f"{outputs['endpoints']['assistant']}/chat",
        json={"prompt": f"stream please {uuid.uuid4()}", "stream": True},
        headers=auth(outputs),
        timeout=30,
    ) as r:
        assert r.status_code == 200
        events = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]" and not any("error" in e for e in events[:-1])
    image = httpx.post(
        f"{outputs['endpoints']['studio']}/image",
        json={"prompt": f"a lighthouse {uuid.uuid4()}", "width": 320, "height": 256},
        headers=auth(outputs),
        timeout=30,
    )
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert Image.open(BytesIO(image.content)).size == (320, 256)
    models = [run["model"] for run in recorder.runs[before:]]
    assert models == [LLAMA, outputs["workers"]["studio"]["models"][0]]


def test_remote_errors_reach_the_worker_in_the_binding_error_shape(
    platform: tuple[dict[str, Any], Path], remote: tuple[str, Recorder]
) -> None:
    outputs, state = platform
    recorder = remote[1]
    before = len(recorder.runs)
    # The binding wire, as workerd sends env.AI.run (with the binding token its external
    # service injects): the local emulator would have answered.
    token = BindingKey.read(state).mint(BindingScope("ai", "assistant"))
    r = httpx.post(
        f"{outputs['api']['base_url'].removesuffix('/client/v4')}/run?version=3",
        json={"inputs": {"prompt": "FAIL-REMOTE"}, "options": {}},
        headers={"host": "workers-binding.ai", "cf-consn-model-id": LLAMA, BINDING_HEADER: token},
        timeout=30,
    )
    assert r.status_code == 400 and r.headers["content-type"] == "application/json"
    assert r.json()["internalCode"] == 5006 and "remote says no" in r.json()["description"]
    # Through the Worker: an honest error, not a local answer.
    chat = httpx.post(
        f"{outputs['endpoints']['assistant']}/chat",
        json={"prompt": f"FAIL-REMOTE {uuid.uuid4()}"},
        headers=auth(outputs),
        timeout=30,
    )
    assert chat.status_code >= 400 and "error" in chat.json()
    assert len(recorder.runs) >= before + 2
    # The token is in no file, log or command line of the local platform.
    run = json.loads((state / "run.json").read_text())
    for pid in run["pids"].values():
        assert TOKEN not in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")
    workerd = [*state.glob("workerd-*.log"), *state.glob("workerd-*.capnp")]
    assert workerd  # a log and a config per running version of a script
    for path in [state / n for n in ("emulator.log", "outputs.json", "run.json")] + workerd:
        assert TOKEN not in path.read_text(errors="replace"), path.name


def test_unauthenticated_binding_calls_never_reach_the_remote(
    platform: tuple[dict[str, Any], Path], remote: tuple[str, Recorder]
) -> None:
    """Issue 11, "same, with --remote-ai": any local process could run models on the
    account's bill with an unauthenticated `/run` on the binding host."""
    outputs, _ = platform
    recorder = remote[1]
    before = len(recorder.runs)
    base = outputs["api"]["base_url"].removesuffix("/client/v4")
    gateway = outputs["workers"]["assistant"]["gateway"]
    forged = BindingKey.generate().mint(BindingScope("ai", "assistant"))
    for extra in ({}, {BINDING_HEADER: forged}, {BINDING_HEADER: "v1.x.y"}):
        for path, options in (("/run", {}), ("/ai-gateway/run", {"gateway": {"id": gateway}})):
            r = httpx.post(
                f"{base}{path}?version=3",
                json={"inputs": {"prompt": "bill me"}, "options": options},
                headers={"host": "workers-binding.ai", "cf-consn-model-id": LLAMA, **extra},
                timeout=30,
            )
            assert r.status_code == 401, (path, r.text)
            assert r.json()["internalCode"] == 10000
    assert len(recorder.runs) == before


def test_remote_ai_without_credentials_names_what_is_missing(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDFLARE_")}
    r = subprocess.run(
        [sys.executable, "-m", "cfai", "local", "up", "--remote-ai", "--project", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "CLOUDFLARE_API_TOKEN" in r.stderr and "CLOUDFLARE_ACCOUNT_ID" in r.stderr
    assert not (tmp_path / ".cfai").exists()


def test_the_token_is_in_the_emulators_environment_only(
    platform: tuple[dict[str, Any], Path],
) -> None:
    """Issue 11, "file modes and environments": the shell's ``CLOUDFLARE_API_TOKEN`` was in
    the router's and workerd's environment too."""
    _, state = platform
    run = json.loads((state / "run.json").read_text())
    environ = {name: Path(f"/proc/{pid}/environ").read_bytes() for name, pid in run["pids"].items()}
    assert TOKEN.encode() in environ["emulator"]  # as CFAI_REMOTE_AI_TOKEN, which it calls with
    assert "router" in environ and any(name.startswith("workerd-") for name in environ)
    for name in environ.keys() - {"emulator"}:
        assert TOKEN.encode() not in environ[name], name
