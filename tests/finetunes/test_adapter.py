"""The adapter checks, pure over bytes: each rule Cloudflare (or the safetensors format) sets,
failing alone, with the message a user reads. Valid files come from the demo generator,
which the safetensors reference reader also accepts (checked by hand with
``safetensors.numpy.load_file``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cfai.finetunes import (
    MAX_ADAPTER_BYTES,
    config_problems,
    digest_folder,
    finetune_name,
    inspect_folder,
    lora_base,
    upload_problems,
    weights_problems,
)
from cfai.finetunes.demo import adapter_config, safetensors_bytes, write_adapter
from cfai.finetunes.safetensors import read_header

LLAMA = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"


def config(**overrides: Any) -> bytes:
    doc = {**adapter_config(8, "llama"), **overrides}
    return json.dumps({k: v for k, v in doc.items() if v is not None}).encode()


def weights(header: dict[str, Any], buffer: bytes, *, pad: bool = True) -> bytes:
    text = json.dumps(header).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + buffer


def f16(name: str, shape: list[int], begin: int) -> dict[str, Any]:
    n = 2
    for d in shape:
        n *= d
    return {name: {"dtype": "F16", "shape": shape, "data_offsets": [begin, begin + n]}}


# -- adapter_config.json ------------------------------------------------------------------


def test_config_demo_is_valid_for_its_family() -> None:
    assert config_problems(config(), LLAMA) == []


def test_config_not_json() -> None:
    (msg,) = config_problems(b"{r: 8", LLAMA)
    assert msg.startswith("is not valid JSON (")


def test_config_not_an_object() -> None:
    assert config_problems(b"[8]", LLAMA) == ["must be a JSON object"]


def test_config_rank_over_32() -> None:
    assert config_problems(config(r=64), LLAMA) == [
        "rank r=64 exceeds Cloudflare's limit of 32; retrain with r <= 32"
    ]


def test_config_rank_32_is_the_limit_not_over_it() -> None:
    assert config_problems(config(r=32), LLAMA) == []


def test_config_rank_missing_or_not_a_positive_integer() -> None:
    assert config_problems(config(r=None), LLAMA) == [
        "rank `r` is missing (Cloudflare takes adapters of rank 1..32)"
    ]
    assert config_problems(config(r="8"), LLAMA) == ["rank `r` must be a positive integer, got '8'"]
    assert config_problems(config(r=0), LLAMA) == ["rank `r` must be a positive integer, got 0"]


def test_config_rank_pattern_over_32() -> None:
    assert config_problems(config(rank_pattern={"v_proj": 48}), LLAMA) == [
        "rank_pattern['v_proj']=48 exceeds Cloudflare's limit of 32"
    ]


def test_config_model_type_missing_names_the_family_to_add() -> None:
    assert config_problems(config(model_type=None), LLAMA) == [
        'model_type is missing; Cloudflare requires one of mistral, gemma, llama (add "model_type": "llama")'
    ]


def test_config_model_type_outside_cloudflares_three() -> None:
    assert config_problems(config(model_type="qwen2"), LLAMA) == [
        "model_type 'qwen2' is not one of mistral, gemma, llama"
    ]


def test_config_model_type_of_another_family_than_the_base_model() -> None:
    assert config_problems(config(model_type="gemma"), LLAMA) == [
        f"model_type 'gemma' does not match {LLAMA}, a llama model "
        "(an adapter runs only on the model family it was trained for)"
    ]


def test_config_qwen_base_takes_any_documented_model_type() -> None:
    # Cloudflare names no family for Qwen-architecture bases; the three documented pass.
    assert lora_base("@cf/qwen/qwq-32b") is not None
    assert config_problems(config(model_type="mistral"), "@cf/qwen/qwq-32b") == []


def test_config_every_problem_at_once() -> None:
    assert len(config_problems(config(r=99, model_type="bert"), LLAMA)) == 2


# -- adapter_model.safetensors ------------------------------------------------------------


def test_weights_demo_file_is_valid() -> None:
    data = safetensors_bytes({"a": ((2, 3), b"\0" * 12), "b": ((4,), b"\1" * 8)})
    assert weights_problems(data, len(data)) == []
    assert [t.name for t in read_header(data, size=len(data))] == ["a", "b"]


def test_weights_shorter_than_the_length_prefix() -> None:
    assert weights_problems(b"\x08\0\0", 3) == [
        "is not a valid safetensors file: the file has 3 bytes; a safetensors file starts "
        "with an 8-byte header length"
    ]


def test_weights_header_length_past_the_end() -> None:
    data = (500).to_bytes(8, "little") + b"{}      "
    assert weights_problems(data, len(data)) == [
        "is not a valid safetensors file: header length 500 runs past the end of the file (16 bytes)"
    ]


def test_weights_header_length_over_the_format_limit() -> None:
    data = (100_000_001).to_bytes(8, "little")
    (msg,) = weights_problems(data, 200_000_000)
    assert msg.endswith("header length 100000001 exceeds the format's limit of 100000000 bytes")


def test_weights_header_not_json() -> None:
    data = weights({}, b"")[:8] + b"{oops}  "
    (msg,) = weights_problems(data, len(data))
    assert msg.startswith("is not a valid safetensors file: the header is not valid JSON (")


def test_weights_header_not_starting_with_a_brace() -> None:
    text = b' {"a": 1}'
    text += b" " * (-len(text) % 8)
    data = len(text).to_bytes(8, "little") + text
    assert weights_problems(data, len(data)) == [
        "is not a valid safetensors file: the header must be a JSON object starting with '{'"
    ]


def test_weights_unknown_dtype() -> None:
    data = weights({"a": {"dtype": "F12", "shape": [1], "data_offsets": [0, 2]}}, b"\0\0")
    (msg,) = weights_problems(data, len(data))
    assert "tensor 'a': unknown dtype 'F12' (known: BOOL, U8," in msg


def test_weights_shape_and_offsets_disagree() -> None:
    data = weights({"a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 8]}}, b"\0" * 8)
    assert weights_problems(data, len(data)) == [
        "is not a valid safetensors file: tensor 'a': shape [2, 2] of F32 needs 16 bytes, "
        "data_offsets give 8"
    ]


def test_weights_tensors_overlap() -> None:
    data = weights({**f16("a", [4], 0), **f16("b", [4], 4)}, b"\0" * 12)
    assert weights_problems(data, len(data)) == [
        "is not a valid safetensors file: tensor 'b': data_offsets [4, 12] overlap the previous tensor"
    ]


def test_weights_hole_between_tensors() -> None:
    data = weights({**f16("a", [2], 0), **f16("b", [2], 8)}, b"\0" * 12)
    assert weights_problems(data, len(data)) == [
        "is not a valid safetensors file: tensor 'b': bytes 4..8 of the buffer belong to no tensor"
    ]


def test_weights_tensor_past_the_end_of_the_file() -> None:
    data = weights(f16("a", [8], 0), b"\0" * 10)
    assert weights_problems(data, len(data)) == [
        "is not a valid safetensors file: the tensors need 16 bytes after the header, the "
        "file has 10 (truncated?)"
    ]


def test_weights_trailing_bytes_after_the_last_tensor() -> None:
    data = weights(f16("a", [2], 0), b"\0" * 6)
    assert weights_problems(data, len(data)) == [
        "is not a valid safetensors file: 2 bytes after the last tensor belong to no tensor "
        "(the buffer must be entirely indexed)"
    ]


def test_weights_duplicate_tensor_name() -> None:
    text = b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}'
    text += b" " * (-len(text) % 8)
    data = len(text).to_bytes(8, "little") + text + b"\0\0"
    assert weights_problems(data, len(data)) == [
        "is not a valid safetensors file: the header names 'a' twice"
    ]


def test_weights_metadata_must_map_strings_to_strings() -> None:
    data = weights({"__metadata__": {"epochs": 3}, **f16("a", [1], 0)}, b"\0\0")
    assert weights_problems(data, len(data)) == [
        "is not a valid safetensors file: __metadata__ must map strings to strings"
    ]


def test_weights_without_tensors_is_no_adapter() -> None:
    data = weights({}, b"")
    assert weights_problems(data, len(data)) == [
        "holds no tensors (an adapter needs its LoRA weights)"
    ]


def test_weights_at_cloudflares_size_limit() -> None:
    data = safetensors_bytes({"a": ((1,), b"\0\0")})
    assert weights_problems(data, MAX_ADAPTER_BYTES) == [
        "is 300,000,000 bytes; Cloudflare takes adapter files under 300,000,000 bytes"
    ]
    assert weights_problems(data, len(data)) == []


# -- an upload, as the emulator sees it ----------------------------------------------------


def test_upload_file_name_must_be_one_of_the_two() -> None:
    assert upload_problems("adapter.bin", b"x") == [
        "file_name must be adapter_config.json or adapter_model.safetensors, got 'adapter.bin'"
    ]


def test_upload_checks_the_file_it_names() -> None:
    assert upload_problems("adapter_config.json", config(r=40)) == [
        "rank r=40 exceeds Cloudflare's limit of 32; retrain with r <= 32"
    ]
    assert upload_problems("adapter_model.safetensors", config()) != []


# -- a folder ------------------------------------------------------------------------------


def test_folder_demo_adapter_is_valid(tmp_path: Path) -> None:
    write_adapter(tmp_path)
    assert inspect_folder(tmp_path, LLAMA) == []


def test_folder_missing_files_named(tmp_path: Path) -> None:
    (tmp_path / "adapter_config.json").write_bytes(config())
    assert [str(f) for f in inspect_folder(tmp_path, LLAMA)] == [
        f"adapter_model.safetensors: missing from {tmp_path}"
    ]


def test_folder_that_is_not_a_folder(tmp_path: Path) -> None:
    assert [str(f) for f in inspect_folder(tmp_path / "nope", LLAMA)] == [
        f"{tmp_path / 'nope'} is not a folder (it must hold adapter_config.json and "
        "adapter_model.safetensors)"
    ]


def test_folder_reports_both_files_problems(tmp_path: Path) -> None:
    write_adapter(tmp_path, rank=64)
    weights_path = tmp_path / "adapter_model.safetensors"
    weights_path.write_bytes(weights_path.read_bytes()[:-1])
    found = [str(f) for f in inspect_folder(tmp_path, LLAMA)]
    assert (
        found[0]
        == "adapter_config.json: rank r=64 exceeds Cloudflare's limit of 32; retrain with r <= 32"
    )
    assert found[1].startswith("adapter_model.safetensors: is not a valid safetensors file:")


@pytest.mark.parametrize("change", ["config", "weights", "model", "description"])
def test_name_digest_changes_with_anything_cloudflare_cannot_change(
    tmp_path: Path, change: str
) -> None:
    write_adapter(tmp_path)
    before = finetune_name("p-tone", model=LLAMA, description="", digest=digest_folder(tmp_path))
    model, description = LLAMA, ""
    if change == "config":
        write_adapter(tmp_path, rank=16)
    elif change == "weights":
        write_adapter(tmp_path, layers=3)
    elif change == "model":
        model = "@cf/meta/llama-guard-3-8b"
    else:
        description = "new words"
    after = finetune_name(
        "p-tone", model=model, description=description, digest=digest_folder(tmp_path)
    )
    assert before.startswith("p-tone-") and after.startswith("p-tone-") and before != after
    same = finetune_name(
        "p-tone", model=model, description=description, digest=digest_folder(tmp_path)
    )
    assert same == after
