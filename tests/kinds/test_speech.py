"""The speech kind's declaration: one model or both, each of its task; nova-3 without a
gateway; voices and text limits from the catalog; its cost rule and bindings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cfai.config import load_platform
from cfai.errors import ConfigError
from cfai.gitops.cost import Traffic, estimate
from cfai.render import render_platform

ACCOUNT = "0123456789abcdef0123456789abcdef"


def _load(worker: dict[str, Any]) -> Any:
    return load_platform(
        {
            "account_id": ACCOUNT,
            "gateways": {"main": {}},
            "workers": {"v": {"kind": "speech", **worker}},
        }
    )


def _problems(worker: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        _load(worker)
    return [str(p) for p in info.value.problems]


def test_a_speech_worker_declares_at_least_one_model() -> None:
    assert _problems({}) == ["workers.v: declare stt_model, tts_model or both"]


def test_each_model_must_do_its_task() -> None:
    problems = _problems(
        {"stt_model": "@cf/deepgram/aura-2-en", "tts_model": "@cf/openai/whisper-large-v3-turbo"}
    )
    assert problems[0].startswith(
        "workers.v.stt_model: a speech worker needs a automatic-speech-recognition model"
    )
    assert problems[1].startswith(
        "workers.v.tts_model: a speech worker needs a text-to-speech model"
    )


def test_a_binary_audio_model_cannot_go_through_a_gateway() -> None:
    (problem,) = _problems({"stt_model": "@cf/deepgram/nova-3", "gateway": "main"})
    assert problem.startswith(
        "workers.v.gateway: @cf/deepgram/nova-3 takes its audio as the request body"
    )
    assert _load({"stt_model": "@cf/openai/whisper-large-v3-turbo", "gateway": "main"})


def test_voice_and_text_limit_come_from_the_tts_model() -> None:
    assert _problems({"tts_model": "@cf/deepgram/aura-2-es", "voice": "luna"}) == [
        "workers.v.voice: unknown voice 'luna' (aquila, sirio, nestor, carina, celeste, alvaro, diana, selena, estrella, javier)"
    ]
    assert _problems({"tts_model": "@cf/deepgram/aura-2-en", "max_text_chars": 2001}) == [
        "workers.v.max_text_chars: @cf/deepgram/aura-2-en speaks at most 2000 characters a request"
    ]


def test_an_unknown_model_with_its_task_is_accepted() -> None:
    platform = _load({"stt_model": "@cf/acme/ears-2026", "task": "automatic-speech-recognition"})
    (rendered,) = render_platform(platform, base_dir=Path("."))
    assert rendered.models == ("@cf/acme/ears-2026",)


def test_render_carries_models_and_traits_as_vars() -> None:
    platform = _load(
        {
            "stt_model": "@cf/deepgram/nova-3",
            "tts_model": "@cf/deepgram/aura-2-en",
            "voice": "asteria",
        }
    )
    (rendered,) = render_platform(platform, base_dir=Path("."))
    text = {b.name: b.text for b in rendered.bindings if b.type == "plain_text"}
    assert (
        text["STT_MODEL"] == "@cf/deepgram/nova-3" and text["TTS_MODEL"] == "@cf/deepgram/aura-2-en"
    )
    traits = json.loads(text["SPEECH_TRAITS"] or "{}")
    assert traits["stt"] == {"form": "deepgram-asr", "input": "binary"}
    assert traits["tts"]["voice"] == "asteria" and "luna" in traits["tts"]["voices"]
    assert text["MAX_TEXT_CHARS"] == "2000"  # a setting: a var, not code
    assert "const MAX_REQUEST_BYTES = 26214400;" in rendered.source


def test_cost_prices_audio_minutes_and_characters() -> None:
    platform = _load({"stt_model": "@cf/deepgram/nova-3", "tts_model": "@cf/deepgram/aura-2-en"})
    (worker,) = estimate(platform, Traffic(requests_per_day=100)).workers
    usd = {i.unit: i.usd_per_day for i in worker.items}
    assert usd == pytest.approx(
        {"audio_minutes": 100 * 0.0052, "characters": 100 * 800 * 0.03 / 1000}
    )
