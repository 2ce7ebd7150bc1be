"""speech Workers: /speak answers MP3 audio, /transcribe turns it back into its text, and the
OpenAI-compatible /v1/audio routes work with the official `openai` client."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx2
import openai
import pytest

from cfai.catalog import CATALOG, Task
from cfai.contract._http import SecretGuard, assert_json_error, describe, json_body
from cfai.contract._outputs import Target, WorkerTarget
from cfai.contract.plugin import ClientFactory

# MPEG audio layer III frame sizes: bitrates (kbit/s) of MPEG-1 and of MPEG-2/2.5.
_RATES_V1 = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
_RATES_V2 = (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)
_SAMPLES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def mp3_frames(data: bytes) -> int:
    """How many consecutive MPEG layer III frames `data` holds after an optional ID3v2 tag;
    AssertionError when it is not MP3 (what an MP3 decoder would refuse)."""
    pos = 0
    if data[:3] == b"ID3" and len(data) >= 10:
        pos = 10 + ((data[6] << 21) | (data[7] << 14) | (data[8] << 7) | data[9])
    frames = 0
    while pos + 4 <= len(data):
        h = data[pos : pos + 4]
        version, layer = (h[1] >> 3) & 3, (h[1] >> 1) & 3
        rate_i, sample_i = h[2] >> 4, (h[2] >> 2) & 3
        if h[0] != 0xFF or h[1] & 0xE0 != 0xE0 or version == 1 or layer != 1:
            break
        if rate_i in (0, 15) or sample_i == 3:
            break
        rate = (_RATES_V1 if version == 3 else _RATES_V2)[rate_i] * 1000
        size = (144 if version == 3 else 72) * rate // _SAMPLES[version][sample_i] + (
            (h[2] >> 1) & 1
        )
        pos += size
        frames += 1
    assert frames >= 3, f"not MP3 audio: {frames} MPEG layer III frame(s) in {len(data)} bytes"
    return frames


def _voice(worker: WorkerTarget) -> str | None:
    for name in worker.models:
        spec = CATALOG.get(name)
        if spec is not None and spec.task is Task.TEXT_TO_SPEECH and spec.voices:
            return spec.voices[0]
    return None


@pytest.fixture
def speech_client(cfai_target: Target) -> Iterator[Any]:
    made: list[openai.OpenAI] = []

    def make(worker: WorkerTarget) -> openai.OpenAI:
        http = httpx2.Client(
            timeout=60.0, event_hooks={"response": [SecretGuard(cfai_target.secrets)]}
        )
        made.append(
            openai.OpenAI(
                base_url=f"{worker.url}/v1",
                api_key=cfai_target.auth_token or "no-auth",
                http_client=http,
                max_retries=0,
                default_headers=dict(worker.request_headers),
            )
        )
        return made[-1]

    yield make
    for c in made:
        c.close()


def test_speak_answers_mp3(tts_worker: WorkerTarget, worker_client: ClientFactory) -> None:
    r = worker_client(tts_worker.name).post(
        "/speak", json={"text": "The canary deploy starts at noon."}
    )
    assert r.status_code == 200, describe(r)
    assert r.headers.get("content-type", "").startswith("audio/mpeg"), r.headers.get("content-type")
    mp3_frames(r.content)


def test_speak_text_over_the_limit_400(
    tts_worker: WorkerTarget, worker_client: ClientFactory
) -> None:
    limit = tts_worker.max_text_chars
    assert limit, f"the outputs map gives speech Worker {tts_worker.name} no max_text_chars"
    r = worker_client(tts_worker.name).post("/speak", json={"text": "x" * (limit + 1)})
    assert "text" in assert_json_error(r, 400)["message"], describe(r)


def test_openai_speech(tts_worker: WorkerTarget, speech_client: Any) -> None:
    client = speech_client(tts_worker)
    audio = client.audio.speech.create(
        model="tts", voice=_voice(tts_worker) or "luna", input="Rollbacks are automatic."
    )
    mp3_frames(audio.content)


def _audio(worker: WorkerTarget, worker_client: ClientFactory, text: str) -> bytes:
    r = worker_client(worker.name).post("/speak", json={"text": text})
    assert r.status_code == 200, describe(r)
    return r.content


# Known audio comes from the Worker's own /speak: these run on Workers that do both.


def test_transcribe_the_spoken_text(
    voice_worker: WorkerTarget, worker_client: ClientFactory
) -> None:
    stt_worker = voice_worker
    text = f"The canary deploy starts at noon {uuid.uuid4().hex[:6]}."
    audio = _audio(stt_worker, worker_client, text)
    r = worker_client(stt_worker.name).post(
        "/transcribe", content=audio, headers={"content-type": "audio/mpeg"}
    )
    body = json_body(r)
    assert isinstance(body.get("text"), str), body
    assert "canary" in body["text"].lower(), f"transcript {body['text']!r} of {text!r}"
    assert isinstance(body.get("segments", []), list)


def test_openai_transcription(
    voice_worker: WorkerTarget, worker_client: ClientFactory, speech_client: Any
) -> None:
    stt_worker = voice_worker
    audio = _audio(stt_worker, worker_client, "Vectorize filters need a metadata index.")
    client = speech_client(stt_worker)
    done = client.audio.transcriptions.create(model="stt", file=("note.mp3", audio, "audio/mpeg"))
    assert "metadata" in done.text.lower(), done.text
    verbose = client.audio.transcriptions.create(
        model="stt", file=("note.mp3", audio, "audio/mpeg"), response_format="verbose_json"
    )
    assert verbose.text == done.text and verbose.segments, verbose


def test_transcribe_refuses_a_body_that_is_not_audio(
    stt_worker: WorkerTarget, worker_client: ClientFactory
) -> None:
    r = worker_client(stt_worker.name).post(
        "/transcribe", content=b"hello", headers={"content-type": "text/plain"}
    )
    assert "content-type" in assert_json_error(r, 400)["message"], describe(r)
