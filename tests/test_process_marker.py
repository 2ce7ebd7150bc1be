"""The ``platform`` marker finds the tests that start processes by what their code reaches,
and the guard catches one it missed: `make check` stays free of processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from support.processes import ProcessGuard, spawns

from cfai.config import load_stack
from cfai.local import LocalPlatform
from cfai.render import render_platform

REPO = Path(__file__).resolve().parents[1]


def _run_node() -> str:
    return subprocess.run(["node", "--version"], capture_output=True, text=True).stdout


def _through_a_helper() -> str:
    return _run_node()


def _with_the_local_platform() -> Any:
    return LocalPlatform(REPO, "never-started").up


def _pure() -> int:
    return len(render_platform(load_stack("local", REPO), base_dir=REPO))


def _item(function: Any, *fixtures: Any) -> Any:
    defs = {f.__name__: [SimpleNamespace(func=f)] for f in fixtures}
    return SimpleNamespace(function=function, _fixtureinfo=SimpleNamespace(name2fixturedefs=defs))


def test_a_test_reaching_a_process_through_helpers_or_fixtures_is_found() -> None:
    assert spawns(_item(_run_node))
    assert spawns(_item(_through_a_helper))
    assert spawns(_item(_with_the_local_platform))  # into cfai: LocalPlatform starts processes
    assert spawns(_item(_pure, _through_a_helper))  # a fixture that starts one
    assert not spawns(_item(_pure))


def test_the_guard_records_a_process_started_while_armed() -> None:
    guard = ProcessGuard()
    guard.armed = True
    try:
        subprocess.run([sys.executable, "-c", "pass"], check=True)
    finally:
        guard.armed = False
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    assert len(guard.started) == 1 and guard.started[0].startswith("subprocess.Popen")
