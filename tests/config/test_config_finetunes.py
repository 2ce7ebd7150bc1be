"""The ``finetunes`` section and a chat Worker's ``lora``: each load-time check failing with
its path and message, every problem reported at once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from cfai.config import load_file, load_platform
from cfai.errors import ConfigError
from cfai.finetunes.demo import write_adapter
from cfai.render import render_platform

ACCOUNT = "0123456789abcdef0123456789abcdef"
LLAMA = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"
GEMMA = "@cf/google/gemma-3-12b-it"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write_adapter(tmp_path / "adapters" / "tone")
    return tmp_path


def platform(**sections: Any) -> dict[str, Any]:
    return {"account_id": ACCOUNT, "name_prefix": "acme", **sections}


def tone(**overrides: Any) -> dict[str, Any]:
    return {"base_model": LLAMA, "path": "adapters/tone", **overrides}


def problems(data: dict[str, Any], base_dir: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_platform(data, base_dir=base_dir)
    return [str(p) for p in info.value.problems]


def test_finetune_loads_and_a_chat_worker_uses_it(project: Path) -> None:
    p = load_platform(
        platform(
            finetunes={"tone": tone(description="support tone")},
            workers={"bot": {"kind": "chat", "model": LLAMA, "lora": "tone"}},
        ),
        base_dir=project,
    )
    assert p.finetunes["tone"].description == "support tone"
    (rendered,) = render_platform(p, base_dir=project)
    lora = {b.name: b.text for b in rendered.bindings}["LORA"]
    assert lora == p.finetune_name("tone", project)
    assert lora is not None and lora.startswith("acme-tone-") and len(lora) == len("acme-tone-") + 8
    # Both /chat and /v1/chat/completions send it, streamed or not.
    assert rendered.source.count('inputs.lora = requireVar(req.env, "LORA");') == 2


def test_chat_worker_without_lora_gets_no_lora_var_and_the_same_module(project: Path) -> None:
    p = load_platform(platform(workers={"bot": {"kind": "chat", "model": LLAMA}}), base_dir=project)
    (rendered,) = render_platform(p, base_dir=project)
    assert "LORA" not in {b.name for b in rendered.bindings}
    # The module applies LORA only when the var is there: one module for the Workers (and
    # stacks) with and without a finetune, the var alone tells them apart.
    tuned = load_platform(
        platform(
            finetunes={"tone": tone()},
            workers={"bot": {"kind": "chat", "model": LLAMA, "lora": "tone"}},
        ),
        base_dir=project,
    )
    (with_lora,) = render_platform(tuned, base_dir=project)
    assert with_lora.source == rendered.source
    assert "if (req.env.LORA !== undefined) inputs.lora" in rendered.source


def test_finetune_base_model_without_lora_support(project: Path) -> None:
    (msg,) = problems(
        platform(finetunes={"tone": tone(base_model="@cf/meta/llama-3.1-8b-instruct")}), project
    )
    assert msg.startswith(
        "finetunes.tone.base_model: '@cf/meta/llama-3.1-8b-instruct' is not a model Cloudflare "
        "serves LoRA adapters for (one of: @cf/deepseek-ai/deepseek-r1-distill-qwen-32b, "
    )


def test_finetune_path_outside_the_project(project: Path) -> None:
    assert problems(platform(finetunes={"tone": tone(path="../elsewhere")}), project) == [
        "finetunes.tone.path: '../elsewhere' must be a folder inside the project (a relative path)"
    ]


def test_finetune_missing_file(project: Path) -> None:
    (project / "adapters" / "tone" / "adapter_config.json").unlink()
    assert problems(platform(finetunes={"tone": tone()}), project) == [
        f"finetunes.tone.path: adapter_config.json: missing from {project / 'adapters' / 'tone'}"
    ]


def test_finetune_rank_over_32(project: Path) -> None:
    write_adapter(project / "adapters" / "tone", rank=48)
    assert problems(platform(finetunes={"tone": tone()}), project) == [
        "finetunes.tone.path: adapter_config.json: rank r=48 exceeds Cloudflare's limit of 32; "
        "retrain with r <= 32"
    ]


def test_finetune_model_type_not_the_base_models_family(project: Path) -> None:
    assert problems(platform(finetunes={"tone": tone(base_model=GEMMA)}), project) == [
        "finetunes.tone.path: adapter_config.json: model_type 'llama' does not match "
        f"{GEMMA}, a gemma model (an adapter runs only on the model family it was trained for)"
    ]


def test_finetune_config_not_json(project: Path) -> None:
    (project / "adapters" / "tone" / "adapter_config.json").write_text("r: 8\n")
    (msg,) = problems(platform(finetunes={"tone": tone()}), project)
    assert msg.startswith("finetunes.tone.path: adapter_config.json: is not valid JSON (")


def test_finetune_safetensors_header_invalid(project: Path) -> None:
    weights = project / "adapters" / "tone" / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes() + b"\0\0")
    assert problems(platform(finetunes={"tone": tone()}), project) == [
        "finetunes.tone.path: adapter_model.safetensors: is not a valid safetensors file: "
        "2 bytes after the last tensor belong to no tensor (the buffer must be entirely indexed)"
    ]


def test_finetune_over_cloudflares_100_per_account(project: Path) -> None:
    many = {f"t{i}": tone() for i in range(101)}
    assert problems(platform(finetunes=many), project) == [
        "finetunes: 101 finetunes declared; Cloudflare allows 100 LoRA adapters per account"
    ]


def test_finetune_name_too_long_for_the_digest_suffix(project: Path) -> None:
    key = "t" * 51  # acme-<51> is 56 characters, 65 with the suffix
    (msg,) = problems(platform(finetunes={key: tone()}), project)
    assert msg == (
        f"finetunes.{key}: finetune name 'acme-{key}' plus cfai's 9-character digest suffix "
        "exceeds 64 characters (shorten the key or name_prefix)"
    )


def test_finetune_unknown_setting(project: Path) -> None:
    assert problems(platform(finetunes={"tone": tone(rank=8)}), project) == [
        "finetunes.tone.rank: unknown setting (check the spelling)"
    ]


def test_chat_lora_unknown_finetune(project: Path) -> None:
    found = problems(
        platform(
            finetunes={"tone": tone()},
            workers={"bot": {"kind": "chat", "model": LLAMA, "lora": "tonne"}},
        ),
        project,
    )
    assert found == ["workers.bot.lora: unknown finetune 'tonne' (defined: tone)"]


def test_chat_lora_on_another_model_than_the_finetunes_base(project: Path) -> None:
    found = problems(
        platform(
            finetunes={"tone": tone()},
            workers={
                "bot": {"kind": "chat", "model": "@cf/meta/llama-3.1-8b-instruct", "lora": "tone"}
            },
        ),
        project,
    )
    assert found == [
        "workers.bot.model: '@cf/meta/llama-3.1-8b-instruct' is not the base model of finetune "
        f"'tone' ({LLAMA}); set model: '{LLAMA}' or use another finetune"
    ]


def test_every_problem_at_once_and_an_invalid_finetune_is_not_also_unknown(
    project: Path,
) -> None:
    write_adapter(project / "adapters" / "big", rank=64)
    found = problems(
        platform(
            finetunes={
                "tone": tone(base_model="@cf/meta/llama-3.1-8b-instruct"),
                "big": tone(path="adapters/big"),
            },
            workers={"bot": {"kind": "chat", "model": LLAMA, "lora": "tone"}},
        ),
        project,
    )
    assert len(found) == 2
    assert found[0].startswith("finetunes.tone.base_model: ")
    assert found[1].startswith("finetunes.big.path: adapter_config.json: rank r=64 exceeds")


def test_finetune_files_are_read_from_the_stack_files_folder(project: Path) -> None:
    stack = project / "Pulumi.demo.yaml"
    data = platform(finetunes={"tone": tone()})
    stack.write_text(yaml.safe_dump({"config": {"cfai:platform": data}}))
    assert load_file(stack).finetunes["tone"].path == "adapters/tone"
    (project / "adapters" / "tone" / "adapter_config.json").write_text(
        json.dumps({"r": 8, "model_type": "llama"})
    )
    assert load_file(stack).finetunes["tone"].base_model == LLAMA
