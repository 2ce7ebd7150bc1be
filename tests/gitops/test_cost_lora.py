"""`cfai cost` for a chat Worker with a LoRA adapter: Cloudflare publishes no price for LoRA
runs (an open beta, "free during this period"), so the Worker's price is unknown, never $0
and never silently the base model's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from cfai.config import load_platform
from cfai.finetunes.demo import write_adapter
from cfai.gitops.cost import Traffic, estimate

ACCOUNT = "0123456789abcdef0123456789abcdef"
LLAMA = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"


def _declaration(base: Path) -> dict[str, Any]:
    write_adapter(base / "adapters" / "tone")
    return {
        "account_id": ACCOUNT,
        "finetunes": {"tone": {"base_model": LLAMA, "path": "adapters/tone"}},
        "workers": {
            "tuned": {"kind": "chat", "model": LLAMA, "lora": "tone"},
            "plain": {"kind": "chat", "model": LLAMA},
        },
    }


def test_lora_worker_is_price_unknown_and_the_same_worker_without_it_is_priced(
    tmp_path: Path,
) -> None:
    est = estimate(load_platform(_declaration(tmp_path), base_dir=tmp_path), Traffic(1000))
    by_key = {w.worker: w for w in est.workers}
    assert est.unknown == ["tuned"]
    assert by_key["tuned"].usd_per_day is None and by_key["tuned"].items
    assert all(i.usd_per_day is None for i in by_key["tuned"].items)
    assert by_key["tuned"].note == "LoRA runs (finetune 'tone') have no published price"
    # 1000 x (200 in, 256 out) tokens at llama-3.3-70b's $0.293 / $2.253 per million.
    assert by_key["plain"].usd_per_day == pytest.approx(0.635368)
    assert "tuned (chat): price unknown (LoRA runs (finetune 'tone') have no published price)" in (
        est.assumptions
    )


def test_cost_cli_shows_the_lora_worker_as_unknown(tmp_path: Path) -> None:
    config = tmp_path / "platform.yaml"
    config.write_text(yaml.safe_dump(_declaration(tmp_path)))
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "cfai",
            "cost",
            "--config",
            str(config),
            "--requests-per-day",
            "1000",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert r.returncode == 0, r.stderr
    tuned = next(line for line in r.stdout.splitlines() if "tuned" in line and "chat" in line)
    assert "price unknown" in tuned and "$0.0000" not in tuned
    assert "+ unknown (tuned)" in r.stdout
