"""The local platform's state files and public API without starting processes: typed files
read and written in one place, a platform that is not running answers plainly, the router's
choice of version."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from cfai.errors import LocalPlatformError
from cfai.local import LocalPlatform
from cfai.local.router import pick
from cfai.local.state import Routes, RunRecord, StateFiles, VersionRoute, WorkerRoute


def _worker() -> WorkerRoute:
    return WorkerRoute(
        script_name="acme-chat",
        port=8787,
        versions={
            "old": VersionRoute(upstream="127.0.0.1:9001", sha256="a" * 64, process="workerd"),
            "new": VersionRoute(upstream="127.0.0.1:9002", sha256="b" * 64, process="workerd-new"),
        },
        split={"old": 90, "new": 10},
    )


def test_run_record_round_trips_and_is_forgotten(tmp_path: Path) -> None:
    files = StateFiles(tmp_path / "state")
    assert files.read_run() is None
    run = RunRecord(pids={"emulator": 11, "router": 12}, emulator_port=8790, fingerprint="f")
    files.write_run(run)
    assert files.read_run() == run
    assert json.loads(files.run_path.read_text())["pids"] == {"emulator": 11, "router": 12}
    files.forget_run()
    assert files.read_run() is None


def test_a_damaged_state_file_names_itself_and_the_fix(tmp_path: Path) -> None:
    files = StateFiles(tmp_path)
    files.run_path.write_text('{"pids": "not a map"}')
    with pytest.raises(LocalPlatformError) as caught:
        files.read_run()
    assert str(files.run_path) in str(caught.value) and "cfai local reset" in str(caught.value)


def test_routes_are_replaced_whole_and_read_back(tmp_path: Path) -> None:
    files = StateFiles(tmp_path)
    assert files.read_routes() == Routes()
    routes = Routes(workers={"assistant": _worker()})
    files.write_routes(routes)
    assert files.read_routes() == routes
    assert routes.processes() == {"workerd", "workerd-new"}
    assert [p.name for p in tmp_path.iterdir()] == ["routes.json"]  # no temporary file left


def test_secrets_are_made_once_private_and_kept(tmp_path: Path) -> None:
    files = StateFiles(tmp_path / "state")
    first = files.secrets()
    assert len(first.api_token) >= 24 and first.api_token != first.auth_token
    assert oct(files.secrets_path.stat().st_mode & 0o777) == "0o600"
    assert StateFiles(tmp_path / "state").secrets() == first
    assert first.auth_token not in repr(first)


def test_a_platform_that_never_ran_answers_plainly(tmp_path: Path) -> None:
    platform = LocalPlatform(tmp_path, "dev")
    status = platform.status()
    assert not status.running and status.processes == {}
    assert status.to_json() == {
        "stack": "dev",
        "running": False,
        "processes": {},
        "dead": [],
        "endpoints": {},
    }
    assert platform.outputs() is None and platform.running() is None
    assert platform.down() is False
    assert platform.routes() == Routes()


def test_versions_of_a_stopped_platform_are_a_clear_error(tmp_path: Path) -> None:
    platform = LocalPlatform(tmp_path, "dev")
    with pytest.raises(LocalPlatformError, match="stack 'dev' is not running"):
        platform.start_version(object())  # type: ignore[arg-type]
    with pytest.raises(LocalPlatformError, match="stack 'dev' is not running"):
        platform.reload(object())  # type: ignore[arg-type]


def test_a_dead_process_is_reported_and_reset_clears_even_a_damaged_state(
    tmp_path: Path,
) -> None:
    platform = LocalPlatform(tmp_path, "dev")
    files = StateFiles(platform.state_dir)
    files.write_run(RunRecord(pids={"emulator": 2**22 + 12345}, emulator_port=1))
    status = platform.status()
    assert status.dead == ["emulator"] and not status.running
    files.run_path.write_text("{")  # a crash mid-write, a hand edit
    assert platform.reset() is False
    assert not platform.state_dir.exists()


def test_router_sends_exactly_the_split_and_honours_the_override() -> None:
    worker = _worker()
    seen = Counter(pick(worker, n, None) for n in range(100))
    assert seen == {"old": 90, "new": 10}
    assert pick(worker, 0, 'acme-chat="new"') == "new"
    assert pick(worker, 0, 'other="new"') == pick(worker, 0, None)
    assert pick(worker, 0, 'acme-chat="unknown"') == pick(worker, 0, None)
    assert pick(WorkerRoute(script_name="x", port=1), 0, None) is None
