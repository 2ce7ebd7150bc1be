"""`cfai deploy --local` applies a whole declaration, end to end, through the CLI.

One platform (a temporary copy of the project, its own ``.cfai/local``), two deploys as a
merge to main would run them:

1. a new gateway, a new index with a metadata index, a new Worker, a changed rate limit and
   a changed Worker (its system prompt, a var: same code, other settings): the first four
   are applied at once, the Worker's new version is canaried and promoted — one run;
2. a broken change: the assistant moves to another new gateway (a binding change of an
   existing Worker) whose rate limit is far too low for it. The gateway is applied, the
   assistant's new version fails its contract at 0% and is rolled back; the gateway stays,
   the old version serves.

After each run, `cfai drift --local` tells the outcome apart from a change behind Git's back.
The runs' output is what docs/gitops.md and docs/deploy-canary.md quote
(`tests/deploy/_excerpts.py` keeps the docs' copies current).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _excerpts import check_excerpt

from cfai.config import load_stack
from cfai.deploy.local import read_record
from cfai.local import LocalPlatform
from cfai.local.router import VERSION_HEADER
from cfai.provision.rest import CloudflareClient
from cfai.provision.settings import script_upload
from cfai.render import render_platform, write_rendered

pytestmark = pytest.mark.platform  # the CLI, workerd, the emulator and the router

REPO = Path(__file__).resolve().parents[2]
LIMIT = "        rate_limit: {limit: 120, interval: 60, technique: sliding}\n"


def _cfai(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDFLARE_")}
    env["COLUMNS"] = "80"  # stdout is a pipe, as in CI: tables are plain lines, whatever the width
    return subprocess.run(
        [sys.executable, "-m", "cfai", *args, "--project", str(project)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )


def _render(project: Path) -> None:
    rendered = render_platform(load_stack("local", project), base_dir=project)
    write_rendered({"local": rendered}, project / "workers", every_stack=False)


def _edit(project: Path, *pairs: tuple[str, str]) -> None:
    path = project / "Pulumi.local.yaml"
    text = path.read_text()
    for old, new in pairs:
        assert old in text, old
        text = text.replace(old, new)
    path.write_text(text)
    _render(project)  # what the pull request commits


@pytest.fixture
def project(tmp_path: Path) -> Iterator[tuple[Path, LocalPlatform, dict[str, Any]]]:
    project = tmp_path / "project"
    project.mkdir()
    (project / "Pulumi.yaml").write_text((REPO / "Pulumi.yaml").read_text())
    declaration = (REPO / "Pulumi.local.yaml").read_text()
    assert LIMIT in declaration
    # A limit the contract runs cannot exhaust (they call the gateway many times).
    generous = LIMIT.replace("limit: 120", "limit: 5000")
    (project / "Pulumi.local.yaml").write_text(declaration.replace(LIMIT, generous))
    shutil.copytree(REPO / "src" / "adapters", project / "src" / "adapters")  # the tone finetune
    (project / "node_modules").symlink_to(REPO / "node_modules")
    _render(project)
    platform = LocalPlatform(project, "local")
    try:
        yield project, platform, platform.up(timeout=60).to_json()
    finally:
        platform.down()  # its logs stay in the test's tmp_path (pytest keeps the last runs)


def _client(outputs: dict[str, Any]) -> CloudflareClient:
    api = outputs["api"]
    return CloudflareClient(api["base_url"], token=api["token"], account_id=api["account_id"])


def test_one_deploy_applies_the_declaration_and_canaries_code_then_a_broken_change_rolls_back(
    project: tuple[Path, LocalPlatform, dict[str, Any]],
) -> None:
    root, platform, outputs = project
    url = outputs["endpoints"]["assistant"]
    (old_id,) = platform.routes().workers["assistant"].split

    # -- 1. a merge with infrastructure, a new Worker and a code change -----------------
    _edit(
        root,
        (
            "    gateways:\n",
            "    gateways:\n      audit:\n        cache_ttl: 60\n        collect_logs: true\n",
        ),
        ("limit: 5000, interval: 60", "limit: 6000, interval: 60"),
        (
            "    indexes:\n",
            '    indexes:\n      notes:\n        preset: "@cf/baai/bge-small-en-v1.5"\n'
            "        metadata_indexes: {topic: string}\n",
        ),
        (
            "    workers:\n",
            "    workers:\n      helper:\n        kind: chat\n"
            '        model: "@cf/meta/llama-3.1-8b-instruct"\n        gateway: audit\n'
            "        max_tokens: 64\n",
        ),
        ("concise assistant", "terse assistant"),
    )
    preview = _cfai(root, "deploy", "--local", "--preview")
    assert preview.returncode == 0, preview.stderr
    check_excerpt("deploy-preview-local", preview.stdout)
    assert "create gateway local-audit" in preview.stdout
    assert "update gateway local-main: rate_limiting_limit 5000 -> 6000" in preview.stdout
    assert "create vectorize_index local-notes: 384 dims, cosine" in preview.stdout
    assert "create metadata_index local-notes.topic: string" in preview.stdout
    assert "create worker local-helper" in preview.stdout
    assert "canary worker assistant" in preview.stdout
    assert "canary worker helper" not in preview.stdout  # new: created, not canaried

    first = _cfai(root, "deploy", "--local")
    assert first.returncode == 0, first.stdout + first.stderr
    check_excerpt("deploy-apply-local", first.stderr + first.stdout)
    with _client(outputs) as cf:
        assert cf.ai_gateway.get("local-audit")["cache_ttl"] == 60
        assert cf.ai_gateway.get("local-main")["rate_limiting_limit"] == 6000
        assert cf.vectorize.get_index("local-notes")["config"]["dimensions"] == 384
        props = {m["propertyName"] for m in cf.vectorize.list_metadata_indexes("local-notes")}
        assert props == {"topic"}
    published = json.loads(platform.outputs_path.read_text())
    helper = httpx.get(f"{published['endpoints']['helper']}/health", timeout=10)
    assert helper.status_code == 200 and helper.json()["worker"] == "helper"
    health = httpx.get(f"{url}/health", timeout=10)
    promoted_id = health.headers[VERSION_HEADER]
    assert promoted_id != old_id
    promoted_sha = health.json()["template_sha256"]
    assert published["workers"]["assistant"]["template_sha256"] == promoted_sha
    record = read_record(platform.state_dir)
    assert record is not None and record.outcome == "promoted"
    assert record.workers["assistant"].outcome == "promoted"
    drift = _cfai(root, "drift", "--local")
    assert drift.returncode == 0, drift.stdout + drift.stderr

    # -- 2. a broken change: the assistant on a gateway that throttles it ---------------
    _edit(
        root,
        (
            "    gateways:\n",
            "    gateways:\n      tight:\n"
            "        rate_limit: {limit: 1, interval: 3600, technique: fixed}\n",
        ),
        (
            '        gateway: main\n        system_prompt: "You are a terse',
            '        gateway: tight\n        system_prompt: "You are a brisk',
        ),
    )
    second = _cfai(root, "deploy", "--local")
    assert second.returncode == 1, second.stdout + second.stderr
    check_excerpt("deploy-rollback-local", second.stderr + second.stdout)
    assert "applied: create gateway local-tight" in second.stderr
    assert "rolled_back" in second.stdout
    # At 80 columns in a pipe each failed check is one line: its whole name (not repeating
    # the Worker's test id) and its whole detail, not cut and folded a word per line.
    rows = [line for line in second.stdout.splitlines() if "rolled_back" in line]
    assert rows and all(row.startswith("assistant ") for row in rows), second.stdout
    assert all("::test_" in row and "…" not in row for row in rows)
    assert not any("chat[assistant]" in row for row in rows) and "│" not in second.stdout
    assert any(row.endswith("retry later") and len(row) > 80 for row in rows)
    with _client(outputs) as cf:
        assert cf.ai_gateway.get("local-tight")["rate_limiting_limit"] == 1  # it stays
    health = httpx.get(f"{url}/health", timeout=10)
    assert health.headers[VERSION_HEADER] == promoted_id  # the promoted version serves
    assert platform.routes().workers["assistant"].split == {promoted_id: 100}
    record = read_record(platform.state_dir)
    assert record is not None and record.outcome == "rolled back"
    failed = record.workers["assistant"]
    assert failed.failed_at == 0 and failed.checks and failed.serving == promoted_sha

    # drift: the repository is ahead (exit 3), not changed behind Git's back (exit 1).
    drift = _cfai(root, "drift", "--local")
    assert drift.returncode == 3, drift.stdout + drift.stderr
    check_excerpt("drift-repo-ahead-local", drift.stdout + drift.stderr)
    assert "repo ahead" in drift.stdout
    (ahead,) = [line for line in drift.stdout.splitlines() if line.startswith("assistant ")]
    assert ahead.split()[-2:] == ["repo", "ahead"], drift.stdout  # the whole row, one line
    assert "rolled back at 0% on test_" in drift.stdout

    # -- 3. someone uploads other code behind Git's back: drift (exit 1) ----------------
    (assistant,) = [
        r for r in render_platform(load_stack("local", root), base_dir=root) if r.key == "assistant"
    ]
    hotfix = dataclasses.replace(assistant, source=assistant.source + "\n// hotfix\n")
    with _client(outputs) as cf:
        # Its playground page goes up as a client uploads it: the assets session first.
        jwt = (
            cf.workers.upload_assets(assistant.script_name, assistant.assets)
            if assistant.assets
            else None
        )
        upload = script_upload(hotfix, outputs["auth_token"], assets_jwt=jwt)
        cf.workers.upload(assistant.script_name, upload)
    served = httpx.get(f"{url}/health", timeout=10).headers[VERSION_HEADER]
    assert served != promoted_id
    drift = _cfai(root, "drift", "--local")
    assert drift.returncode == 1, drift.stdout + drift.stderr
    assert "changed out of band" in drift.stdout or "deployed module" in drift.stdout
    assert "repo ahead" not in drift.stdout
