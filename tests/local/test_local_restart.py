"""Starting again: on the same fixed ports right after `down`, and after an `up` killed
midway.

Reproductions from issue 11: "restart on a fixed port" (``up --port 8810``, one request,
``down``, ``up --port 8810`` within a minute said "port 8812 (emulator) is already in use"
while only TIME_WAIT remained) and "stale outputs after an interrupted up" (kill -9 of
``cfai local up`` right after workerd started, then ``up`` said "already running;
unchanged" with outputs naming ports nobody listened on).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from support.stack import local_stack

from cfai.config import PlatformConfig, load_file
from cfai.local import LocalPlatform
from cfai.local.ports import plan_ports

pytestmark = pytest.mark.platform

REPO = Path(__file__).resolve().parents[2]
TIME_WAIT = "06"  # the st column of /proc/net/tcp


def time_wait_ports() -> set[int]:
    """Local ports of 127.0.0.1 sockets in TIME_WAIT."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == TIME_WAIT:
            found.add(int(fields[1].split(":")[1], 16))
    return found


def leave_time_wait() -> int:
    """A port with nothing listening on it but a closed connection in TIME_WAIT (the server
    side closed first, as a stopped server does)."""
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = int(server.getsockname()[1])
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = server.accept()
        accepted.close()  # the server's side closes first: its port goes to TIME_WAIT
        client.recv(1)
        client.close()
    assert port in time_wait_ports()
    return port


def test_a_port_left_in_time_wait_is_free_for_the_next_up() -> None:
    port = leave_time_wait()
    workers, emulator = plan_ports([], port)
    assert (workers, emulator) == ({}, port)


def test_a_port_someone_listens_on_is_still_taken() -> None:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = int(s.getsockname()[1])
        with pytest.raises(Exception, match=f"port {port} \\(emulator\\) is already in use"):
            plan_ports([], port)


def _declaration(tmp: Path) -> PlatformConfig:
    data = local_stack(tmp)
    del data["gateways"]["main"]["rate_limit"]
    del data["workers"]["studio"]
    (tmp / "platform.yaml").write_text(yaml.safe_dump(data))
    return load_file(tmp / "platform.yaml")


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[LocalPlatform]:
    local = LocalPlatform(REPO, f"pytest-restart-{os.getpid()}")
    try:
        yield local
    finally:
        local.down()
        shutil.rmtree(local.state_dir, ignore_errors=True)


def _three_free_ports() -> int:
    for base in range(21000 + os.getpid() % 1000 * 7, 60000, 7):
        try:
            plan_ports(["a", "b"], base)
        except Exception:
            continue
        return base
    raise AssertionError("no three consecutive free ports")


def test_up_on_a_fixed_port_starts_again_right_after_down(
    platform: LocalPlatform, tmp_path: Path
) -> None:
    declaration = _declaration(tmp_path)
    base = _three_free_ports()
    outputs = platform.up(declaration, port=base, timeout=60)
    with httpx.Client(timeout=30) as client:  # kept open: `down` closes it from the server side
        r = client.post(
            f"{outputs.workers['assistant'].url}/chat",
            json={"prompt": "hello"},
            headers={"authorization": f"Bearer {outputs.auth_token}"},
        )
        assert r.status_code == 200, r.text
        platform.down()
    # What made the second `up` fail: a port of the run left in TIME_WAIT, nobody listening.
    assert base in time_wait_ports()
    again = platform.up(declaration, port=base, timeout=60)
    assert again.workers["assistant"].url == f"http://127.0.0.1:{base}"
    assert httpx.get(f"{again.workers['assistant'].url}/health").status_code == 200


def test_up_after_an_up_killed_midway_rewrites_the_outputs(
    platform: LocalPlatform, tmp_path: Path
) -> None:
    declaration = _declaration(tmp_path)
    first = platform.up(declaration, timeout=60)  # outputs.json of a finished run
    platform.down()
    run_json = platform.state_dir / "run.json"
    cli = [str(Path(sys.executable).parent / "cfai"), "local", "up", "--stack", platform.stack]
    with open(tmp_path / "up.log", "wb") as log:
        up = subprocess.Popen(
            [*cli, "--config", str(tmp_path / "platform.yaml"), "--project", str(REPO)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while not any(
            name.startswith("workerd-")  # the emulator's runtime started a Worker's version
            for name in (json.loads(run_json.read_text()) if run_json.exists() else {}).get(
                "pids", {}
            )
        ):
            assert up.poll() is None and time.monotonic() < deadline, (
                tmp_path / "up.log"
            ).read_text()
            time.sleep(0.02)
        up.send_signal(signal.SIGKILL)  # right after workerd started
    finally:
        up.wait(timeout=10)
    stale = platform.outputs()
    assert stale is not None and stale.workers["assistant"].url == first.workers["assistant"].url
    outputs = platform.up(declaration, reuse=True, timeout=60)
    assert not platform.reused
    for worker in outputs.workers.values():
        assert httpx.get(f"{worker.url}/health", timeout=30).status_code == 200
    assert platform.outputs() == outputs
    assert platform.status().running
