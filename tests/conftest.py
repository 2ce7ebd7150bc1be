"""Fixtures shared by every test package.

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
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


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
