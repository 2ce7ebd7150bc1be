"""The rollout logic on a driver double: what is touched, in which order, and what a failed
check leaves behind. The double keeps versions and splits exactly as a target would."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from cfai.config import load_stack
from cfai.deploy import DeployUserError, Failure, Version, deploy, parse_steps, worker_outputs
from cfai.errors import StaleRenderError
from cfai.outputs import Outputs
from cfai.render import RenderedWorker, render_platform, write_rendered

REPO = Path(__file__).resolve().parents[2]


class FakeDriver:
    """Versions and splits per Worker, as Cloudflare holds them; every call logged."""

    def __init__(self, deployed: Mapping[str, str]) -> None:
        self.ids = (f"v{n}" for n in itertools.count(1))
        self.versions: dict[str, dict[str, str]] = {}  # worker -> {version id: sha}
        self.splits: dict[str, dict[str, int]] = {}
        self.calls: list[tuple[str, str, Any]] = []
        for key, sha in deployed.items():
            vid = next(self.ids)
            self.versions[key] = {vid: sha}
            self.splits[key] = {vid: 100}

    def current(self, worker: RenderedWorker) -> Version | None:
        split = self.splits.get(worker.key)
        if not split:
            return None
        vid = max(split, key=lambda v: split[v])
        return Version(vid, self.versions[worker.key][vid])

    def upload(self, worker: RenderedWorker) -> Version:
        vid = next(self.ids)
        self.versions.setdefault(worker.key, {})[vid] = worker.sha256
        self.calls.append(("upload", worker.key, vid))
        return Version(vid, worker.sha256)

    def split(self, worker: RenderedWorker, weights: Mapping[str, int]) -> None:
        assert sum(weights.values()) == 100 and 1 <= len(weights) <= 2
        assert set(weights) <= set(self.versions[worker.key])
        self.splits[worker.key] = dict(weights)
        self.calls.append(("split", worker.key, dict(weights)))

    def outputs_for(self, worker: RenderedWorker, version: Version) -> Outputs:
        outputs = {
            "endpoints": {worker.key: "http://x"},
            "workers": {worker.key: {"kind": worker.kind, "url": "http://x"}},
        }
        return worker_outputs(Outputs.parse(outputs), worker, version)

    def remove(self, worker: RenderedWorker, version: Version) -> None:
        assert self.splits[worker.key].get(version.id, 0) == 0, "removing a serving version"
        del self.versions[worker.key][version.id]
        self.calls.append(("remove", worker.key, version.id))

    def touched(self) -> set[str]:
        return {key for _, key, _ in self.calls}


class Gate:
    """Fails the checks given for (worker, percentage); records every run."""

    def __init__(self, fail: Mapping[tuple[str, int], list[str]] | None = None) -> None:
        self.fail = fail or {}
        self.runs: list[tuple[str, str]] = []

    def __call__(self, outputs: Outputs, label: str) -> list[Failure]:
        (key,) = outputs.workers
        headers = outputs.workers[key].request_headers
        self.runs.append((label, next(iter(headers.values()))))
        pct = int(label.rsplit(" ", 1)[1].rstrip("%"))
        return [Failure(c, f"chat[{key}]", "boom") for c in self.fail.get((key, pct), [])]


@pytest.fixture
def project(tmp_path: Path) -> tuple[list[RenderedWorker], Path]:
    # The local stack's chat, rag and image Workers: the version ids below count them.
    rendered = [
        w
        for w in render_platform(load_stack("local", REPO), base_dir=REPO)
        if w.kind in ("chat", "rag", "image")
    ]
    write_rendered({"local": rendered}, tmp_path / "workers")
    return rendered, tmp_path / "workers"


def _changed(rendered: list[RenderedWorker], key: str) -> dict[str, str]:
    """What the double has deployed: every Worker as rendered but `key` at an older hash."""
    return {w.key: ("0" * 64 if w.key == key else w.sha256) for w in rendered}


def test_nothing_changed_touches_nothing(project: tuple[list[RenderedWorker], Path]) -> None:
    rendered, workers = project
    driver, gate = FakeDriver({w.key: w.sha256 for w in rendered}), Gate()
    report = deploy(rendered, stack="local", workers_dir=workers, driver=driver, gate=gate)
    assert report.exit_code == 0 and driver.calls == [] and gate.runs == []
    assert {r.outcome for r in report.rollouts} == {"unchanged"}


def test_good_change_steps_through_and_is_promoted(
    project: tuple[list[RenderedWorker], Path],
) -> None:
    rendered, workers = project
    driver, gate = FakeDriver(_changed(rendered, "assistant")), Gate()
    report = deploy(
        rendered, stack="local", workers_dir=workers, driver=driver, gate=gate, steps=(10, 50, 100)
    )
    assert report.exit_code == 0
    assert driver.touched() == {"assistant"}  # kb and studio unchanged: not touched
    old, new = "v1", f"v{len(rendered) + 1}"  # the double numbers every deployed Worker first
    assert [c for c in driver.calls if c[0] != "upload"] == [
        ("split", "assistant", {old: 100, new: 0}),
        ("split", "assistant", {old: 90, new: 10}),
        ("split", "assistant", {old: 50, new: 50}),
        ("split", "assistant", {new: 100}),
        ("remove", "assistant", old),
    ]
    script = next(w.script_name for w in rendered if w.key == "assistant")
    assert gate.runs == [(f"assistant at {p}%", f'{script}="{new}"') for p in (0, 10, 50, 100)]
    chat = next(r for r in report.rollouts if r.worker == "assistant")
    assert chat.outcome == "promoted" and chat.passed == [0, 10, 50, 100]
    assert driver.versions["assistant"] == {new: chat.new.sha256 if chat.new else ""}


@pytest.mark.parametrize("failing_at", [0, 10])
def test_failing_contract_rolls_back_to_old_version_only(
    project: tuple[list[RenderedWorker], Path], failing_at: int
) -> None:
    rendered, workers = project
    driver = FakeDriver(_changed(rendered, "assistant"))
    gate = Gate({("assistant", failing_at): ["chat::test_chat_prompt_json_answer"]})
    report = deploy(rendered, stack="local", workers_dir=workers, driver=driver, gate=gate)
    assert report.exit_code == 1
    assert driver.splits["assistant"] == {"v1": 100}
    assert driver.versions["assistant"] == {"v1": "0" * 64}  # the new version removed
    assert report.failures == [
        (
            "assistant",
            failing_at,
            Failure("chat::test_chat_prompt_json_answer", "chat[assistant]", "boom"),
        )
    ]
    # It never went past the failing step.
    new = f"v{len(rendered) + 1}"
    assert max(c[2].get(new, 0) for c in driver.calls if c[0] == "split") == failing_at


def test_later_failure_rolls_back_an_earlier_promoted_worker(
    project: tuple[list[RenderedWorker], Path],
) -> None:
    rendered, workers = project
    deployed = {w.key: "0" * 64 for w in rendered}
    driver = FakeDriver(deployed)
    gate = Gate({("kb", 10): ["rag::test_query_finds_ingested_document_first"]})
    report = deploy(rendered, stack="local", workers_dir=workers, driver=driver, gate=gate)
    assert report.exit_code == 1
    outcomes = {r.worker: r.outcome for r in report.rollouts}
    assert outcomes == {
        "assistant": "rolled_back",
        "kb": "rolled_back",
        "studio": "not_started",
        "support": "not_started",
    }
    # The stack is exactly as it was: each Worker's one old version at 100%.
    assert driver.splits == {
        "assistant": {"v1": 100},
        "kb": {"v2": 100},
        "studio": {"v3": 100},
        "support": {"v4": 100},
    }
    assert {k: set(v) for k, v in driver.versions.items()} == {
        "assistant": {"v1"},
        "kb": {"v2"},
        "studio": {"v3"},
        "support": {"v4"},
    }


def test_stale_workers_dir_is_a_user_error_naming_the_paths(
    project: tuple[list[RenderedWorker], Path],
) -> None:
    rendered, workers = project
    chat = next(w for w in rendered if w.key == "assistant")
    edited = dataclasses.replace(chat, source=chat.source + "\n// edited\n")
    driver = FakeDriver({})
    with pytest.raises(StaleRenderError) as err:
        deploy([edited], stack="local", workers_dir=workers, driver=driver, gate=Gate())
    assert err.value.user_fault and str(workers / chat.key / "index.js") in str(err.value)
    assert driver.calls == []
    # A stack's settings are reviewed too: its env in workers/<key>/wrangler.jsonc.
    tuned = dataclasses.replace(
        chat,
        bindings=tuple(
            dataclasses.replace(b, text="64") if b.name == "MAX_TOKENS" else b
            for b in chat.bindings
        ),
    )
    with pytest.raises(StaleRenderError) as err:
        deploy([tuned], stack="local", workers_dir=workers, driver=driver, gate=Gate())
    assert err.value.stale == (str(workers / chat.key / "wrangler.jsonc"),)
    # Another stack's env in the same files is not this deploy's business.
    deploy(
        [chat],
        stack="local",
        workers_dir=workers,
        driver=FakeDriver({chat.key: chat.sha256}),
        gate=Gate(),
    )
    assert driver.calls == []


def test_a_worker_never_deployed_is_proven_at_full_traffic(
    project: tuple[list[RenderedWorker], Path],
) -> None:
    rendered, workers = project
    driver = FakeDriver({w.key: w.sha256 for w in rendered if w.key != "studio"})
    report = deploy(rendered, stack="local", workers_dir=workers, driver=driver, gate=Gate())
    assert report.exit_code == 0
    assert [c[0] for c in driver.calls] == ["upload", "split"]
    # v1-v3: assistant, kb, support (deployed); studio's first version is the next.
    assert driver.splits["studio"] == {"v4": 100}


@pytest.mark.parametrize("text", ["", "50,10,100", "10,50", "0,100", "ten"])
def test_bad_steps_are_a_user_error(text: str) -> None:
    with pytest.raises(DeployUserError, match="--steps"):
        parse_steps(text)


def test_steps_parse() -> None:
    assert parse_steps("10, 50,100") == (10, 50, 100) and parse_steps("100") == (100,)


class _KnowsReleases(FakeDriver):
    """A driver that recorded what it deployed, settings included (version_sha256)."""

    def __init__(self, deployed: Mapping[str, RenderedWorker]) -> None:
        super().__init__({k: w.sha256 for k, w in deployed.items()})
        self.release = {k: w.version_sha256 for k, w in deployed.items()}

    def current(self, worker: RenderedWorker) -> Version | None:
        cur = super().current(worker)
        return cur and Version(cur.id, cur.sha256, self.release.get(worker.key, ""))


def test_a_settings_only_change_is_rolled_out(
    project: tuple[list[RenderedWorker], Path], tmp_path: Path
) -> None:
    rendered, _ = project
    chat = next(w for w in rendered if w.key == "assistant")
    tuned = dataclasses.replace(
        chat,
        bindings=tuple(
            dataclasses.replace(b, text="64") if b.name == "MAX_TOKENS" else b
            for b in chat.bindings
        ),
    )
    workers = tmp_path / "tuned"
    write_rendered({"local": [tuned]}, workers)
    driver = _KnowsReleases({"assistant": chat})
    report = deploy([tuned], stack="local", workers_dir=workers, driver=driver, gate=Gate())
    assert [(r.worker, r.outcome) for r in report.rollouts] == [("assistant", "promoted")]
    # A version the driver cannot tell apart by settings (not uploaded by cfai) is judged by
    # its template hash alone.
    blind = FakeDriver({"assistant": chat.sha256})
    report = deploy([tuned], stack="local", workers_dir=workers, driver=blind, gate=Gate())
    assert [(r.worker, r.outcome) for r in report.rollouts] == [("assistant", "unchanged")]
