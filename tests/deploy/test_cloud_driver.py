"""`CloudDriver` over a `StackOps` double that runs each ``up``'s real inline program under
Pulumi mocks (``preview=False``), keeping the stack's outputs and the resources its last
``up`` declared — what the rollout stack would hold — plus the orchestrator end to end on it."""

from __future__ import annotations

import base64
import dataclasses
import itertools
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pulumi
import pytest
from support.pulumi_mocks import Mocks, use_mocks

from cfai.config import load_stack
from cfai.deploy import Failure, deploy
from cfai.deploy.cloud import CloudDriver
from cfai.deploy.driver import OVERRIDE_HEADER, Version
from cfai.errors import DeployUserError
from cfai.outputs import Outputs
from cfai.render import RenderedWorker, render_platform, write_rendered

REPO = Path(__file__).resolve().parents[2]
ACCOUNT = "0123456789abcdef0123456789abcdef"
TOKEN = "s3cret-token"
VERSION = "cloudflare:index/workerVersion:WorkerVersion"
DEPLOYMENT = "cloudflare:index/workersDeployment:WorkersDeployment"
LIVE = "live-v0"


class FakeStack:
    """A rollout stack: config, outputs, and the resources of its last ``up``.

    A WorkerVersion keeps its id across ups (same logical name, unchanged inputs), as
    Pulumi would; a new one gets the next id.
    """

    def __init__(self, outputs: Mapping[str, Any] | None = None) -> None:
        self.config: dict[str, tuple[str, bool]] = {}
        self._outputs: dict[str, Any] = dict(outputs or {})
        self.resources: list[pulumi.runtime.MockResourceArgs] = []
        self.ups = 0
        self._ids: dict[str, str] = {}
        self._counter = itertools.count(1)

    def set_config(self, key: str, value: str, *, secret: bool = False) -> None:
        self.config[key] = (value, secret)

    def _id(self, name: str) -> str:
        if name not in self._ids:
            self._ids[name] = f"ver-{next(self._counter)}"
        return self._ids[name]

    def up(self, program: Callable[[], None]) -> dict[str, Any]:
        mocks = use_mocks(
            Mocks(ids=lambda args: self._id(args.name)),
            stack="staging-rollout",
            config={k: v for k, (v, _) in self.config.items()},
            secret_keys=[k for k, (_, s) in self.config.items() if s],
        )
        exported: dict[str, Any] = {}

        @pulumi.runtime.test
        def run() -> Any:
            real_export = pulumi.export
            pulumi.export = lambda name, value: exported.__setitem__(name, value)
            try:
                program()
            finally:
                pulumi.export = real_export

            async def resolve() -> None:
                for name, value in list(exported.items()):
                    exported[name] = await pulumi.Output.from_input(value).future()

            return resolve()

        run()
        self.ups += 1
        self.resources = mocks.registered
        self._outputs = exported
        return dict(exported)

    def outputs(self) -> dict[str, Any]:
        return dict(self._outputs)

    def of(self, typ: str) -> list[pulumi.runtime.MockResourceArgs]:
        return [r for r in self.resources if r.typ == typ]

    def deployment(self) -> dict[str, float]:
        (d,) = self.of(DEPLOYMENT)
        return {v["versionId"]: v["percentage"] for v in d.inputs["versions"]}


@pytest.fixture
def chat() -> RenderedWorker:
    return next(
        r for r in render_platform(load_stack("local", REPO), base_dir=REPO) if r.kind == "chat"
    )


def _edited(r: RenderedWorker, n: int = 1) -> RenderedWorker:
    return dataclasses.replace(r, source=r.source + f"\n// edit {n}\n", sha256=f"{n:x}" * 64)


def _platform_outputs(*workers: RenderedWorker, sha: str | None = None) -> dict[str, Any]:
    url = {w.key: f"https://{w.script_name}.acme.workers.dev" for w in workers}
    return {
        "target": "cloudflare",
        "stack": "staging",
        "endpoints": url,
        "workers": {
            w.key: {
                "kind": w.kind,
                "script_name": w.script_name,
                "template_sha256": sha or w.sha256,
                "url": url[w.key],
            }
            for w in workers
        },
        "auth_token": TOKEN,
    }


def _driver(ops: FakeStack, outputs: Mapping[str, Any], live: str | None = LIVE) -> CloudDriver:
    """A driver whose Cloudflare reads find version `live` running the module hash the
    platform outputs name (what the platform stack created)."""
    parsed = Outputs.parse(outputs)
    running = {w.script_name: w.template_sha256 or "" for w in parsed.workers.values()}
    return CloudDriver(
        ops,
        stack="staging",
        account_id=ACCOUNT,
        platform_outputs=parsed,
        live_version=lambda script: None if live is None else Version(live, running[script]),
    )


OLD_SHA = "0" * 64


