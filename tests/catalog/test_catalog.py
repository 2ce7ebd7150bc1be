"""The built-in catalog covers every model of the user's Workers AI guide, each with its task,
capabilities, rate limit, form, price and public source; a project's catalog.json wins."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cfai.catalog import (
    CATALOG,
    AudioInput,
    Form,
    Reasoning,
    Task,
    ToolShape,
    Vision,
    catalog_for,
)
from cfai.errors import ConfigError

# The 28 models of the guide: (name, task, requests/min, prices by unit in USD per the
# guide's unit: 1M tokens, one 512x512 tile, one audio minute, 1k characters).
GUIDE: list[tuple[str, Task, int, dict[str, float]]] = [
    ("@cf/meta/llama-4-scout-17b-16e-instruct", Task.TEXT_GENERATION, 300, {"input_tokens": 0.270, "output_tokens": 0.850}),
    ("@cf/openai/gpt-oss-120b", Task.TEXT_GENERATION, 300, {"input_tokens": 0.350, "output_tokens": 0.750}),
    ("@cf/openai/gpt-oss-20b", Task.TEXT_GENERATION, 300, {"input_tokens": 0.200, "output_tokens": 0.300}),
    ("@cf/google/gemma-3-12b-it", Task.TEXT_GENERATION, 300, {"input_tokens": 0.345, "output_tokens": 0.556}),
    ("@cf/mistralai/mistral-small-3.1-24b-instruct", Task.TEXT_GENERATION, 300, {"input_tokens": 0.351, "output_tokens": 0.555}),
    ("@cf/qwen/qwq-32b", Task.TEXT_GENERATION, 300, {"input_tokens": 0.660, "output_tokens": 1.000}),
    ("@cf/qwen/qwen2.5-coder-32b-instruct", Task.TEXT_GENERATION, 300, {"input_tokens": 0.660, "output_tokens": 1.000}),
    ("@cf/qwen/qwen3-30b-a3b-fp8", Task.TEXT_GENERATION, 300, {"input_tokens": 0.051, "output_tokens": 0.340}),
    ("@cf/ibm-granite/granite-4.0-h-micro", Task.TEXT_GENERATION, 300, {"input_tokens": 0.017, "output_tokens": 0.112}),
    ("@cf/meta/llama-3.3-70b-instruct-fp8-fast", Task.TEXT_GENERATION, 300, {"input_tokens": 0.293, "output_tokens": 2.253}),
    ("@cf/meta/llama-3.1-8b-instruct-fp8-fast", Task.TEXT_GENERATION, 300, {"input_tokens": 0.045, "output_tokens": 0.384}),
    ("@cf/meta/llama-3.1-8b-instruct", Task.TEXT_GENERATION, 300, {"input_tokens": 0.282, "output_tokens": 0.827}),
    ("@cf/meta/llama-3.2-1b-instruct", Task.TEXT_GENERATION, 300, {"input_tokens": 0.027, "output_tokens": 0.201}),
    ("@cf/deepseek-ai/deepseek-r1-distill-qwen-32b", Task.TEXT_GENERATION, 300, {"input_tokens": 0.497, "output_tokens": 4.881}),
    ("@cf/google/embeddinggemma-300m", Task.TEXT_EMBEDDINGS, 3000, {"input_tokens": 0.012}),
    ("@cf/baai/bge-base-en-v1.5", Task.TEXT_EMBEDDINGS, 3000, {"input_tokens": 0.067}),
    ("@cf/baai/bge-large-en-v1.5", Task.TEXT_EMBEDDINGS, 1500, {"input_tokens": 0.204}),
    ("@cf/baai/bge-small-en-v1.5", Task.TEXT_EMBEDDINGS, 3000, {"input_tokens": 0.020}),
    ("@cf/qwen/qwen3-embedding-0.6b", Task.TEXT_EMBEDDINGS, 3000, {"input_tokens": 0.012}),
    ("@cf/black-forest-labs/flux-1-schnell", Task.TEXT_TO_IMAGE, 720, {"tiles": 0.0000528}),
    ("@cf/leonardo/lucid-origin", Task.TEXT_TO_IMAGE, 720, {"tiles": 0.006996}),
    ("@cf/leonardo/phoenix-1.0", Task.TEXT_TO_IMAGE, 720, {"tiles": 0.005830}),
    ("@cf/stabilityai/stable-diffusion-xl-base-1.0", Task.TEXT_TO_IMAGE, 720, {}),
    ("@cf/meta/llama-3.2-11b-vision-instruct", Task.TEXT_GENERATION, 720, {"input_tokens": 0.049, "output_tokens": 0.676}),
    ("@cf/deepgram/aura-2-en", Task.TEXT_TO_SPEECH, 720, {"characters": 0.030}),
    ("@cf/deepgram/aura-2-es", Task.TEXT_TO_SPEECH, 720, {"characters": 0.030}),
    ("@cf/deepgram/nova-3", Task.SPEECH_RECOGNITION, 720, {"audio_minutes": 0.0052}),
    ("@cf/openai/whisper-large-v3-turbo", Task.SPEECH_RECOGNITION, 720, {"audio_minutes": 0.0005}),
]  # fmt: skip
GUIDE_NAMES = [g[0] for g in GUIDE]
_PER = {"input_tokens": 1_000_000, "output_tokens": 1_000_000, "tiles": 1, "audio_minutes": 1, "characters": 1000}  # fmt: skip


def test_the_guide_has_28_models_and_the_catalog_lists_each() -> None:
    assert len(set(GUIDE_NAMES)) == 28
    assert [n for n in GUIDE_NAMES if n not in CATALOG] == []


@pytest.mark.parametrize(("name", "task", "rate", "prices"), GUIDE, ids=GUIDE_NAMES)
def test_guide_model_task_rate_price_and_source(
    name: str, task: Task, rate: int, prices: dict[str, float]
) -> None:
    spec = CATALOG[name]
    assert spec.task is task and spec.known
    assert spec.rate_limit == rate
    assert {p.unit: p.usd * _PER[p.unit] / p.per for p in spec.prices if p.unit in _PER} == (
        pytest.approx(prices)
    )
    assert spec.source.startswith("https://developers.cloudflare.com/workers-ai/"), spec.source
    assert spec.io  # every form describes its input and output


def test_capabilities_follow_the_model_pages() -> None:
    tools = {n for n in GUIDE_NAMES if CATALOG[n].tools}
    assert {
        "@cf/mistralai/mistral-small-3.1-24b-instruct",
        "@cf/meta/llama-4-scout-17b-16e-instruct",
        "@cf/meta/llama-3.3-70b-instruct-fp8-fast",
        "@cf/qwen/qwen3-30b-a3b-fp8",
        "@cf/ibm-granite/granite-4.0-h-micro",
    } <= tools
    vision = {n: CATALOG[n].vision for n in GUIDE_NAMES if CATALOG[n].vision is not Vision.NONE}
    assert vision == {
        "@cf/meta/llama-3.2-11b-vision-instruct": Vision.IMAGE_FIELD,
        "@cf/google/gemma-3-12b-it": Vision.CONTENT_PARTS,
        "@cf/mistralai/mistral-small-3.1-24b-instruct": Vision.CONTENT_PARTS,
        "@cf/meta/llama-4-scout-17b-16e-instruct": Vision.CONTENT_PARTS,
    }
    reasoning = {
        n: CATALOG[n].reasoning for n in GUIDE_NAMES if CATALOG[n].reasoning.value != "none"
    }
    assert reasoning == {
        "@cf/deepseek-ai/deepseek-r1-distill-qwen-32b": Reasoning.THINK_TAG,
        "@cf/qwen/qwq-32b": Reasoning.THINK_TAG,
        "@cf/qwen/qwen3-30b-a3b-fp8": Reasoning.REASONING_CONTENT,
        "@cf/openai/gpt-oss-120b": Reasoning.REASONING_CONTENT,
        "@cf/openai/gpt-oss-20b": Reasoning.REASONING_CONTENT,
    }
    assert CATALOG["@cf/openai/gpt-oss-120b"].form is Form.GPT_OSS
    assert CATALOG["@cf/qwen/qwen3-30b-a3b-fp8"].tool_shape is ToolShape.OPENAI
    assert CATALOG["@cf/deepgram/nova-3"].audio_input is AudioInput.BINARY
    assert CATALOG["@cf/openai/whisper-large-v3-turbo"].audio_input is AudioInput.BASE64
    assert CATALOG["@cf/google/gemma-3-12b-it"].context_window == 80_000
    assert CATALOG["@cf/qwen/qwen3-30b-a3b-fp8"].default_max_tokens == 2000


def test_embedding_dimensions_are_the_real_ones() -> None:
    dims = {
        n: CATALOG[n].dimensions for n in GUIDE_NAMES if CATALOG[n].task is Task.TEXT_EMBEDDINGS
    }
    assert dims == {
        "@cf/google/embeddinggemma-300m": 768,
        "@cf/baai/bge-base-en-v1.5": 768,
        "@cf/baai/bge-large-en-v1.5": 1024,
        "@cf/baai/bge-small-en-v1.5": 384,
        "@cf/qwen/qwen3-embedding-0.6b": 1024,
    }
    assert CATALOG["@cf/baai/bge-base-en-v1.5"].poolings == ("mean", "cls")


def _write(dir: Path, models: list[dict[str, object]]) -> Path:
    path = dir / "catalog.json"
    path.write_text(
        json.dumps({"source": "test", "synced_at": "2026-01-09T00:00:00Z", "models": models})
    )
    return path


def test_project_catalog_json_is_preferred(tmp_path: Path) -> None:
    assert catalog_for(tmp_path) is CATALOG  # no file: the built-in catalog
    _write(
        tmp_path,
        [
            {"name": "@cf/meta/llama-3.1-8b-instruct", "task": "text-generation", "context_window": 4096,
             "prices": [{"unit": "input_tokens", "usd": 9.0}]},
            {"name": "@cf/new/model-2026", "task": "text-generation", "tools": True},
        ],
    )  # fmt: skip
    catalog = catalog_for(tmp_path)
    llama = catalog["@cf/meta/llama-3.1-8b-instruct"]
    assert llama.context_window == 4096 and [p.usd for p in llama.prices] == [9.0]
    assert llama.json_mode  # what the file does not say keeps the built-in value
    new = catalog["@cf/new/model-2026"]
    assert new.task is Task.TEXT_GENERATION and new.tools and new.known and new.prices == ()
    assert catalog.synced == {"@cf/meta/llama-3.1-8b-instruct", "@cf/new/model-2026"}
    assert "@cf/new/model-2026" not in CATALOG


def test_malformed_catalog_json_names_the_file_and_field(tmp_path: Path) -> None:
    _write(tmp_path, [{"name": "@cf/x/y", "task": "dancing"}])
    with pytest.raises(ConfigError) as info:
        catalog_for(tmp_path)
    assert "catalog.json.models.0.task" in str(info.value)
    (tmp_path / "catalog.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"catalog\.json: cannot be read"):
        catalog_for(tmp_path)


def test_cost_prices_every_guide_model_and_never_calls_one_free() -> None:
    from cfai.config import load_platform
    from cfai.gitops.cost import Traffic, estimate

    workers: dict[str, dict[str, object]] = {}
    indexes: dict[str, dict[str, object]] = {}
    for i, (name, task, _, _) in enumerate(GUIDE):
        key = f"w{i}"
        if task is Task.TEXT_GENERATION:
            workers[key] = {"kind": "chat", "model": name, "max_tokens": 64}
        elif task is Task.TEXT_EMBEDDINGS:
            indexes[key] = {"dimensions": CATALOG[name].dimensions, "metric": "cosine"}
            workers[key] = {"kind": "rag", "index": key, "embedding_model": name}
        elif task is Task.TEXT_TO_IMAGE:
            workers[key] = {"kind": "image", "model": name}
        elif task is Task.TEXT_TO_SPEECH:
            workers[key] = {"kind": "speech", "tts_model": name}
        else:
            workers[key] = {"kind": "speech", "stt_model": name}
    platform = load_platform({"account_id": "0" * 32, "indexes": indexes, "workers": workers})
    est = estimate(platform, Traffic(requests_per_day=1000))
    models = {w.worker: dict(workers[w.worker]) for w in est.workers}
    unknown = {str(models[w.worker].get("model")) for w in est.workers if w.usd_per_day is None}
    assert unknown == {"@cf/stabilityai/stable-diffusion-xl-base-1.0"}  # beta: no price
    assert all(w.usd_per_day and w.usd_per_day > 0 for w in est.workers if w.price_known)
    assert est.unknown == [w.worker for w in est.workers if not w.price_known]
