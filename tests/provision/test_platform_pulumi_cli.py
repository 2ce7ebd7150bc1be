"""`require_pulumi`: finds the Pulumi CLI where its installer puts it, or says how to install it."""

from __future__ import annotations

from pathlib import Path

import pytest

from cfai.errors import ToolMissingError
from cfai.provision.pulumi_cli import find_pulumi, require_pulumi


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