def test_current_adopts_the_live_version_of_a_worker_the_stack_has_not_seen(
    chat: RenderedWorker,
) -> None:
    ops = FakeStack()
    driver = _driver(ops, _platform_outputs(chat, sha=OLD_SHA))
    assert driver.current(chat) == Version(LIVE, OLD_SHA)
    assert ops.ups == 0, "reading the current version changes nothing"


def test_current_reads_the_stack_outputs(chat: RenderedWorker) -> None:
    ops = FakeStack(
        {
            "rollout": {
                chat.key: {
                    "script_name": chat.script_name,
                    "split": {"a" * 64: 90, "b" * 64: 10},
                    "versions": {
                        "a" * 64: {"id": "ver-a", "spec": None},
                        "b" * 64: {"id": "ver-b", "spec": None},
                    },
                }
            }
        }
    )
    driver = _driver(ops, _platform_outputs(chat), live="never-asked")
    assert driver.current(chat) == Version("ver-a", "a" * 64)


def test_upload_adds_a_version_at_zero_percent(chat: RenderedWorker) -> None:
    ops = FakeStack()
    driver = _driver(ops, _platform_outputs(chat, sha=OLD_SHA))
    driver.current(chat)
    new = driver.upload(chat)
    assert new.sha256 == chat.sha256 and new.id.startswith("ver-")
    (version,) = ops.of(VERSION)
    assert version.inputs["deploy"] is False
    source = base64.b64decode(version.inputs["modules"][0]["contentBase64"]).decode()
    assert source == chat.source
    assert ops.deployment() == {LIVE: 100}, "the new version serves nothing yet"
    assert ops.config["cfai:authToken"] == (TOKEN, True)
    rollout = ops.outputs()["rollout"][chat.key]
    # Recorded by version key (code and settings), the template hash in its spec.
    assert new.version_sha256 == chat.version_sha256
    assert rollout["versions"][chat.version_sha256]["id"] == new.id
    assert rollout["versions"][chat.version_sha256]["spec"]["sha256"] == chat.sha256


def test_split_writes_the_deployment_percentages(chat: RenderedWorker) -> None:
    ops = FakeStack()
    driver = _driver(ops, _platform_outputs(chat, sha=OLD_SHA))
    old = driver.current(chat)
    assert old is not None
    new = driver.upload(chat)
    driver.split(chat, {old.id: 90, new.id: 10})
    assert ops.deployment() == {LIVE: 90, new.id: 10}
    driver.split(chat, {new.id: 100})
    assert ops.deployment() == {new.id: 100}
    assert driver.current(chat) == new
    with pytest.raises(ValueError, match="summing to 100"):
        driver.split(chat, {new.id: 50})
    with pytest.raises(ValueError, match="no version"):
        driver.split(chat, {"nope": 100})


def test_remove_drops_the_version(chat: RenderedWorker) -> None:
    ops = FakeStack()
    driver = _driver(ops, _platform_outputs(chat, sha=OLD_SHA))
    old = driver.current(chat)
    assert old is not None
    new = driver.upload(chat)
    driver.split(chat, {old.id: 90, new.id: 10})
    with pytest.raises(ValueError, match="still serves traffic"):
        driver.remove(chat, new)
    driver.split(chat, {old.id: 100})
    driver.remove(chat, new)
    assert ops.of(VERSION) == [] and ops.deployment() == {LIVE: 100}
    assert ops.outputs()["rollout"][chat.key]["versions"].keys() == {OLD_SHA}


def test_an_earlier_version_is_redeclared_unchanged_from_the_outputs(
    chat: RenderedWorker,
) -> None:
    ops = FakeStack()
    first = _driver(ops, _platform_outputs(chat, sha=OLD_SHA))
    old = first.current(chat)
    assert old is not None
    v1 = first.upload(chat)
    first.split(chat, {v1.id: 100})
    first.remove(chat, old)
    before = {r.name: r.inputs for r in ops.of(VERSION)}
    # A later deploy: a new process, a new render; the stack's outputs are all it has.
    edited = _edited(chat)
    second = _driver(ops, _platform_outputs(edited, sha=chat.sha256), live="never-asked")
    assert second.current(edited) == v1
    v2 = second.upload(edited)
    after = {r.name: r.inputs for r in ops.of(VERSION)}
    assert {n: after[n] for n in before} == before, "v1 re-declared with identical inputs"
    assert v2.id != v1.id and ops.deployment() == {v1.id: 100}


