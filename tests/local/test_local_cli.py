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
    assert f"{workerd}: pid" in status.stdout and "DEAD" in status.stdout
    assert f"{workerd} died" in status.stderr and "cfai local up" in status.stderr
    state = cli.project / ".cfai" / "local"
    refused = cli("reset")
    assert refused.returncode == 1 and str(state) in refused.stderr and state.is_dir()
    done = cli("reset", "--yes")
    assert done.returncode == 0, done.stderr
    assert not state.exists()
    assert not _running(report["processes"]["emulator"]["pid"])
