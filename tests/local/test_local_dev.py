"""`cfai dev` on a copy of the project with its own templates (``--templates``): an edited
template is served within a bounded wait (a new workerd process for the edited Worker,
the emulator, the other Workers' processes and the ports kept), a broken declaration keeps the last good version serving, and SIGINT stops every
process."""

from __future__ import annotations

import os
import shutil
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

REPO = Path(__file__).resolve().parents[2]


def wait_for(what: str, check: Callable[[], Any]) -> Any:
    # A running platform's files and HTTP answers come and go while dev reloads.
    return polling.wait_for(
        what,
        check,
        timeout=60,
        interval=0.2,
        ignore=(OSError, httpx.HTTPError, ValueError, KeyError),
    )


def running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return False


def serving(url: str, run: dict[str, int]) -> int:
    """The pid of the workerd process that answers `url` (the router names the version)."""
    vid = httpx.get(f"{url}/health", timeout=10).headers["x-cfai-version-id"]
    return run[f"workerd-{vid[:8]}"]


def refused(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_dev_reloads_an_edited_template_and_stops_on_sigint(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    # The Workers render from this copy of the templates, so an edit leaves the repo alone.
    templates = tmp_path / "templates"
    shutil.copytree(REPO / "templates", templates)
    for name in ("Pulumi.yaml", "Pulumi.local.yaml"):
        shutil.copy(REPO / name, project / name)
    shutil.copytree(REPO / "src" / "adapters", project / "src" / "adapters")  # the tone finetune
    (project / "node_modules").symlink_to(REPO / "node_modules")
    log = (tmp_path / "dev.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cfai",
            "dev",
            "--stack",
            "local",
            "--project",
            str(project),
            "--templates",
            str(templates),
        ],
        cwd=project,
        env={**os.environ},
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    dev = LocalPlatform(project, "local")  # run by the `cfai dev` subprocess; read here
    pids: list[int] = []
    ports: list[int] = []
    try:
        text = lambda: (tmp_path / "dev.log").read_text(errors="replace")  # noqa: E731
        wait_for("dev to serve", lambda: "watching" in text())
        outputs = dev.outputs()
        assert outputs is not None
        run = {name: p.pid for name, p in dev.status().processes.items()}
        chat = outputs.endpoints["assistant"]
        before = httpx.get(f"{chat}/health", timeout=10).json()["template_sha256"]
        # Every chat Worker (assistant, and support with its LoRA) renders from the template.
        chats = [k for k, w in outputs.workers.items() if w.kind == "chat"]
        old = {k: serving(outputs.endpoints[k], run) for k in chats}

        template = templates / "workers" / "chat.js.j2"
        template.write_text(template.read_text() + "\n// edited during cfai dev\n")
        after = wait_for(
            "the edited template to serve",
            lambda: (
                (h := httpx.get(f"{chat}/health", timeout=5).json()["template_sha256"]) != before
                and h
            ),
        )
        wait_for("the reload report", lambda: "reloaded:" in text())
        assert after[:12] in text() and "chat.js.j2" in text()
        rerun = {name: p.pid for name, p in dev.status().processes.items()}
        assert rerun["emulator"] == run["emulator"]  # state kept
        # Each edited Worker runs in a new workerd process; the old ones stop (after their
        # drain), the other Workers' are untouched.
        new = {k: serving(outputs.endpoints[k], rerun) for k in chats}
        assert all(new[k] != old[k] for k in chats)
        wait_for("the old chat processes to stop", lambda: not any(map(running, old.values())))
        replaced = {*old.values(), *new.values()}
        assert {n: p for n, p in rerun.items() if p not in replaced} == {
            n: p for n, p in run.items() if p not in replaced
        }

        stack = project / "Pulumi.local.yaml"
        good = stack.read_text()
        stack.write_text(good.replace("index: docs", "index: docz"))
        wait_for("the problem to be reported", lambda: "docz" in text())
        assert "still serving the last good version" in text()
        assert httpx.get(f"{chat}/health", timeout=10).json()["template_sha256"] == after

        pids = list(rerun.values())
        ports = [int(u.rsplit(":", 1)[1]) for u in outputs.endpoints.values()]
        assert outputs.api is not None
        ports.append(int(httpx.URL(outputs.api.base_url).port or 0))  # the emulator's
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0, text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
            subprocess.run(
                [sys.executable, "-m", "cfai", "local", "down", "--project", str(project)],
                capture_output=True,
                timeout=60,
            )
        log.close()
    assert pids and not any(running(p) for p in pids)
    assert all(refused(p) for p in ports)
    assert not dev.status().processes  # no run recorded any more
    assert not (dev.state_dir / "run.json").exists()


def test_dev_started_with_sigint_ignored_still_stops_on_sigint(tmp_path: Path) -> None:
    # `make test &`, nohup and some CI wrappers start their jobs with SIGINT ignored, which
    # Python keeps: `cfai dev` must install its own handler and stop every process on SIGINT.
    project = tmp_path / "proj"
    project.mkdir()
    shutil.copy(REPO / "Pulumi.yaml", project / "Pulumi.yaml")
    (project / "platform.yaml").write_text(
        'account_id: "0123456789abcdef0123456789abcdef"\n'
        'compatibility_date: "2025-09-01"\n'
        "workers: {assistant: {kind: chat}}\n"
    )
    (project / "node_modules").symlink_to(REPO / "node_modules")
    log_path = tmp_path / "dev.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cfai", "dev", "--config", "platform.yaml"],
            cwd=project,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
        )
        dev = LocalPlatform(project, "local")
        pids: list[int] = []
        try:
            wait_for("dev to serve", lambda: "watching" in log_path.read_text(errors="replace"))
            pids = [p.pid for p in dev.status().processes.values()]
            assert pids
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=30) == 0, log_path.read_text(errors="replace")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
                dev.down()
    assert "stopping" in log_path.read_text(errors="replace")
    assert not any(running(p) for p in pids)
    assert not dev.status().processes


