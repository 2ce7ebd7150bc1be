"""The contract suite passes against the local platform, through `cfai test`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from cfai.config import load_file
from cfai.local import LocalPlatform
from cfai.render import render_platform, write_rendered

REPO_ROOT = Path(__file__).resolve().parents[2]


def _cfai_test(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cfai", "test", *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO_ROOT,
        env={**os.environ, "COLUMNS": "200"},
    )


def _not_passed(path: Path) -> list[str]:
    out = []
    for case in ET.parse(path).getroot().iter("testcase"):
        for bad in ("failure", "error", "skipped"):
            el = case.find(bad)
            if el is not None:
                out.append(f"{case.get('name')}: {bad}: {(el.get('message') or '')[:300]}")
    return out


def _junit(path: Path) -> dict[str, str]:
    root = ET.parse(path).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    assert suite is not None
    return {k: suite.get(k, "") for k in ("tests", "failures", "errors", "skipped")}


def test_suite_passes_on_local_platform(local_platform: dict[str, Any], tmp_path: Path) -> None:
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(local_platform))
    # The shared platform's gateway must stay usable: its rate limit is exhausted on the
    # dedicated platform below instead.
    done = _cfai_test(
        "--outputs", str(outputs), "--junit", str(tmp_path / "j.xml"), "-k", "not rate_limit"
    )
    assert done.returncode == 0, _not_passed(tmp_path / "j.xml") or done.stderr[-3000:]
    counts = _junit(tmp_path / "j.xml")
    assert counts["failures"] == counts["errors"] == counts["skipped"] == "0", counts
    assert int(counts["tests"]) >= 40, counts
    for worker in ("chat[assistant]", "rag[kb]", "image[studio]"):
        assert worker.replace("[", "\\[") in done.stdout or worker in done.stdout
    # The shipped stack has no chat Worker with a response schema: its checks are not run,
    # and the report says which and why (not a bare "deselected").
    assert "check(s) not run, nothing in this platform to run them on:" in done.stdout
    assert "the platform has no chat Worker with a response_schema" in done.stdout
    # The local stack's playground pages were checked (types, cache headers, no token).
    report = (tmp_path / "j.xml").read_text()
    for worker in ("chat[assistant]", "rag[kb]", "image[studio]", "speech[voice]"):
        assert f'name="test_page_and_files_have_their_types_and_cache_headers[{worker}]"' in report


# A project beyond the shipped local stack: a chat Worker with a response schema, a custom
# Worker with its own contract file; its gateway limit (120/min) is exhausted last.
_USER_CHECK = """
def test_legacy_summarizes(worker_client):
    r = worker_client("legacy").post("/summarize", json={"text": "Lighthouses guide ships."})
    assert r.status_code == 200, r.text
    assert isinstance(r.json()["summary"], str) and r.json()["summary"]


def test_legacy_needs_token(anon_client):
    assert anon_client("legacy").post("/summarize", json={"text": "x"}).status_code == 401
"""


@pytest.fixture(scope="module")
def extended_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    project = tmp_path_factory.mktemp("project")
    stack = yaml.safe_load((REPO_ROOT / "Pulumi.local.yaml").read_text())
    p = stack["config"]["cfai:platform"]
    p["workers"]["shaped"] = {
        "kind": "chat",
        "gateway": "main",
        "response_schema": {
            "type": "object",
            "properties": {"fruit": {"type": "string"}, "colour": {"type": "string"}},
            "required": ["fruit", "colour"],
        },
    }
    # Function calling and reasoning (qwen3), and vision (llama-4-scout, image parts).
    p["workers"]["agent"] = {"kind": "chat", "model": "@cf/qwen/qwen3-30b-a3b-fp8"}
    p["workers"]["seer"] = {"kind": "chat", "model": "@cf/meta/llama-4-scout-17b-16e-instruct"}
    p["workers"]["legacy"] = {
        "kind": "custom",
        "main": "src/legacy.js",
        "auth": True,
        "contract": ["checks/test_legacy.py"],
        "bindings": {
            "ai": "AI",
            "gateway": {"binding": "GATEWAY_ID", "gateway": "main"},
            "vars": {"MODE": "local"},
            "auth_token": "AUTH_TOKEN",
        },
    }
    (project / "Pulumi.ext.yaml").write_text(yaml.safe_dump(stack))
    (project / "src").mkdir()
    shutil.copy(REPO_ROOT / "src" / "legacy.js", project / "src" / "legacy.js")
    shutil.copytree(REPO_ROOT / "src" / "adapters", project / "src" / "adapters")
    (project / "checks").mkdir()
    (project / "checks" / "test_legacy.py").write_text(_USER_CHECK)
    (project / "node_modules").symlink_to(REPO_ROOT / "node_modules")
    platform = load_file(project / "Pulumi.ext.yaml")
    write_rendered({"ext": render_platform(platform, base_dir=project)}, project / "workers")
    local = LocalPlatform(project, "ext")
    try:
        local.up(platform, timeout=60)
        yield project
    finally:
        local.down()


def test_suite_passes_with_schema_custom_checks_and_rate_limit(
    extended_project: Path, tmp_path: Path
) -> None:
    outputs = extended_project / ".cfai" / "ext" / "outputs.json"
    junit = tmp_path / "j.xml"
    done = _cfai_test(
        "--outputs", str(outputs), "--project", str(extended_project), "--junit", str(junit)
    )
    assert done.returncode == 0, _not_passed(junit) or done.stderr[-3000:]
    names = {f"{c.get('name')}" for c in ET.parse(junit).getroot().iter("testcase")}
    assert "test_structured_output_matches_schema[chat[shaped]]" in names
    assert {
        "test_openai_tool_round_trip[chat[agent]]",
        "test_openai_tool_round_trip[chat[seer]]",
        "test_openai_reasoning_apart_from_the_answer[chat[agent]]",
        "test_image_part_vision_model_or_400_naming_it[chat[seer]]",
        "test_image_part_vision_model_or_400_naming_it[chat[agent]]",
    } <= names
    assert {"test_legacy_summarizes", "test_legacy_needs_token"} <= names
    assert any(n.startswith("test_rate_limit_429_past_limit[") for n in names)
    assert _junit(junit)["failures"] == "0"
