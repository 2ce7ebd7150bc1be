"""Tables in CI logs and pipes: when stdout is not a terminal, the contract, deploy and
drift tables are plain lines, one per row, never cut or folded to the 80 columns rich
assumes there; the check column does not repeat the Worker's prefix."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from cfai.cli._tables import deploy_table, show
from cfai.deploy.driver import Failure
from cfai.deploy.orchestrator import DeployReport, Rollout

BOX = set("│┃─━┏┓┗┛╇╈┡┩")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nobody listens once closed: connections refused


def test_cfai_test_piped_at_80_columns_writes_one_whole_line_per_check(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    outputs = {
        "target": "local",
        "stack": "ci",
        "endpoints": {"assistant": url},
        "workers": {
            "assistant": {"kind": "chat", "script_name": "ci-assistant", "url": url, "auth": True}
        },
        "gateways": {},
        "auth_token": "not-a-real-token-0000",
    }
    (tmp_path / "outputs.json").write_text(json.dumps(outputs))
    done = subprocess.run(
        [sys.executable, "-m", "cfai", "test", "--outputs", "outputs.json"],
        cwd=tmp_path,
        env={**os.environ, "COLUMNS": "80"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,  # a pipe, as in CI
        stderr=subprocess.DEVNULL,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stdout
    table = done.stdout[done.stdout.index("cfai contract: outputs.json") :].splitlines()
    header, rows = table[1], [line for line in table[2:] if line.startswith("chat[assistant]")]
    assert header.split() == ["worker", "check", "result", "detail"]
    assert not BOX & set("".join(table))
    refused = "httpx.ConnectError: [Errno 111] Connection refused"
    # Each check on one line: its whole name, its outcome and its whole detail.
    prompt = [line for line in rows if " test_chat_prompt_json_answer " in line]
    assert len(prompt) == 1 and prompt[0].endswith(f"failed  {refused}"), prompt
    common = [line for line in rows if "worker_common::test_missing_token_401 " in line]
    assert len(common) == 1 and common[0].endswith(refused)
    assert not any(" chat::" in line for line in rows)  # the Worker column says chat[...]
    assert any(len(line) > 80 for line in rows)  # unwrapped, not fitted to 80 columns


def test_deploy_table_is_plain_lines_off_a_terminal_and_a_table_on_one() -> None:
    check = "chat::test_chat_prompt_json_answer"
    detail = "AssertionError: the answer is not JSON: 'I cannot help with that request today'"
    report = DeployReport(
        rollouts=[
            Rollout(
                "assistant",
                None,
                outcome="rolled_back",
                failed_at=0,
                failures=[Failure(check, "chat[assistant]", detail)],
            ),
            Rollout("kb", None, outcome="promoted", passed=[0, 10, 100]),
        ]
    )
    piped = io.StringIO()
    show(Console(file=piped, width=80, force_terminal=False), deploy_table(report))
    lines = piped.getvalue().splitlines()
    assert lines[0].split() == [
        "worker",
        "outcome",
        "passed",
        "at",
        "failed",
        "at",
        "check",
        "detail",
    ]
    (failed,) = [line for line in lines if line.startswith("assistant")]
    assert failed.split()[:4] == ["assistant", "rolled_back", "0%", check]
    assert failed.endswith(detail) and "chat[assistant]" not in failed
    assert any(line.split() == ["kb", "promoted", "0%,10%,100%"] for line in lines)
    assert not BOX & set(piped.getvalue())

    terminal = io.StringIO()
    show(Console(file=terminal, width=80, force_terminal=True), deploy_table(report))
    assert BOX & set(terminal.getvalue())  # a drawn table, for a person at a terminal