def test_dev_keeps_serving_a_broken_template_names_its_file_and_line_and_recovers(
    tmp_path: Path,
) -> None:
    # The most common dev-loop mistake: a template that no longer parses. The last good build
    # keeps answering (as rendered, not re-rendered from the broken file), the error names the
    # file the user edited (`templates/...`, relative to where they run) and its line, and the
    # next save that works reloads.
    project = tmp_path / "proj"
    project.mkdir()
    shutil.copy(REPO / "Pulumi.yaml", project / "Pulumi.yaml")
    (project / "platform.yaml").write_text(
        'account_id: "0123456789abcdef0123456789abcdef"\n'
        'compatibility_date: "2025-09-01"\n'
        "workers: {assistant: {kind: chat}}\n"
    )
    shutil.copytree(REPO / "templates", project / "templates")
    (project / "node_modules").symlink_to(REPO / "node_modules")
    log_path = tmp_path / "dev.log"
    text = lambda: log_path.read_text(errors="replace")  # noqa: E731
    command = ["dev", "--config", "platform.yaml", "--templates", "templates"]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cfai", *command],
            cwd=project,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        dev = LocalPlatform(project, "local")
        try:
            wait_for("dev to serve", lambda: "watching" in text())
            outputs = dev.outputs()
            assert outputs is not None
            chat = outputs.endpoints["assistant"]
            good = httpx.get(f"{chat}/health", timeout=10).json()["template_sha256"]

            template = project / "templates" / "workers" / "chat.js.j2"
            source = template.read_text()
            first, rest = source.split("\n", 1)
            template.write_text(f"{first}\n{{% if %}}\n{rest}")  # line 2 no longer parses
            wait_for("the template error", lambda: "still serving" in text())
            assert "templates/workers/chat.js.j2:2" in text(), text()
            assert "_templates" not in text() and "Traceback" not in text()
            assert proc.poll() is None, text()
            # The last good build answers, unchanged.
            assert httpx.get(f"{chat}/health", timeout=10).json()["template_sha256"] == good
            answer = httpx.post(
                f"{chat}/chat",
                json={"messages": [{"role": "user", "content": "hi"}]},
                headers={"authorization": f"Bearer {outputs.auth_token}"},
                timeout=30,
            )
            assert answer.status_code == 200, answer.text

            template.write_text(source + "\n// fixed during cfai dev\n")
            fixed = wait_for(
                "the fixed template to serve",
                lambda: (
                    (h := httpx.get(f"{chat}/health", timeout=5).json()["template_sha256"]) != good
                    and h
                ),
            )
            wait_for("the reload report", lambda: "reloaded:" in text())
            assert fixed[:12] in text()
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=30) == 0, text()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
                dev.down()
    assert not dev.status().processes