def test_a_settings_only_change_is_a_new_version_beside_the_old(chat: RenderedWorker) -> None:
    ops = FakeStack()
    first = _driver(ops, _platform_outputs(chat, sha=OLD_SHA))
    old = first.current(chat)
    assert old is not None
    v1 = first.upload(chat)
    first.split(chat, {v1.id: 100})
    first.remove(chat, old)
    # Same module, another max_tokens: the template hash stays, the version does not.
    tuned = dataclasses.replace(
        chat,
        bindings=tuple(
            dataclasses.replace(b, text="64") if b.name == "MAX_TOKENS" else b
            for b in chat.bindings
        ),
    )
    assert tuned.sha256 == chat.sha256 and tuned.version_sha256 != chat.version_sha256
    second = _driver(ops, _platform_outputs(tuned, sha=chat.sha256), live="never-asked")
    current = second.current(tuned)
    assert current == v1 and current.differs_from(tuned)
    v2 = second.upload(tuned)
    assert (v2.sha256, v2.version_sha256) == (chat.sha256, tuned.version_sha256)
    second.split(tuned, {v1.id: 90, v2.id: 10})
    assert ops.deployment() == {v1.id: 90, v2.id: 10}
    # A secret binding makes the list a secret: {"value": [...]} in the mock's inputs.
    lists = [r.inputs["bindings"] for r in ops.of(VERSION)]
    lists = [b["value"] if isinstance(b, dict) else b for b in lists]
    texts = sorted(b["text"] for bindings in lists for b in bindings if b["name"] == "MAX_TOKENS")
    assert texts == ["256", "64"]


def test_outputs_for_carries_the_override_header(chat: RenderedWorker) -> None:
    driver = _driver(FakeStack(), _platform_outputs(chat))
    got = driver.outputs_for(chat, Version("ver-9", chat.sha256)).to_json()
    entry = got["workers"][chat.key]
    assert entry["request_headers"] == {OVERRIDE_HEADER: f'{chat.script_name}="ver-9"'}
    assert got["endpoints"] == {chat.key: f"https://{chat.script_name}.acme.workers.dev"}
    assert got["auth_token"] == TOKEN


def test_a_worker_missing_from_the_platform_stack_is_a_user_error(chat: RenderedWorker) -> None:
    driver = _driver(FakeStack(), _platform_outputs())
    with pytest.raises(DeployUserError, match=r"pulumi up --stack staging"):
        driver.current(chat)


# -- the orchestrator end to end over CloudDriver + the double ----------------------------


def _gate(failing: set[str]) -> Callable[[Outputs, str], list[Failure]]:
    def gate(outputs: Outputs, label: str) -> list[Failure]:
        (entry,) = outputs.to_json()["workers"].values()
        assert OVERRIDE_HEADER in entry["request_headers"], "the contract targets the new version"
        if entry["template_sha256"] in failing:
            return [Failure("chat::test_chat_json", "chat[assistant]", "500")]
        return []

    return gate


def _workers_dir(tmp_path: Path, rendered: RenderedWorker) -> Path:
    write_rendered({"staging": [rendered]}, tmp_path / "workers")
    return tmp_path / "workers"


def test_deploy_promotes_a_good_change(chat: RenderedWorker, tmp_path: Path) -> None:
    ops = FakeStack()
    report = deploy(
        [chat],
        stack="staging",
        workers_dir=_workers_dir(tmp_path, chat),
        driver=_driver(ops, _platform_outputs(chat, sha=OLD_SHA)),
        gate=_gate(set()),
        steps=(10, 100),
    )
    (rollout,) = report.rollouts
    assert (report.exit_code, rollout.outcome, rollout.passed) == (0, "promoted", [0, 10, 100])
    assert rollout.new is not None
    assert ops.deployment() == {rollout.new.id: 100}
    assert ops.outputs()["rollout"][chat.key]["versions"].keys() == {chat.version_sha256}


def test_deploy_rolls_a_failing_change_back_leaving_the_stack_as_before(
    chat: RenderedWorker, tmp_path: Path
) -> None:
    ops = FakeStack()
    good = _driver(ops, _platform_outputs(chat, sha=OLD_SHA))
    deploy(
        [chat],
        stack="staging",
        workers_dir=_workers_dir(tmp_path, chat),
        driver=good,
        gate=_gate(set()),
    )
    before_outputs = ops.outputs()
    before_resources = {(r.typ, r.name): r.inputs for r in ops.resources}

    broken = _edited(chat, 7)
    report = deploy(
        [broken],
        stack="staging",
        workers_dir=_workers_dir(tmp_path / "b", broken),
        driver=_driver(ops, _platform_outputs(broken, sha=chat.sha256), live="never-asked"),
        gate=_gate({broken.sha256}),
        steps=(10, 50, 100),
    )
    (rollout,) = report.rollouts
    assert (report.exit_code, rollout.outcome, rollout.failed_at) == (1, "rolled_back", 0)
    assert [f.message for f in rollout.failures] == ["500"]
    assert ops.outputs() == before_outputs
    assert {(r.typ, r.name): r.inputs for r in ops.resources} == before_resources


def test_deploy_leaves_an_unchanged_worker_untouched(chat: RenderedWorker, tmp_path: Path) -> None:
    ops = FakeStack()
    report = deploy(
        [chat],
        stack="staging",
        workers_dir=_workers_dir(tmp_path, chat),
        driver=_driver(ops, _platform_outputs(chat)),
        gate=_gate(set()),
    )
    assert [r.outcome for r in report.rollouts] == ["unchanged"] and ops.ups == 0
