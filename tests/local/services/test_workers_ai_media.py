"""Image, speech, translation and classification stand-ins: real forms, sizes and limits."""

from __future__ import annotations

import base64
import io
import json
import wave
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from cfai.catalog import CATALOG, Output
from cfai.local.services.base import EmulatorContext
from cfai.local.services.workers_ai import AiError, WorkersAIService

FLUX = "@cf/black-forest-labs/flux-1-schnell"
SDXL = "@cf/stabilityai/stable-diffusion-xl-base-1.0"
LUCID = "@cf/leonardo/lucid-origin"
PHOENIX = "@cf/leonardo/phoenix-1.0"
TURBO = "@cf/openai/whisper-large-v3-turbo"
WHISPER = "@cf/openai/whisper"


@pytest.fixture
def ai(tmp_path: Path) -> WorkersAIService:
    return WorkersAIService(EmulatorContext(state_dir=tmp_path, account_id="a" * 32, api_token="t"))


def _image(ai: WorkersAIService, model: str, inputs: dict[str, Any]) -> tuple[Image.Image, str]:
    """Decode the image the model answered, whatever its form; returns (image, form)."""
    out = ai.run(model, inputs)
    if out.content_type == "application/json":
        assert set(out.result) == {"image"}
        assert json.loads(out.body or b"") == out.result
        return Image.open(
            io.BytesIO(base64.b64decode(out.result["image"], validate=True))
        ), "base64"
    assert out.body is not None and out.result is None
    img = Image.open(io.BytesIO(out.body))
    assert Image.MIME[img.format or ""] == out.content_type
    return img, "binary"


@pytest.mark.parametrize(
    ("model", "form", "fmt", "size"),
    [
        (FLUX, "base64", "JPEG", (1024, 1024)),
        (SDXL, "binary", "PNG", (768, 512)),
        (LUCID, "base64", "JPEG", (640, 1280)),
        (PHOENIX, "binary", "JPEG", (512, 768)),
    ],
)
def test_images_decode_at_the_requested_size_in_the_model_form(
    ai: WorkersAIService, model: str, form: str, fmt: str, size: tuple[int, int]
) -> None:
    img, got_form = _image(
        ai, model, {"prompt": "a lighthouse at dusk", "width": size[0], "height": size[1]}
    )
    assert (got_form, img.format, img.size) == (form, fmt, size)
    assert got_form == ("base64" if CATALOG[model].output is Output.BASE64_IMAGE else "binary")


@pytest.mark.parametrize("model", [SDXL, LUCID, PHOENIX])
def test_images_default_size_is_the_catalog_default(ai: WorkersAIService, model: str) -> None:
    img, _ = _image(ai, model, {"prompt": "a cat"})
    limits = CATALOG[model].image
    assert limits is not None and img.size == (limits.default_width, limits.default_height)


def test_flux_ignores_width_and_height_and_paints_1024(ai: WorkersAIService) -> None:
    img, _ = _image(ai, FLUX, {"prompt": "a cat", "width": 256, "height": 256, "steps": 8})
    assert img.size == (1024, 1024)


def test_images_depend_on_prompt_and_seed_only(ai: WorkersAIService) -> None:
    def png(**extra: Any) -> bytes:
        return (
            ai.run(SDXL, {"prompt": "a red barn", "width": 256, "height": 256, **extra}).body or b""
        )

    assert png(seed=7) == png(seed=7)
    assert png(seed=7) != png(seed=8)
    assert png() != ai.run(SDXL, {"prompt": "a blue barn", "width": 256, "height": 256}).body


@pytest.mark.parametrize(
    ("model", "inputs", "field"),
    [
        (FLUX, {}, "prompt"),
        (FLUX, {"prompt": ""}, "prompt"),
        (FLUX, {"prompt": "x" * 2049}, "prompt"),
        (FLUX, {"prompt": "a", "steps": 9}, "steps"),
        (SDXL, {"prompt": "a", "width": 255}, "width"),
        (SDXL, {"prompt": "a", "height": 2049}, "height"),
        (SDXL, {"prompt": "a", "num_steps": 21}, "num_steps"),
        (LUCID, {"prompt": "a", "width": 2501}, "width"),
        (LUCID, {"prompt": "a", "steps": 41}, "steps"),
        (LUCID, {"prompt": "a", "guidance": 11}, "guidance"),
        (PHOENIX, {"prompt": "a", "num_steps": 51}, "num_steps"),
        (PHOENIX, {"prompt": "a", "guidance": 1}, "guidance"),
    ],
)
def test_images_out_of_range_inputs_are_3003(
    ai: WorkersAIService, model: str, inputs: dict[str, Any], field: str
) -> None:
    with pytest.raises(AiError) as err:
        ai.run(model, inputs)
    assert (err.value.status, err.value.internal_code) == (400, 3003)
    assert f"{field}:" in err.value.message


def test_sdxl_bad_image_b64_is_5004(ai: WorkersAIService) -> None:
    with pytest.raises(AiError) as err:
        ai.run(SDXL, {"prompt": "a", "image_b64": "not base64!"})
    assert err.value.internal_code == 5004


