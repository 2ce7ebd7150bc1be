"""`cfai deploy --stack` on Cloudflare, both parts, under Pulumi mocks and stack doubles.

`FakePlatformStack` is the platform stack: every ``preview``/``up`` runs the real program
(`Platform` over ``Pulumi.staging.yaml``) under Pulumi mocks and diffs what it declares
against the state of the last ``up`` as the engine does — a property named in the
registration's ``ignoreChanges`` keeps its state value — so its steps are what ``pulumi up``
would do. The rollout stack is `FakeStack` (its real inline program under mocks, see
test_cloud_driver.py). Cloudflare's live version of a Worker is what the platform stack's
``WorkersScript`` uploaded until the rollout stack deploys another.

Each case asserts the sequence of operations and the inputs declared: a merge that adds a
gateway, an index and a Worker, changes a rate limit and a Worker's system prompt (a var:
same code, other settings; applied, then canaried); a broken change (the gateway stays, the version is rolled back); a bare
``pulumi up`` after it (nothing moves); an interrupted deploy (the next one settles it).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from pulumi.runtime.mocks import MockMonitor
from support.pulumi_mocks import unwrap_secrets
from test_cloud_driver import DEPLOYMENT, VERSION, FakeStack

from cfai.config import load_stack
from cfai.deploy import Failure
from cfai.deploy.cloud_target import CloudTarget
from cfai.deploy.driver import OVERRIDE_HEADER, Version
from cfai.deploy.stack import apply_and_canary, preview
from cfai.outputs import Outputs
from cfai.provision.changes import Change, change_of, ordered
from cfai.provision.platform import Platform, PlatformArgs
from cfai.provision.settings import read_version_sha256, script_upload
from cfai.provision.worker import CANARIED_INPUTS
from cfai.render import RenderedWorker, Templates, module_sha256, render_platform, write_rendered

REPO = Path(__file__).resolve().parents[2]
TOKEN = "s3cret-token"
SCRIPT = "cloudflare:index/workersScript:WorkersScript"
Key = tuple[str, str]


class _Monitor(MockMonitor):
    """Keeps each registration's ``ignoreChanges`` (what the engine would receive)."""

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.ignored: dict[str, list[str]] = {}

    def RegisterResource(self, request: Any) -> Any:  # the gRPC method name
        response = super().RegisterResource(request)
        self.ignored[f"{request.type}::{request.name}"] = list(request.ignoreChanges)
        return response


