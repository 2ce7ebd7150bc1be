"""Fixture platforms and helpers shared by the render tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cfai.config import PlatformConfig, load_platform
from cfai.render import RenderedWorker, render_worker

TOKEN = "t0ken-for-tests"
ACCOUNT = "0123456789abcdef0123456789abcdef"

# One Worker per kind; the golden files are these rendered.
FIXTURE: dict[str, Any] = {
    "account_id": ACCOUNT,
    "name_prefix": "golden",
    "gateways": {"main": {"cache_ttl": 3600}},
    "indexes": {
        "docs": {
            "preset": "@cf/baai/bge-small-en-v1.5",
            "metadata_indexes": {"document_id": "string"},
        }
    },
    "workers": {
        "chat": {
            "kind": "chat",
            "gateway": "main",
            "system_prompt": "You are concise.",
            "max_tokens": 64,
            "temperature": 0.2,
        },
        "rag": {
            "kind": "rag",
            "index": "docs",
            "embedding_model": "@cf/baai/bge-small-en-v1.5",
            "gateway": "main",
            "top_k": 2,
            "chunk_size": 64,
            "chunk_overlap": 16,
        },
        "image": {
            "kind": "image",
            "model": "@cf/stabilityai/stable-diffusion-xl-base-1.0",
            "max_width": 1024,
            "max_height": 768,
        },
    },
}


def make_platform(
    workers: dict[str, Any] | None = None, name_prefix: str = "golden", **extra: Any
) -> PlatformConfig:
    data = {**FIXTURE, "name_prefix": name_prefix, **extra}
    if workers is not None:
        data["workers"] = workers
    return load_platform(data)


def render(platform: PlatformConfig, key: str, base_dir: Path | None = None) -> RenderedWorker:
    return render_worker(platform, key, base_dir=base_dir or Path("."))


def env_for(worker: RenderedWorker) -> dict[str, str]:
    """The env values the Worker's text bindings carry (secrets get the test token)."""
    env: dict[str, str] = {}
    for b in worker.bindings:
        if b.type == "plain_text":
            env[b.name] = b.text or ""
        elif b.type == "secret_text":
            env[b.name] = TOKEN
    return env


@pytest.fixture
def fixture_platform() -> PlatformConfig:
    return make_platform()