# --- speech --------------------------------------------------------------------------------


def _mp3_frames(data: bytes) -> int:
    """Count MPEG-1 Layer III frames after an ID3v2 tag, checking every frame header."""
    assert data[:3] == b"ID3"
    size = (data[6] << 21) | (data[7] << 14) | (data[8] << 7) | data[9]
    pos, frames = 10 + size, 0
    bitrates = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320]
    while pos < len(data):
        h = data[pos : pos + 4]
        assert h[0] == 0xFF and h[1] & 0xFE == 0xFA, f"no MPEG-1 Layer III sync at {pos}"
        rate = [44100, 48000, 32000][(h[2] >> 2) & 3]
        pos += 144 * bitrates[h[2] >> 4] * 1000 // rate + ((h[2] >> 1) & 1)
        frames += 1
    assert pos == len(data)
    return frames


def test_tts_answers_valid_mpeg_audio_lasting_about_the_text(ai: WorkersAIService) -> None:
    short = ai.run("@cf/deepgram/aura-2-en", {"text": "Hello there."})
    long = ai.run("@cf/deepgram/aura-2-es", {"text": "Hola, " * 40, "speaker": "aquila"})
    assert short.content_type == long.content_type == "audio/mpeg"
    assert 0 < _mp3_frames(short.body or b"") < _mp3_frames(long.body or b"")


@pytest.mark.parametrize(
    ("inputs", "field"), [({}, "text"), ({"text": "hi", "encoding": "wma"}, "encoding")]
)
def test_tts_bad_inputs_are_3003(ai: WorkersAIService, inputs: dict[str, Any], field: str) -> None:
    with pytest.raises(AiError) as err:
        ai.run("@cf/deepgram/aura-2-en", inputs)
    assert err.value.internal_code == 3003 and f"{field}:" in err.value.message


def test_tts_then_whisper_turbo_round_trips_the_text(ai: WorkersAIService) -> None:
    audio = ai.run("@cf/deepgram/aura-2-en", {"text": "The quick brown fox jumps."}).body or b""
    out = ai.run(TURBO, {"audio": base64.b64encode(audio).decode()}).result
    assert out["text"] == "The quick brown fox jumps."
    assert out["word_count"] == 5
    assert set(out) == {"text", "word_count", "segments", "vtt", "transcription_info"}
    (segment,) = out["segments"]
    assert [w["word"] for w in segment["words"]] == out["text"].split()
    assert out["vtt"].startswith("WEBVTT\n\n00:00:00.000 --> ")
    assert out["transcription_info"]["language"] == "en"
    assert (
        out["transcription_info"]["duration"] == pytest.approx(segment["end"])
        and segment["end"] > 1
    )


def test_whisper_takes_a_byte_array_and_reports_wav_duration(ai: WorkersAIService) -> None:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(bytes(2 * 16000 * 2))  # two seconds of silence
    wav = buf.getvalue()
    out = ai.run(WHISPER, {"audio": list(wav)}).result
    assert out["text"] == f"[cfai stand-in transcription of {len(wav)} bytes]"
    assert set(out) == {"text", "word_count", "words", "vtt"}
    assert out["words"][-1]["end"] == pytest.approx(2.0)


@pytest.mark.parametrize(
    ("model", "audio", "code"),
    [
        (TURBO, "%%% not base64", 5004),
        (TURBO, [1, 2, 3], 5004),
        (TURBO, None, 3003),
        (WHISPER, "AAAA", 3003),
    ],
)
def test_asr_bad_audio(ai: WorkersAIService, model: str, audio: Any, code: int) -> None:
    with pytest.raises(AiError) as err:
        ai.run(model, {"audio": audio})
    assert (err.value.status, err.value.internal_code) == (400, code)


# --- translation and classification --------------------------------------------------------


def test_translation_tags_the_target_language(ai: WorkersAIService) -> None:
    out = ai.run("@cf/meta/m2m100-1.2b", {"text": "Good morning", "target_lang": "fr"})
    assert out.result == {"translated_text": "[fr] Good morning"}


def test_translation_needs_target_lang(ai: WorkersAIService) -> None:
    with pytest.raises(AiError) as err:
        ai.run("@cf/meta/m2m100-1.2b", {"text": "Good morning"})
    assert "target_lang:" in err.value.message


@pytest.mark.parametrize(
    ("text", "winner"),
    [
        ("I love this, it is great", "POSITIVE"),
        ("terrible and broken", "NEGATIVE"),
        ("not good at all", "NEGATIVE"),
    ],
)
def test_classification_labels_sentiment_with_scores_summing_to_one(
    ai: WorkersAIService, text: str, winner: str
) -> None:
    out = ai.run("@cf/huggingface/distilbert-sst-2-int8", {"text": text}).result
    assert [r["label"] for r in out] == ["NEGATIVE", "POSITIVE"]
    assert sum(r["score"] for r in out) == pytest.approx(1.0)
    assert max(out, key=lambda r: r["score"])["label"] == winner