class _Echo(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.declared: dict[Key, dict[str, Any]] = {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.declared[(args.typ, args.name)] = dict(args.inputs)
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        return {}


def _comparable(inputs: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in inputs.items() if k != "__provider"}, sort_keys=True)


class FakePlatformStack:
    """`PlatformOps` of stack ``staging`` in `project`, with the engine's diff."""

    def __init__(self, project: Path, log: list[tuple[str, list[str]]]) -> None:
        self.project = project
        self.log = log
        self.state: dict[Key, dict[str, Any]] = {}
        self.ignored: dict[Key, list[str]] = {}
        self.declared: dict[Key, dict[str, Any]] = {}
        self._outputs: dict[str, Any] = {}

    def _run(self) -> dict[str, Any]:
        mocks = _Echo()
        monitor = _Monitor(mocks)
        pulumi.runtime.set_mocks(mocks, project="cfai", stack="staging", monitor=monitor)
        stack_file = yaml.safe_load((self.project / "Pulumi.staging.yaml").read_text())
        pulumi.runtime.set_all_config(
            {
                "cfai:authToken": TOKEN,
                "cfai:workersSubdomain": "acme-staging",
                # What the engine passes the program: the stack file's declaration.
                "cfai:platform": json.dumps(stack_file["config"]["cfai:platform"]),
            },
            secret_keys=["cfai:authToken"],
        )
        exported: dict[str, Any] = {}

        @pulumi.runtime.test
        def run() -> Any:
            platform = Platform("cfai", PlatformArgs.from_pulumi(self.project))  # __main__.py

            async def resolve() -> None:
                for key, value in platform.outputs.items():
                    exported[key] = await pulumi.Output.from_input(value).future()

            return resolve()

        run()
        self.declared = mocks.declared
        self.ignored = {
            key: monitor.ignored.get(f"{key[0]}::{key[1]}", []) for key in mocks.declared
        }
        return exported

    def _steps(self) -> tuple[list[Change], dict[Key, dict[str, Any]]]:
        steps: list[Change] = []
        new_state: dict[Key, dict[str, Any]] = {}
        for key, inputs in self.declared.items():
            old = self.state.get(key)
            if old is None:
                op, effective = "create", inputs
            else:
                kept = set(self.ignored[key])
                effective = {k: (old.get(k) if k in kept else v) for k, v in inputs.items()}
                op = "same" if _comparable(effective) == _comparable(old) else "update"
            new_state[key] = effective
            change = change_of(op, key[0], key[1], inputs)
            if change is not None:
                steps.append(change)
        for key, inputs in self.state.items():
            if key not in self.declared:
                change = change_of("delete", key[0], key[1], inputs)
                steps.append(change) if change is not None else None
        return ordered(steps), new_state

    def preview(self) -> list[Change]:
        self._run()
        steps, _ = self._steps()
        self.log.append(("platform preview", [c.line() for c in steps]))
        return steps

    def up(self) -> list[Change]:
        outputs = self._run()
        steps, self.state = self._steps()
        self._outputs = {**outputs, "auth_token": TOKEN}
        self.log.append(("platform up", [c.line() for c in steps]))
        return steps

    def outputs(self) -> Outputs:
        return Outputs.parse(self._outputs)

    def script(self, script_name: str) -> dict[str, Any]:
        (inputs,) = [
            v
            for (typ, _), v in self.state.items()
            if typ == SCRIPT and v["scriptName"] == script_name
        ]
        return inputs


class LoggedRollout(FakeStack):
    """The rollout stack, logging each ``up``'s deployments and versions."""

    def __init__(self, log: list[tuple[str, list[str]]]) -> None:
        super().__init__()
        self.log = log

    def up(self, program: Callable[[], None]) -> dict[str, Any]:
        outputs = super().up(program)
        splits = [
            f"{d.inputs['scriptName']} "
            + ",".join(f"{v['versionId']}={v['percentage']:g}" for v in d.inputs["versions"])
            for d in self.of(DEPLOYMENT)
        ]
        self.log.append(("rollout up", sorted(splits)))
        return outputs

    def split_of(self, script: str) -> dict[str, float]:
        (d,) = [d for d in self.of(DEPLOYMENT) if d.inputs["scriptName"] == script]
        return {v["versionId"]: v["percentage"] for v in d.inputs["versions"]}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    for name in ("Pulumi.yaml", "Pulumi.staging.yaml"):
        shutil.copy(REPO / name, project / name)
    shutil.copytree(REPO / "src", project / "src")
    _render(project)
    return project


def _render(project: Path, templates: Templates | None = None) -> list[RenderedWorker]:
    rendered = render_platform(
        load_stack("staging", project), base_dir=project, templates=templates
    )
    write_rendered({"staging": rendered}, project / "workers", every_stack=False)
    return rendered


def _edit(project: Path, *pairs: tuple[str, str]) -> None:
    path = project / "Pulumi.staging.yaml"
    text = path.read_text()
    for old, new in pairs:
        assert old in text, old
        text = text.replace(old, new)
    path.write_text(text)


def _gate(failing: set[str]) -> Callable[[Outputs, str], list[Failure]]:
    def gate(outputs: Outputs, label: str) -> list[Failure]:
        (entry,) = outputs.to_json()["workers"].values()
        assert OVERRIDE_HEADER in entry["request_headers"], "the contract targets the new version"
        if entry["template_sha256"] in failing:
            return [Failure("chat::test_chat_prompt_json_answer", "chat[assistant]", "500")]
        return []

    return gate


class Cloud:
    """Both stacks and Cloudflare's view of live versions, sharing one operations log."""

    def __init__(self, project: Path) -> None:
        self.log: list[tuple[str, list[str]]] = []
        self.platform = FakePlatformStack(project, self.log)
        self.rollout = LoggedRollout(self.log)

    def live(self, script: str) -> Version | None:
        """A Worker no rollout touched runs what its WorkersScript uploaded, read back as
        Cloudflare shows a version (a secret's value is never shown)."""
        inputs = unwrap_secrets(self.platform.script(script))
        sha = module_sha256(inputs["content"])
        shown = {
            "compatibility_date": inputs["compatibilityDate"],
            "compatibility_flags": inputs.get("compatibilityFlags") or [],
            "bindings": [
                {
                    "type": b["type"],
                    "name": b["name"],
                    **({"index_name": b["indexName"]} if "indexName" in b else {}),
                    **({"text": b["text"]} if b["type"] == "plain_text" else {}),
                }
                for b in inputs["bindings"]
            ],
        }
        return Version(f"{script}-first", sha, read_version_sha256(shown, sha))

    def target(self) -> CloudTarget:
        return CloudTarget(
            self.platform,
            self.rollout,
            stack="staging",
            account_id="0123456789abcdef0123456789abcdef",
            live_version=self.live,
        )

    def take_log(self) -> list[tuple[str, list[str]]]:
        taken, self.log[:] = list(self.log), []
        return taken


def test_merge_applies_infrastructure_then_canaries_then_a_rollback_and_bare_up_move_nothing(
    project: Path,
) -> None:
    cloud = Cloud(project)
    cloud.platform.up()  # the stack as it was created
    assert cloud.take_log()[0][1][:2] == [
        "create gateway acme-staging-main",
        "create vectorize_index acme-staging-docs",
    ]

    # -- a merge: gateway, rate limit, index + metadata index, new Worker, code change ----
    _edit(
        project,
        ("    gateways:\n", "    gateways:\n      audit:\n        cache_ttl: 60\n"),
        ("limit: 100, interval: 60", "limit: 300, interval: 60"),
        (
            "    indexes:\n",
            '    indexes:\n      notes:\n        preset: "@cf/baai/bge-small-en-v1.5"\n'
            "        metadata_indexes: {topic: string}\n",
        ),
        (
            "    workers:\n",
            "    workers:\n      helper:\n        kind: chat\n"
            '        model: "@cf/meta/llama-3.1-8b-instruct"\n        gateway: audit\n',
        ),
        ("concise assistant", "terse assistant"),
    )
    rendered = _render(project)
    assistant = next(r for r in rendered if r.key == "assistant")
    first_sha = cloud.live("acme-staging-assistant")
    # A settings-only change (the system prompt is a var): same module, another version.
    assert first_sha is not None and first_sha.sha256 == assistant.sha256
    assert first_sha.version_sha256 != assistant.version_sha256

    planned = preview(rendered, cloud.target(), stack="staging", workers_dir=project / "workers")
    assert [c.line() for c in planned.changes] == [
        "create gateway acme-staging-audit",
        "update gateway acme-staging-main",
        "create vectorize_index acme-staging-notes",
        "create worker acme-staging-helper",
    ]
    assert [(c.worker, c.sha256) for c in planned.canaries] == [("assistant", assistant.sha256)]
    assert cloud.rollout.ups == 0, "a preview changes nothing"
    cloud.take_log()

    report = apply_and_canary(
        rendered,
        cloud.target(),
        stack="staging",
        workers_dir=project / "workers",
        gate=_gate(set()),
        steps=(10, 100),
    )
    assert report.exit_code == 0
    assert report.created == ["acme-staging-helper"]
    log = cloud.take_log()
    # 1. one platform up: infrastructure and the new Worker; no existing Worker's script.
    assert log[0] == (
        "platform up",
        [
            "create gateway acme-staging-audit",
            "update gateway acme-staging-main",
            "create vectorize_index acme-staging-notes",
            "create worker acme-staging-helper",
        ],
    )
    main = next(
        v for (t, n), v in cloud.platform.state.items() if n == "cfai-main" and "aiGateway" in t
    )
    assert main["rateLimitingLimit"] == 300
    notes = next(v for (t, n), v in cloud.platform.state.items() if n == "cfai-notes")
    assert notes["metadataIndexes"] == [{"propertyName": "topic", "indexType": "string"}]
    # 2. then the rollout stack only: record, upload at 0%, 10%, 100%, drop the old, record.
    # 2. then the rollout stack only: the record (every Worker adopted at the version it
    # runs), upload at 0%, 10%, 100%, the old version dropped, the record.
    assert [op for op, _ in log[1:]] == ["rollout up"] * 7
    new_id = cloud.rollout.outputs()["rollout"]["assistant"]["versions"][assistant.version_sha256][
        "id"
    ]
    first = "acme-staging-assistant-first"
    assert [_split_of(steps, "acme-staging-assistant") for _, steps in log[1:]] == [
        f"{first}=100",
        f"{first}=100",
        f"{first}=100,{new_id}=0",
        f"{first}=90,{new_id}=10",
        f"{new_id}=100",
        f"{new_id}=100",
        f"{new_id}=100",
    ]
    others = {s for _, steps in log[1:] for s in steps if "assistant" not in s}
    assert others == {
        f"acme-staging-{w} acme-staging-{w}-first=100" for w in ("helper", "kb", "legacy", "studio")
    }, "the other Workers keep the version they run"
    (version,) = [
        v for v in cloud.rollout.of(VERSION) if v.inputs["workerId"] == assistant.script_name
    ]
    assert version.inputs["deploy"] is False
    assert cloud.rollout.outputs()["last_deploy"]["outcome"] == "promoted"

    # -- a broken change to the legacy Worker's code, beside a new gateway ----------------
    _edit(project, ("    gateways:\n", "    gateways:\n      tight:\n        cache_ttl: 120\n"))
    legacy_js = project / "src" / "legacy.js"
    legacy_js.write_text(legacy_js.read_text() + "\n// broken\n")
    broken_render = _render(project)
    broken = next(r for r in broken_render if r.key == "legacy")
    legacy_first = "acme-staging-legacy-first"
    report = apply_and_canary(
        broken_render,
        cloud.target(),
        stack="staging",
        workers_dir=project / "workers",
        gate=_gate({broken.sha256}),
        steps=(10, 100),
    )
    assert report.exit_code == 1
    log = cloud.take_log()
    assert log[0] == ("platform up", ["create gateway acme-staging-tight"])
    # record, upload at 0% beside, 0% split (the contract fails), restore, drop it, record.
    assert [_split_of(steps, "acme-staging-legacy") for _, steps in log[1:]] == [
        f"{legacy_first}=100",
        f"{legacy_first}=100",
        f"{legacy_first}=100,ver-7=0",
        f"{legacy_first}=100",
        f"{legacy_first}=100",
        f"{legacy_first}=100",
    ]
    assert [v.inputs["workerId"] for v in cloud.rollout.of(VERSION)] == [assistant.script_name]
    assert cloud.rollout.split_of(assistant.script_name) == {new_id: 100}
    last = cloud.rollout.outputs()["last_deploy"]
    assert last["outcome"] == "rolled back"
    legacy_sha = cloud.live("acme-staging-legacy")
    assert legacy_sha is not None
    assert last["workers"]["legacy"] == {
        "serving": legacy_sha.sha256,
        "candidate": broken.sha256,
        "outcome": "rolled_back",
        "failed_at": 0,
        "checks": ["test_chat_prompt_json_answer"],
        "serving_version": legacy_sha.version_sha256,
        "candidate_version": broken.version_sha256,
    }
    assert any(k[1] == "cfai-tight" for k in cloud.platform.state), "the new gateway stays"

    # -- a bare `pulumi up` after the rollback: declares the broken code, moves nothing ---
    keys = {k[1]: k for k in cloud.platform.state if k[0] == SCRIPT}
    before = {name: dict(cloud.platform.state[k]) for name, k in keys.items()}
    assert cloud.platform.up() == []
    declared = cloud.platform.declared[keys["cfai-legacy"]]
    assert module_sha256(declared["content"]) == broken.sha256  # what the repository says
    for key in keys.values():
        assert (
            set(cloud.platform.ignored[key])
            == {
                "content",
                "mainModule",
                "compatibilityDate",
                "compatibilityFlags",
                "bindings",
            }
            == {_camel(p) for p in CANARIED_INPUTS}
        )
    after = {name: cloud.platform.state[k] for name, k in keys.items()}
    assert after == before  # no script re-uploaded: nothing serves new code
    assert cloud.rollout.split_of(assistant.script_name) == {new_id: 100}
    assert cloud.rollout.split_of(broken.script_name) == {legacy_first: 100}


def _split_of(steps: list[str], script: str) -> str:
    (found,) = [s.split(" ", 1)[1] for s in steps if s.startswith(script + " ")]
    return ",".join(sorted(found.split(",")))


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def test_an_interrupted_deploy_is_settled_by_the_next_one(project: Path) -> None:
    cloud = Cloud(project)
    cloud.platform.up()
    _edit(project, ("concise assistant", "terse assistant"))
    rendered = _render(project)
    assistant = next(r for r in rendered if r.key == "assistant")
    target = cloud.target()
    driver = target.driver()
    old = driver.current(assistant)
    assert old is not None
    new = driver.upload(assistant)
    driver.split(assistant, {old.id: 90, new.id: 10})  # ... and the job was killed here
    cloud.take_log()

    # A bare `pulumi up` of the platform stack leaves the split alone.
    assert cloud.platform.up() == []
    assert cloud.rollout.split_of(assistant.script_name) == {old.id: 90, new.id: 10}

    # The next deploy starts from the version at the higher percentage and canaries again.
    report = apply_and_canary(
        rendered,
        cloud.target(),
        stack="staging",
        workers_dir=project / "workers",
        gate=_gate(set()),
        steps=(10, 100),
    )
    assert report.exit_code == 0
    (rollout,) = [r for r in report.canary.rollouts if r.worker == "assistant"]
    assert rollout.old == old and rollout.passed == [0, 10, 100]
    assert rollout.new is not None
    assert cloud.rollout.split_of(assistant.script_name) == {rollout.new.id: 100}
    versions = cloud.rollout.outputs()["rollout"]["assistant"]["versions"]
    assert list(versions) == [assistant.version_sha256], "nothing of the interrupted run is left"


def test_a_version_read_back_from_cloudflare_is_told_apart_by_its_settings(
    project: Path,
) -> None:
    """Adoption compares settings too: a version the platform stack uploaded (no cfai
    annotation) read back as Cloudflare shows it has the render's `version_sha256`."""
    (assistant,) = [r for r in _render(project) if r.key == "assistant"]
    metadata = script_upload(assistant, TOKEN).metadata()
    shown = {
        "compatibility_date": metadata["compatibility_date"],
        "compatibility_flags": metadata.get("compatibility_flags", []),
        "bindings": [
            {k: v for k, v in b.items() if not (b["type"] == "secret_text" and k == "text")}
            for b in metadata["bindings"]
        ],
    }
    assert read_version_sha256(shown, assistant.sha256) == assistant.version_sha256
    var = next(b for b in shown["bindings"] if b["type"] == "plain_text")
    var["text"] = str(var["text"]) + " (edited)"
    assert read_version_sha256(shown, assistant.sha256) != assistant.version_sha256
