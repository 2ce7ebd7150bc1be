"""Fixtures and markers shared by every test package.

The ``platform`` marker: every test that starts processes (workerd, the emulator, the
router, node, the cfai CLI) carries it, applied here from what the test's code and its
fixtures reach (`support.processes.spawns`), so a new test is marked without anyone
remembering. ``make check`` runs the rest (``-m "not platform"``); a test that starts a
process without the marker fails there, naming what it started.

`local_platform`: ONE local platform (emulator + workerd running the `local` stack's
declaration) per test session, started on first use and always stopped in a finalizer, even
when a test or the start itself fails. It runs under its own state directory
(``.cfai/pytest-<pid>``, removed afterwards), so it neither stops nor reuses a developer's
`cfai local up` or another pytest run's platform; its output goes to log files there,
never to the test output.
Tests must not exhaust its gateway's rate limit or reset its emulator: start a dedicated
`LocalPlatform` for that (see tests/contract/test_contract_fails.py).
"""

from __future__ import annotations

import os
import platform
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.processes import ProcessGuard, spawns

REPO_ROOT = Path(__file__).resolve().parent.parent
_GUARD = ProcessGuard()
# The standard library asks `uname` once per process for the processor name (clients such as
# openai report it); ask now, so that no test is blamed for it.
platform.uname().processor  # noqa: B018


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("platform") is None and spawns(item):
            item.add_marker(pytest.mark.platform)
        # Under xdist (`--dist loadgroup`), the session's local platform starts in one worker
        # (pytest 9.2 with xdist 3.8 does not honour the groups: `make test` uses loadfile).
        if "local_platform" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("local_platform"))


@pytest.fixture(autouse=True)
def _processes_only_in_platform_tests(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test without the ``platform`` marker must not start a process."""
    if request.node.get_closest_marker("platform") is not None:
        yield
        return
    _GUARD.started.clear()
    _GUARD.armed = True
    try:
        yield
    finally:
        _GUARD.armed = False
    if _GUARD.started:
        pytest.fail(
            f"started {_GUARD.started[0]} but is not marked `platform`: reach the process "
            "through a helper or fixture the marker finds (tests/support/processes.py), or "
            "mark it @pytest.mark.platform"
        )


@pytest.fixture(scope="session")
def local_platform(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """The outputs map of the session's local platform (`LocalPlatform.up()`)."""
    from cfai.config import load_stack
    from cfai.local import LocalPlatform

    # One state directory per test process: concurrent pytest runs (other engineers, xdist
    # workers) must not stop each other's platform.
    platform = LocalPlatform(REPO_ROOT, f"pytest-{os.getpid()}")

    def stop() -> None:
        platform.down()
        shutil.rmtree(platform.state_dir, ignore_errors=True)

    request.addfinalizer(stop)
    yield platform.up(load_stack("local", REPO_ROOT), timeout=60).to_json()
