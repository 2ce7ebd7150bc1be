"""The cloud rollout program under Pulumi mocks (what `pulumi up` of the rollout stack would
send to Cloudflare), and the missing-CLI stop of `cfai deploy --stack`.

Every assertion is on the inputs the mocks recorded after the program ran to completion
inside `pulumi.runtime.test` with ``preview=False``, never inside an ``apply`` callback.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pulumi
import pytest
from pulumi.runtime import rpc
from support.pulumi_mocks import Mocks, use_mocks

from cfai.config import load_platform
from cfai.deploy.cloud import Plan, VersionSpec, rollout_program
from cfai.errors import ConfigError
from cfai.provision.worker import AiWorker, AiWorkerArgs, auth_token
from cfai.render import RenderedWorker, render_platform

REPO = Path(__file__).resolve().parents[2]
ACCOUNT = "0123456789abcdef0123456789abcdef"
TOKEN = "s3cret-token"
VERSION = "cloudflare:index/workerVersion:WorkerVersion"
DEPLOYMENT = "cloudflare:index/workersDeployment:WorkersDeployment"
SCRIPT = "cloudflare:index/workersScript:WorkersScript"


@pytest.fixture
def mocks() -> Mocks:
    return use_mocks(
        Mocks(ids=lambda args: f"id-{args.name}"),
        stack="staging-rollout",
        config={"cfai:authToken": TOKEN},
        secret_keys=["cfai:authToken"],
    )


def _kb(tmp_path: Path) -> RenderedWorker:
    """A rag Worker: every binding type (ai, vectorize, plain_text, secret_text)."""
    platform = load_platform(
        {
            "account_id": ACCOUNT,
            "name_prefix": "cfai-staging",
            "indexes": {"docs": {"preset": "@cf/baai/bge-small-en-v1.5"}},
            "workers": {
                "kb": {
                    "kind": "rag",
                    "index": "docs",
                    "embedding_model": "@cf/baai/bge-small-en-v1.5",
                }
            },
        },
        base_dir=tmp_path,
    )
    (kb,) = render_platform(platform, base_dir=tmp_path)
    return kb


def _edited(r: RenderedWorker) -> RenderedWorker:
    source = r.source + "\n// edited\n"
    return dataclasses.replace(r, source=source, sha256="f" * 64)


def _run(program: Any) -> None:
    """Run `program` to completion under the mocks (exceptions propagate)."""
    pulumi.runtime.test(program)()


def _is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig


def _unwrap(value: Any) -> Any:
    return value["value"] if _is_secret(value) else value


EXPECTED_BINDINGS = [
    {"type": "ai", "name": "AI"},
    {"type": "vectorize", "name": "VECTORIZE", "indexName": "cfai-staging-docs"},
    {"type": "plain_text", "name": "CHUNK_OVERLAP", "text": "100"},
    {"type": "plain_text", "name": "CHUNK_SIZE", "text": "800"},
    {"type": "plain_text", "name": "DIMENSIONS", "text": "384"},
    {"type": "plain_text", "name": "EMBEDDING_MODEL", "text": "@cf/baai/bge-small-en-v1.5"},
    {"type": "plain_text", "name": "EMBED_BATCH", "text": "100"},
    {"type": "plain_text", "name": "MAX_TOKENS", "text": "256"},
    {"type": "plain_text", "name": "MODEL", "text": "@cf/meta/llama-3.1-8b-instruct"},
    {
        "type": "plain_text",
        "name": "MODEL_TRAITS",
        "text": '{"form": "native", "reasoning": "none", "vision": "none"}',
    },
    {"type": "plain_text", "name": "POOLING", "text": "mean"},
    {
        "type": "plain_text",
        "name": "SYSTEM_PROMPT",
        "text": "Answer the question using only the context. Say so when the context does not "
        "contain the answer.",
    },
    {"type": "plain_text", "name": "TEMPERATURE", "text": "0.6"},
    {"type": "plain_text", "name": "TOP_K", "text": "3"},
    {"type": "secret_text", "name": "AUTH_TOKEN", "text": TOKEN},
]


@pytest.mark.parametrize("split", [{"old": 90, "new": 10}, {"new": 100}])
def test_program_declares_versions_and_a_percentage_deployment(
    mocks: Mocks, tmp_path: Path, split: dict[str, int]
) -> None:
    new = _kb(tmp_path)
    renders = {"new": new, "old": _edited(new)}
    specs = {renders[k].sha256: VersionSpec.of(renders[k]) for k in split}
    pcts = {renders[k].sha256: pct for k, pct in split.items()}
    _run(rollout_program(ACCOUNT, {"kb": Plan(new.script_name, specs, pcts)}))

    versions = mocks.of(VERSION)
    assert len(versions) == len(split)
    for v in versions:
        sha = next(s for s in specs if v.name == f"kb-{s[:12]}")
        got = v.inputs
        assert got["accountId"] == ACCOUNT and got["workerId"] == "cfai-staging-kb"
        assert got["deploy"] is False, "a version must never deploy itself"
        assert got["mainModule"] == "index.js"
        assert got["compatibilityDate"] == new.compatibility_date
        (module,) = got["modules"]
        assert module["name"] == "index.js"
        assert module["contentType"] == "application/javascript+module"
        assert base64.b64decode(module["contentBase64"]).decode() == specs[sha].source
        assert _is_secret(got["bindings"]), "the secret_text binding keeps the list secret"
        assert _unwrap(got["bindings"]) == EXPECTED_BINDINGS
        assert TOKEN not in str({k: val for k, val in got.items() if k != "bindings"})

    (deployment,) = mocks.of(DEPLOYMENT)
    got = deployment.inputs
    assert (got["accountId"], got["scriptName"]) == (ACCOUNT, "cfai-staging-kb")
    assert got["strategy"] == "percentage"
    assert sum(v["percentage"] for v in got["versions"]) == 100
    assert {v["versionId"]: v["percentage"] for v in got["versions"]} == {
        f"id-kb-{sha[:12]}": pct for sha, pct in pcts.items()
    }


def test_program_references_an_adopted_version_by_id_only(mocks: Mocks, tmp_path: Path) -> None:
    new = _kb(tmp_path)
    plan = Plan(
        new.script_name,
        {new.sha256: VersionSpec.of(new)},
        {"a" * 64: 90, new.sha256: 10},
        adopted={"a" * 64: "live-version-id"},
    )
    _run(rollout_program(ACCOUNT, {"kb": plan}))
    assert [v.name for v in mocks.of(VERSION)] == [f"kb-{new.sha256[:12]}"]
    (deployment,) = mocks.of(DEPLOYMENT)
    assert {v["versionId"]: v["percentage"] for v in deployment.inputs["versions"]} == {
        "live-version-id": 90,
        f"id-kb-{new.sha256[:12]}": 10,
    }


def test_program_without_a_split_declares_no_deployment(mocks: Mocks, tmp_path: Path) -> None:
    new = _kb(tmp_path)
    _run(rollout_program(ACCOUNT, {"kb": Plan(new.script_name, {new.sha256: VersionSpec.of(new)})}))
    assert len(mocks.of(VERSION)) == 1 and mocks.of(DEPLOYMENT) == []


@pytest.mark.parametrize(
    ("split", "match"),
    [
        ({"x": 50}, "summing to 100"),
        ({"x": 50, "y": 25, "z": 25}, "1 or 2"),
        ({"q": 100}, "unknown"),
    ],
)
def test_program_refuses_a_bad_split(tmp_path: Path, split: dict[str, int], match: str) -> None:
    new = _kb(tmp_path)
    specs = {k: VersionSpec.of(new) for k in ("x", "y", "z")}
    with pytest.raises(ValueError, match=match):
        rollout_program(ACCOUNT, {"kb": Plan(new.script_name, specs, split)})


def test_program_bindings_equal_the_platform_worker_bindings(mocks: Mocks, tmp_path: Path) -> None:
    kb = _kb(tmp_path)
    AiWorker(
        "kb",
        AiWorkerArgs(
            ACCOUNT,
            kb,
            "acme",
            auth_token=auth_token(),
            index_names={"cfai-staging-docs": "cfai-staging-docs"},
        ),
    )
    _run(rollout_program(ACCOUNT, {"kb": Plan(kb.script_name, {kb.sha256: VersionSpec.of(kb)})}))
    (script,) = mocks.of(SCRIPT)
    (version,) = mocks.of(VERSION)
    assert _unwrap(version.inputs["bindings"]) == _unwrap(script.inputs["bindings"])


def test_program_without_the_auth_token_names_the_config_key(mocks: Mocks, tmp_path: Path) -> None:
    pulumi.runtime.set_all_config({}, secret_keys=[])
    kb = _kb(tmp_path)
    program = rollout_program(
        ACCOUNT, {"kb": Plan(kb.script_name, {kb.sha256: VersionSpec.of(kb)})}
    )
    with pytest.raises(ConfigError, match=r"cfai:authToken: not set"):
        _run(program)


def test_version_spec_round_trips_through_json(tmp_path: Path) -> None:
    spec = VersionSpec.of(_kb(tmp_path))
    assert VersionSpec.from_json(spec.as_json()) == spec


def test_deploy_stack_without_pulumi_cli_stops_with_install_hint(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PULUMI_HOME": str(tmp_path),
    }
    r = subprocess.run(
        [sys.executable, "-m", "cfai", "deploy", "--stack", "staging", "--project", str(REPO)],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    assert r.returncode == 2, r.stderr
    assert "Pulumi CLI is not installed" in r.stderr and "get.pulumi.com" in r.stderr
