"""Open world: a model the catalog does not list is accepted when the Worker declares its
task, with a warning at validate and render; without the task it is refused, naming the fix."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from cfai.config import load_platform
from cfai.errors import ConfigError
from cfai.gitops.cost import Traffic, estimate
from cfai.kinds import declared_models, worker_notices
from cfai.render import render_platform

ACCOUNT = "0123456789abcdef0123456789abcdef"
NEW = "@cf/acme/brand-new-2026"


def _platform(workers: dict[str, Any]) -> dict[str, Any]:
    return {
        "account_id": ACCOUNT,
        "indexes": {"docs": {"dimensions": 512, "metric": "cosine"}},
        "workers": workers,
    }


def test_unknown_model_without_task_is_refused_naming_the_fix() -> None:
    with pytest.raises(ConfigError) as info:
        load_platform(_platform({"w": {"kind": "chat", "model": NEW}}))
    (problem,) = info.value.problems
    assert problem.path == "workers.w.model"
    assert f"unknown Workers AI model {NEW!r}" in problem.message
    assert "declare task: text-generation" in problem.message


def test_declared_task_of_another_kind_does_not_vouch() -> None:
    with pytest.raises(ConfigError, match=r"workers\.w\.model: unknown Workers AI model"):
        load_platform(_platform({"w": {"kind": "chat", "model": NEW, "task": "text-to-image"}}))


def test_unknown_model_with_task_is_accepted_with_a_warning_and_renders() -> None:
    platform = load_platform(
        _platform(
            {
                "chat": {"kind": "chat", "model": NEW, "task": "text-generation"},
                "kb": {
                    "kind": "rag",
                    "index": "docs",
                    "embedding_model": "@cf/acme/embed-2026",
                    "task": "text-embeddings",
                },
                "art": {"kind": "image", "model": "@cf/acme/paint-2026", "task": "text-to-image"},
            }
        )
    )
    notices = {n.path: n.message for n in worker_notices(platform.workers, None)}
    assert notices["workers.chat.model"].startswith(
        f"{NEW!r} is not in the model catalog; accepted as a text-generation model"
    )
    paths = set(notices)
    assert paths == {
        "workers.chat.model",
        "workers.kb.embedding_model",
        "workers.kb.index",
        "workers.art.model",
    }
    rendered = {w.key: w for w in render_platform(platform, base_dir=Path("."))}
    assert rendered["chat"].models == (NEW,)
    image = {b.name: b.text for b in rendered["art"].bindings}["IMAGE"]
    assert json.loads(image or "{}")["max_width"] == 2048  # generic image limits
    assert declared_models(platform.workers, None) == {
        NEW: {"task": "text-generation"},
        "@cf/acme/embed-2026": {"task": "text-embeddings"},
        "@cf/acme/paint-2026": {"task": "text-to-image"},
    }
    costs = {w.worker: w for w in estimate(platform, Traffic(100)).workers}
    assert costs["chat"].usd_per_day is None  # unknown price, never $0


def test_known_models_give_no_warning() -> None:
    platform = load_platform(_platform({"w": {"kind": "chat"}}))
    assert worker_notices(platform.workers, None) == []
    assert declared_models(platform.workers, None) == {}


def test_cli_validate_and_render_print_the_warning(tmp_path: Path) -> None:
    config = tmp_path / "platform.yaml"
    config.write_text(
        yaml.safe_dump(_platform({"w": {"kind": "chat", "model": NEW, "task": "text-generation"}}))
    )
    for verb in (["validate"], ["render", "--out", str(tmp_path / "out")]):
        done = subprocess.run(
            [sys.executable, "-m", "cfai", *verb, "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert "warning:" in done.stderr and f"{NEW!r} is not in the model catalog" in done.stderr
