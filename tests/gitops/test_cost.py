"""`cfai cost`: figures checked against values computed by hand from the published prices
($0.011 per 1,000 neurons; 10,000 neurons/day free; llama-3.1-8b-instruct $0.282/M input and
$0.827/M output tokens; flux-1-schnell $0.0000528 per 512px tile + $0.0001056 per step;
bge-base-en-v1.5 $0.067/M tokens). No helper of the code under test is used for the
expected values."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from cfai.config import load_platform
from cfai.gitops.cost import Traffic, estimate

ACCOUNT = "0123456789abcdef0123456789abcdef"
PLATFORM: dict[str, Any] = {
    "account_id": ACCOUNT,
    "indexes": {"docs": {"preset": "@cf/baai/bge-base-en-v1.5"}},
    "workers": {
        "assistant": {
            "kind": "chat",
            "model": "@cf/meta/llama-3.1-8b-instruct",
            "system_prompt": "You are terse.",
            "max_tokens": 256,
        },
        "studio": {"kind": "image", "model": "@cf/black-forest-labs/flux-1-schnell"},
    },
}


def cfai(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cfai", *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "COLUMNS": "200"},  # one table row per line
    )


def test_cost_llama_8b_chat_and_flux_schnell_image_match_hand_computed(tmp_path: Path) -> None:
    config = tmp_path / "platform.yaml"
    config.write_text(yaml.safe_dump(PLATFORM))
    r = cfai(
        "cost",
        "--config",
        str(config),
        "--requests-per-day",
        "1000",
        "--tokens-in",
        "300",
        "--tokens-out",
        "256",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    est = json.loads(r.stdout)
    workers = {w["worker"]: w for w in est["workers"]}

    # chat: 1000 x 300 = 300,000 input tokens x $0.282/M = $0.0846;
    #       1000 x 256 = 256,000 output tokens x $0.827/M = $0.211712; sum $0.296312
    #       = 0.296312 / 0.000011 = 26,937.4545... neurons
    assert workers["assistant"]["usd_per_day"] == pytest.approx(0.296312)
    assert workers["assistant"]["neurons_per_day"] == pytest.approx(26937.454545, rel=1e-9)
    # image: 1024x1024 (flux's fixed size) = 2 x 2 = 4 tiles, 4 steps (flux's default);
    #        per image 4 x $0.0000528 + 4 x $0.0001056 = $0.0006336; x 1000 = $0.6336/day
    #        = 0.6336 / 0.000011 = 57,600 neurons
    assert workers["studio"]["usd_per_day"] == pytest.approx(0.6336)
    assert workers["studio"]["neurons_per_day"] == pytest.approx(57600.0)
    # total 84,537.4545 neurons; 10,000 free -> 74,537.4545 billable x $0.000011 = $0.81991
    assert est["total"]["neurons_per_day"] == pytest.approx(84537.454545)
    assert est["total"]["billable_neurons_per_day"] == pytest.approx(74537.454545)
    assert est["total"]["usd_per_day"] == pytest.approx(0.8199120)
    assert est["total"]["price_unknown"] == []
    assert any("4 tiles of 512px, 4 steps (model default)" in a for a in est["assumptions"])


def test_cost_defaults_come_from_the_workers_settings() -> None:
    platform = load_platform(PLATFORM)
    est = estimate(platform, Traffic(requests_per_day=100))
    chat = next(w for w in est.workers if w.worker == "assistant")
    # tokens in = 3 system prompt words + 200 = 203; out = max_tokens 256; 100 requests:
    # 20,300 x $0.282/M + 25,600 x $0.827/M = $0.0057246 + $0.0211712 = $0.0268958
    assert chat.usd_per_day == pytest.approx(0.0268958)
    assert any(
        "203 (3 system prompt words + 200) in, 256 (max_tokens) out" in a for a in est.assumptions
    )


def test_cost_rag_adds_question_embedding_and_retrieved_context() -> None:
    platform = load_platform(
        {
            **PLATFORM,
            "workers": {
                "kb": {
                    "kind": "rag",
                    "index": "docs",
                    "system_prompt": "Answer from the context.",
                    "top_k": 3,
                    "chunk_size": 800,
                    "max_tokens": 256,
                }
            },
        }
    )
    (kb,) = estimate(platform, Traffic(requests_per_day=1000)).workers
    # question 200 tokens embedded: 200,000 x $0.067/M = $0.0134
    # generation in = 4 words + 200 + 3 x 800 / 4 (600 context) = 804 tokens:
    #   804,000 x $0.282/M = $0.226728; out 256,000 x $0.827/M = $0.211712
    assert kb.usd_per_day == pytest.approx(0.0134 + 0.226728 + 0.211712)


def test_cost_unpriced_models_are_price_unknown_never_zero(tmp_path: Path) -> None:
    config = tmp_path / "platform.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                **PLATFORM,
                "workers": {
                    **PLATFORM["workers"],
                    "sdxl": {
                        "kind": "image",
                        "model": "@cf/stabilityai/stable-diffusion-xl-base-1.0",
                    },
                },
            }
        )
    )
    r = cfai("cost", "--config", str(config), "--requests-per-day", "1000", "--json")
    est = json.loads(r.stdout)
    sdxl = next(w for w in est["workers"] if w["worker"] == "sdxl")
    assert sdxl["price_known"] is False
    assert sdxl["usd_per_day"] is None and sdxl["neurons_per_day"] is None
    assert est["total"]["price_unknown"] == ["sdxl"]

    table = cfai("cost", "--config", str(config), "--requests-per-day", "1000")
    assert table.returncode == 0, table.stderr
    sdxl_row = next(line for line in table.stdout.splitlines() if "sdxl" in line)
    assert "price unknown" in sdxl_row and "$0.0000" not in sdxl_row
    assert "+ unknown (sdxl)" in next(
        line for line in table.stdout.splitlines() if "billable" in line
    )
    assert "assumptions:" in table.stdout


def test_cost_of_the_shipped_staging_stack_reports_custom_worker_as_unknown() -> None:
    r = cfai("cost", "--stack", "staging", "--requests-per-day", "10", "--json", "--project", ".")
    assert r.returncode == 0, r.stderr
    est = json.loads(r.stdout)
    assert est["source"] == "staging"
    assert est["total"]["price_unknown"] == ["legacy"]
