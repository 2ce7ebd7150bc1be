"""A running platform is never replaced silently: a second `local up` with a changed
declaration says what it restarts and each Worker keeps its port (old URLs keep working);
`cfai dev` says it replaces a running `local up`, and when it stops, that nothing runs."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from support import polling

from cfai.local import LocalPlatform
from cfai.local.ports import plan_ports

REPO = Path(__file__).resolve().parents[2]
HEAD = 'account_id: "0123456789abcdef0123456789abcdef"\ncompatibility_date: "2025-09-01"\n'


def wait_for(what: str, check: Callable[[], Any]) -> Any:
    return polling.wait_for(what, check, timeout=60, interval=0.2, ignore=(OSError,))


def refused(url: str) -> bool:
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex(("127.0.0.1", httpx.URL(url).port or 0)) != 0


def cfai(project: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "cfai", *args],
        cwd=project,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_plan_ports_keeps_a_previous_port_while_free_and_moves_a_taken_one() -> None:
    with socket.socket() as held, socket.socket() as free:
        held.bind(("127.0.0.1", 0))
        held.listen()
        free.bind(("127.0.0.1", 0))
        taken, kept = held.getsockname()[1], free.getsockname()[1]
        free.close()  # its port is free again
        workers, emulator = plan_ports(["a", "b", "c"], None, {"a": kept, "b": taken})
    assert workers["a"] == kept
    assert workers["b"] != taken
    assert len({*workers.values(), emulator}) == 4


def test_up_says_what_it_restarts_keeps_ports_and_dev_says_it_replaces_it(
    tmp_path: Path,
) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    (project / "Pulumi.yaml").write_text((REPO / "Pulumi.yaml").read_text())
    declaration = project / "platform.yaml"
    declaration.write_text(HEAD + "workers: {assistant: {kind: chat}}\n")
    (project / "node_modules").symlink_to(REPO / "node_modules")
    lp = LocalPlatform(project, "local")
    log_path = tmp_path / "dev.log"
    proc: subprocess.Popen[bytes] | None = None
    try:
        cfai(project, "local", "up", "--config", "platform.yaml")
        first = lp.outputs()
        assert first is not None
        url = first.endpoints["assistant"]

        declaration.write_text(HEAD + "workers: {assistant: {kind: chat}, helper: {kind: chat}}\n")
        said = cfai(project, "local", "up", "--config", "platform.yaml")
        assert "stack local is running with another declaration" in said, said
        assert "restarting the emulator and workerd" in said
        assert "Workers assistant keep their ports where free" in said
        assert "new: helper" in said
        second = lp.outputs()
        assert second is not None
        assert second.endpoints["assistant"] == url  # the old URL keeps working
        assert second.api is not None and first.api is not None
        assert second.api.base_url == first.api.base_url
        assert httpx.get(f"{url}/health", timeout=10).status_code == 200

        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "cfai", "dev", "--config", "platform.yaml"],
                cwd=project,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        text = lambda: log_path.read_text(errors="replace")  # noqa: E731
        wait_for("dev to serve", lambda: "watching" in text())
        assert "runs already (`local up`): cfai dev replaces it" in text(), text()
        third = lp.outputs()
        assert third is not None
        assert third.endpoints == second.endpoints  # both Workers kept their ports
        assert httpx.get(f"{url}/health", timeout=10).status_code == 200
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0, text()
        assert "stopped; nothing runs now" in text()
        assert "`cfai local up`" in text()
        assert refused(url)
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        lp.down()
    assert not lp.status().processes
