"""`cfai local up/status/reset` as a user runs them: a platform from `--config`, fixed
ports, masked JSON, idempotent re-`up`, a dead process noticed, state wiped."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from support.polling import wait_for

from cfai.local.ports import free_port

REPO = Path(__file__).resolve().parents[2]


def platform_yaml(**worker_changes: Any) -> str:
    data = yaml.safe_load((REPO / "Pulumi.local.yaml").read_text())["config"]["cfai:platform"]
    # These tests count ports and examples of the chat, rag and image Workers.
    data["workers"] = {
        k: w for k, w in data["workers"].items() if w["kind"] in ("chat", "rag", "image")
    }
    data["workers"]["assistant"].update(worker_changes)
    return yaml.safe_dump(data)


class Cli:
    def __init__(self, project: Path) -> None:
        self.project = project
        self.config = str(project / "platform.yaml")

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cfai", "local", *args, "--project", str(self.project)],
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "COLUMNS": "200"},  # tables unwrapped, as on a wide terminal
        )


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    project = tmp_path / "proj"
    project.mkdir()
    (project / "Pulumi.yaml").write_text((REPO / "Pulumi.yaml").read_text())
    (project / "platform.yaml").write_text(platform_yaml())
    shutil.copytree(REPO / "src" / "adapters", project / "src" / "adapters")  # the tone finetune
    (project / "node_modules").symlink_to(REPO / "node_modules")
    run = Cli(project)
    try:
        yield run
    finally:
        run("down")


def consecutive_free_ports(n: int) -> int:
    """A base port with n free ports after it (bounded search)."""
    for _ in range(50):
        base = free_port()
        if base + n > 65535:
            continue
        try:
            for p in range(base, base + n):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
        except OSError:
            continue
        return base
    raise AssertionError("no run of free ports found")


def test_up_from_config_on_fixed_ports_prints_masked_json_and_is_idempotent(cli: Cli) -> None:
    base = consecutive_free_ports(5)
    up = cli("up", "--config", cli.config, "--port", str(base), "--json")
    assert up.returncode == 0, up.stderr
    shown = json.loads(up.stdout)
    # Workers by key on base, base+1, ...; the emulator on the next port.
    assert shown["endpoints"] == {
        "assistant": f"http://127.0.0.1:{base}",
        "kb": f"http://127.0.0.1:{base + 1}",
        "studio": f"http://127.0.0.1:{base + 2}",
        "support": f"http://127.0.0.1:{base + 3}",
    }
    assert shown["api"]["base_url"] == f"http://127.0.0.1:{base + 4}/client/v4"
    assert shown["auth_token"] == shown["api"]["token"] == "<secret: cfai local token>"
    token = cli("token").stdout.strip()
    assert len(token) > 16 and token not in up.stdout + up.stderr
    assert httpx.get(f"{shown['endpoints']['kb']}/health", timeout=10).status_code == 200
    before = cli("status", "--json")
    assert before.returncode == 0, before.stdout
    pids = {k: p["pid"] for k, p in json.loads(before.stdout)["processes"].items()}

    again = cli("up", "--config", cli.config)
    assert again.returncode == 0, again.stderr
    assert "already running" in again.stdout and f"http://127.0.0.1:{base}" in again.stdout
    assert (again.stdout + again.stderr).count("already running") == 1  # said once
    after = json.loads(cli("status", "--json").stdout)
    assert {k: p["pid"] for k, p in after["processes"].items()} == pids

    # A changed declaration restarts: new processes, the new system prompt serves.
    (cli.project / "platform.yaml").write_text(platform_yaml(system_prompt="Answer as a pirate."))
    changed = cli("up", "--config", cli.config, "--port", str(base))
    assert changed.returncode == 0, changed.stderr
    assert "already running" not in changed.stdout
    restarted = json.loads(cli("status", "--json").stdout)["processes"]
    # Every process is new: the same names (emulator, router, unchanged Workers' versions)
    # with new pids; the changed Worker runs a new version under a name of its own.
    assert {"emulator", "router"} <= set(restarted) and len(restarted) == len(pids)
    assert all(restarted[k]["pid"] != pids[k] for k in pids if k in restarted)
    assert not any(_running(pid) for pid in pids.values())


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_up_prints_curl_examples_without_the_token(cli: Cli) -> None:
    up = cli("up", "--config", cli.config)
    assert up.returncode == 0, up.stderr
    token = cli("token").stdout.strip()
    assert token not in up.stdout + up.stderr
    lines = up.stdout.splitlines()
    for path in ("/chat", "/query", "/image"):
        line = next(line for line in lines if line.startswith("curl") and path in line)
        assert '-H "authorization: Bearer $(cfai local token)"' in line
    assert any(
        line.startswith("curl") and line.endswith("-o /tmp/cfai-image.png") for line in lines
    )
    # The examples work when pasted into a shell (the token command swapped for its value).
    chat = next(line for line in lines if line.startswith("curl") and "/chat" in line)
    pasted = chat.replace("$(cfai local token)", token)
    r = subprocess.run(["sh", "-c", pasted], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "response" in json.loads(r.stdout)
    # The playground pages of the local stack, each a URL that serves its page.
    pages = lines[lines.index("playground pages (paste the token from `cfai local token`):") :]
    kb = next(line.split(": ", 1)[1] for line in pages if line.startswith("  kb: "))
    assert "<h1>Documents and questions</h1>" in httpx.get(kb, timeout=30).text


def test_taken_port_is_a_user_error_naming_it(cli: Cli) -> None:
    # Find five consecutive free ports and hold only the last: the emulator's (base+4), so
    # the Workers' four are free and the message must name the emulator's.
    held: list[socket.socket] = []
    for base in range(20000, 60000, 7):
        held = [socket.socket() for _ in range(5)]
        try:
            for sock, port in zip(held, range(base, base + 5), strict=True):
                sock.bind(("127.0.0.1", port))
        except OSError:
            for sock in held:
                sock.close()
            continue
        for sock in held[:4]:
            sock.close()
        break
    with held[-1] as s:
        s.listen()
        taken = s.getsockname()[1]
        up = cli("up", "--config", cli.config, "--port", str(taken - 4))
    assert up.returncode == 2
    assert f"port {taken} (emulator) is already in use" in up.stderr
    assert "Traceback" not in up.stderr
    assert cli("status").returncode == 1


def test_status_notices_a_dead_process_and_reset_wipes_state(cli: Cli) -> None:
    assert cli("status").returncode == 1
    up = cli("up", "--config", cli.config)
    assert up.returncode == 0, up.stderr
    report = json.loads(cli("status", "--json").stdout)
    assert report["running"] and all(p["alive"] for p in report["processes"].values())
    # A Worker's workerd process (one per running version) dies.
    workerd = next(name for name in report["processes"] if name.startswith("workerd-"))
    pid = report["processes"][workerd]["pid"]
    os.kill(pid, signal.SIGKILL)
    wait_for("the killed workerd to be gone", lambda: not _running(pid), timeout=10)
    status = cli("status")
    assert status.returncode == 1
    row = next(line for line in status.stdout.splitlines() if workerd in line)
    assert str(pid) in row and "DEAD" in row
    assert f"{workerd} died" in status.stderr and "cfai local up" in status.stderr
    state = cli.project / ".cfai" / "local"
    refused = cli("reset")
    assert refused.returncode == 1 and str(state) in refused.stderr and state.is_dir()
    done = cli("reset", "--yes")
    assert done.returncode == 0, done.stderr
    assert not state.exists()
    assert not _running(report["processes"]["emulator"]["pid"])


def test_local_verbs_find_the_project_from_a_subfolder(cli: Cli) -> None:
    # A user in a subfolder of the project (as with git or pulumi): status, token and down
    # act on the platform that `up` started at the root, and down really stops it.
    up = cli("up", "--config", cli.config)
    assert up.returncode == 0, up.stderr
    pids = [p["pid"] for p in json.loads(cli("status", "--json").stdout)["processes"].values()]
    sub = cli.project / "src" / "adapters"

    def here(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cfai", "local", *args],
            cwd=sub,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )

    status = here("status", "--json")
    assert status.returncode == 0, status.stdout + status.stderr
    assert json.loads(status.stdout)["running"]
    assert here("token").stdout.strip() == cli("token").stdout.strip()
    down = here("down")
    assert down.returncode == 0 and "stopped" in down.stdout, down.stdout + down.stderr
    assert not any(_running(pid) for pid in pids)


def test_local_verbs_outside_any_project_say_so(tmp_path: Path) -> None:
    for verb in ("status", "down", "token"):
        r = subprocess.run(
            [sys.executable, "-m", "cfai", "local", verb],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        assert r.returncode == 2, (verb, r.stdout, r.stderr)
        assert f"no cfai project found in {tmp_path.resolve()}" in r.stderr
        assert "Pulumi.yaml" in r.stderr and "not running" not in r.stdout


def test_up_without_node_for_the_workerd_launcher_says_to_install_node(tmp_path: Path) -> None:
    # npm's workerd launcher is a `#!/usr/bin/env node` script where the binary could not
    # replace it; on a machine without node, up says so instead of "exited during start".
    project = tmp_path / "proj"
    launcher = project / "node_modules" / ".bin" / "workerd"
    launcher.parent.mkdir(parents=True)
    launcher.write_text("#!/usr/bin/env node\nrequire('./workerd-binary');\n")
    launcher.chmod(0o755)
    (project / "Pulumi.yaml").write_text((REPO / "Pulumi.yaml").read_text())
    (project / "p.yaml").write_text(
        'account_id: "0123456789abcdef0123456789abcdef"\nworkers: {assistant: {kind: chat}}\n'
    )
    empty = tmp_path / "bin"
    empty.mkdir()
    r = subprocess.run(
        [sys.executable, "-m", "cfai", "local", "up", "--config", "p.yaml", "--timeout", "20"],
        cwd=project,
        env={**os.environ, "PATH": str(empty)},
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    subprocess.run(
        [sys.executable, "-m", "cfai", "local", "down"],
        cwd=project,
        capture_output=True,
        timeout=60,
    )
    assert r.returncode == 2, r.stderr[-2000:]
    assert "node is not on PATH; install Node.js 20 or newer" in r.stderr
    assert "Traceback" not in r.stderr and "FileNotFoundError" not in r.stderr


MINE = """export default {
  async fetch(request) {
    console.log("mine served " + new URL(request.url).pathname);
    return new Response("ok");
  },
};
"""


def _cfai(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cfai", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_status_logs_and_gateway_logs_show_what_a_user_looks_for(cli: Cli) -> None:
    # A user's own Worker that logs, beside the chat Worker behind the gateway.
    (cli.project / "src" / "mine.js").write_text(MINE)
    data = yaml.safe_load(platform_yaml())
    data["workers"]["mine"] = {"kind": "custom", "main": "src/mine.js"}
    (cli.project / "platform.yaml").write_text(yaml.safe_dump(data))
    up = cli("up", "--config", cli.config)
    assert up.returncode == 0, up.stderr
    outputs = json.loads((cli.project / ".cfai" / "local" / "outputs.json").read_text())
    token = outputs["auth_token"]

    # local status: a table of processes with their log files, Workers with their health,
    # and the API base URL.
    status = cli("status")
    assert status.returncode == 0, status.stdout + status.stderr
    state = cli.project / ".cfai" / "local"
    processes = json.loads(cli("status", "--json").stdout)["processes"]
    workerds = sorted(name for name in processes if name.startswith("workerd-"))
    assert len(workerds) == len(outputs["endpoints"])  # one workerd per running version
    for process in ("emulator", "router", *workerds):
        row = next(line for line in status.stdout.splitlines() if f" {process} " in line)
        assert "alive" in row and str(state / f"{process}.log") in row, row
    for key, url in outputs["endpoints"].items():
        row = next(line for line in status.stdout.splitlines() if f" {key} " in line)
        assert url in row and " ok " in row, row
    assert f"API base URL: {outputs['api']['base_url']}" in status.stdout

    # cfai logs WORKER: the Worker's console output, prefixed with its process.
    assert httpx.get(f"{outputs['endpoints']['mine']}/hello", timeout=10).text == "ok"
    lines = _wait_for_output(lambda: _cfai(cli.project, "logs", "mine").stdout, "/hello")
    assert any(line.startswith("workerd") and "| mine served /hello" in line for line in lines)

    # cfai logs --follow: new lines as they come, until Ctrl-C.
    follow = subprocess.Popen(
        [sys.executable, "-m", "cfai", "logs", "--follow", "-n", "0"],
        cwd=cli.project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "COLUMNS": "200"},
    )
    seen: list[str] = []
    assert follow.stdout is not None and follow.stderr is not None
    # It says when it follows (the files' ends taken), so the request below comes after.
    following = follow.stderr.readline()
    assert "following emulator.log, router.log, " in following
    assert all(f"{name}.log" in following for name in workerds), following
    reader = threading.Thread(target=lambda: seen.extend(iter(follow.stdout.readline, "")))
    reader.start()
    try:
        assert httpx.get(f"{outputs['endpoints']['mine']}/later", timeout=10).text == "ok"
        deadline = time.monotonic() + 30
        while not any("/later" in line for line in seen) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert any("mine served /later" in line for line in seen), seen
        follow.send_signal(signal.SIGINT)
        assert follow.wait(timeout=30) == 0
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.wait(timeout=10)
        reader.join(timeout=10)
        if follow.stdout:
            follow.stdout.close()
        if follow.stderr:
            follow.stderr.close()

    # cfai logs --gateway: the gateway's entries through its REST API, newest first.
    chat = outputs["endpoints"]["assistant"]
    auth = {"authorization": f"Bearer {token}"}
    answered = httpx.post(
        f"{chat}/chat", json={"prompt": "Gateway logs?"}, headers=auth, timeout=30
    )
    assert answered.status_code == 200, answered.text
    log_id = answered.headers["cf-aig-log-id"]
    # The gateway's cache status reaches the client as AI Gateway sends it: MISS, then HIT.
    assert answered.headers["cf-aig-cache-status"] == "MISS"
    again = httpx.post(f"{chat}/chat", json={"prompt": "Gateway logs?"}, headers=auth, timeout=30)
    assert again.headers["cf-aig-cache-status"] == "HIT" and again.json() == answered.json()
    feedback = {"log_id": log_id, "feedback": 1}
    assert (
        httpx.post(f"{chat}/feedback", json=feedback, headers=auth, timeout=30).status_code == 200
    )
    table = _cfai(cli.project, "logs", "--gateway", "main")
    assert table.returncode == 0, table.stderr
    row = next(line for line in table.stdout.splitlines() if log_id in line)
    assert "@cf/meta/llama-3.1-8b-instruct" in row and " 200 " in row and " no " in row
    assert "+1" in row
    hit = next(line for line in table.stdout.splitlines() if again.headers["cf-aig-log-id"] in line)
    assert " yes " in hit
    unknown = _cfai(cli.project, "logs", "--gateway", "nope")
    assert unknown.returncode == 2 and "no gateway 'nope' (gateways: main)" in unknown.stderr


def _wait_for_output(run: Any, needle: str, bound: float = 30.0) -> list[str]:
    deadline = time.monotonic() + bound
    text = run()
    while needle not in text and time.monotonic() < deadline:
        time.sleep(0.2)
        text = run()
    return str(text).splitlines()
