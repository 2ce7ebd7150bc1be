"""The cloud rollout program under Pulumi mocks, and the missing-CLI stop."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pulumi
import pytest

from cfai.config import load_stack
from cfai.deploy.cloud import Plan, rollout_program
from cfai.render import render_platform

REPO = Path(__file__).resolve().parents[2]


class Mocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.created: list[tuple[str, str, dict[str, Any]]] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.created.append((args.typ, args.name, dict(args.inputs)))
        return f"id-{args.name}", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[Any]]:
        return {}, []


@pytest.mark.parametrize("split", [{"old": 90, "new": 10}, {"new": 100}])
def test_program_declares_versions_and_a_percentage_deployment(split: dict[str, int]) -> None:
    chat = next(
        r for r in render_platform(load_stack("local", REPO), base_dir=REPO) if r.kind == "chat"
    )
    mocks = Mocks()
    pulumi.runtime.set_mocks(mocks, preview=False)
    plan = Plan(chat.script_name, {s: chat for s in split}, split)
    rollout_program("acct", {"assistant": plan})()

    def check(_: Any) -> None:
        versions = [
            c for c in mocks.created if c[0] == "cloudflare:index/workerVersion:WorkerVersion"
        ]
        (deployment,) = [
            c
            for c in mocks.created
            if c[0] == "cloudflare:index/workersDeployment:WorkersDeployment"
        ]
        assert len(versions) == len(split)
        assert all(
            v[2]["workerId"] == chat.script_name and v[2]["deploy"] is False for v in versions
        )
        got = deployment[2]
        assert got["strategy"] == "percentage" and got["scriptName"] == chat.script_name
        assert sum(v["percentage"] for v in got["versions"]) == 100
        assert sorted(v["versionId"] for v in got["versions"]) == sorted(
            f"id-assistant-{s[:12]}" for s in split
        )

    pulumi.Output.all().apply(check)


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
    assert r.returncode == 2 and "Pulumi CLI is not installed" in r.stderr
