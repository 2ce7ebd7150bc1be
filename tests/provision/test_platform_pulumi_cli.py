"""`require_pulumi`: finds the Pulumi CLI where its installer puts it, or says how to install
it; `stack_outputs`: a stack's outputs map, a CLI that fails being a `PulumiError`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from cfai.errors import PulumiError, ToolMissingError
from cfai.provision.pulumi_cli import find_pulumi, require_pulumi, stack_outputs

REPO = Path(__file__).resolve().parents[2]


def _fake_pulumi(directory: Path) -> Path:
    directory.mkdir(parents=True)
    exe = directory / "pulumi"
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    return exe


@pytest.fixture
def no_pulumi(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-path"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PULUMI_HOME", raising=False)
    return tmp_path


def test_require_pulumi_without_the_cli_says_how_to_install_it(no_pulumi: Path) -> None:
    with pytest.raises(ToolMissingError) as caught:
        require_pulumi()
    assert str(caught.value) == (
        "the Pulumi CLI is not installed; install it from the Pulumi docs "
        "(curl -fsSL https://get.pulumi.com | sh) and `pulumi login`"
    )
    assert caught.value.user_fault


def test_require_pulumi_finds_it_on_path(no_pulumi: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exe = _fake_pulumi(no_pulumi / "bin")
    monkeypatch.setenv("PATH", str(exe.parent))
    assert require_pulumi() == exe


def test_require_pulumi_finds_the_installers_directory_off_path(
    no_pulumi: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exe = _fake_pulumi(no_pulumi / "home" / ".pulumi" / "bin")
    assert require_pulumi() == exe
    custom = _fake_pulumi(no_pulumi / "custom" / "bin")
    monkeypatch.setenv("PULUMI_HOME", str(custom.parent.parent))
    assert find_pulumi() == custom


def test_require_pulumi_ignores_a_file_that_cannot_run(no_pulumi: Path) -> None:
    exe = _fake_pulumi(no_pulumi / "home" / ".pulumi" / "bin")
    exe.chmod(0o644)
    assert find_pulumi() is None


def _scripted_pulumi(directory: Path, body: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    exe = directory / "pulumi"
    exe.write_text(f"#!{sys.executable}\nimport sys, time\n{body}\n")
    exe.chmod(0o755)
    return exe


def test_stack_outputs_read_the_map_and_add_the_deployers_api(
    no_pulumi: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    printed = {
        "target": "cloudflare",
        "workers": {"kb": {"kind": "rag", "url": "https://kb.acme.workers.dev"}},
        "auth_token": "tok-0123456789",
    }
    exe = _scripted_pulumi(no_pulumi / "bin", f"print({json.dumps(json.dumps(printed))})")
    monkeypatch.setenv("PATH", str(exe.parent))
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", "cf-token-0123456789")
    outputs = stack_outputs("staging", REPO)
    assert outputs.stack == "staging" and outputs.endpoints == {"kb": "https://kb.acme.workers.dev"}
    assert outputs.api is not None and outputs.api.token == "cf-token-0123456789"
    assert outputs.api.base_url == "https://api.cloudflare.com/client/v4"


def test_a_failing_stack_output_is_a_pulumi_error_not_a_missing_tool(
    no_pulumi: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exe = _scripted_pulumi(
        no_pulumi / "bin", "print('error: no stack named staging', file=sys.stderr); sys.exit(255)"
    )
    monkeypatch.setenv("PATH", str(exe.parent))
    with pytest.raises(PulumiError) as caught:
        stack_outputs("staging", REPO)
    assert not isinstance(caught.value, ToolMissingError)
    assert str(caught.value) == (
        "`pulumi stack output --stack staging` failed: error: no stack named staging"
    )
    assert caught.value.user_fault


def test_a_stack_output_that_never_answers_is_a_pulumi_error(
    no_pulumi: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exe = _scripted_pulumi(no_pulumi / "bin", "time.sleep(30)")
    monkeypatch.setenv("PATH", str(exe.parent))
    with pytest.raises(PulumiError, match=r"did not answer within 1s \(is the backend reachable"):
        stack_outputs("staging", REPO, timeout=1)


def test_stack_outputs_without_the_cli_is_the_missing_tool(no_pulumi: Path) -> None:
    with pytest.raises(ToolMissingError, match="pass the outputs with --outputs FILE"):
        stack_outputs("staging", REPO)
