"""The speech Worker in Node with stub bindings: /speak and /v1/audio/speech answer the
model's MP3; /transcribe and /v1/audio/transcriptions send the audio in the model's form
(base64 for whisper, the body itself for nova-3) and answer the transcript in each format;
a route without its model is 404; the rendered module matches its golden file."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

from conftest import TOKEN, env_for, render
from node_harness import request, run_worker

from cfai.config import PlatformConfig, load_platform

ACCOUNT = "0123456789abcdef0123456789abcdef"
GOLDEN = Path(__file__).parent / "golden" / "speech.js"
MP3 = bytes([0xFF, 0xFB, 0x14, 0xC0]) + bytes(92)
WHISPER = {"json": {"text": "Ship it.", "word_count": 2, "segments": [{"start": 0, "end": 1.2, "text": "Ship it."}], "transcription_info": {"language": "en", "duration": 1.2}}}  # fmt: skip
NOVA = {"json": {"results": {"channels": [{"alternatives": [{"transcript": "Ship it.", "confidence": 0.9, "words": [{"word": "Ship", "start": 0.1, "end": 0.5}, {"word": "it.", "start": 0.5, "end": 0.9}]}]}]}}}  # fmt: skip


def _platform(**worker: Any) -> PlatformConfig:
    return load_platform(
        {
            "account_id": ACCOUNT,
            "name_prefix": "golden",
            "workers": {"s": {"kind": "speech", **worker}},
        }
    )


BOTH = _platform(stt_model="@cf/openai/whisper-large-v3-turbo", tts_model="@cf/deepgram/aura-2-en", voice="asteria")  # fmt: skip


def _run(tmp: Path, platform: PlatformConfig, requests: list[dict[str, Any]], **stubs: Any):
    worker = render(platform, "s")
    return run_worker(tmp, worker.source, {"env": env_for(worker), "requests": requests, **stubs})


def _multipart(fields: dict[str, str], audio: bytes) -> tuple[bytes, str]:
    boundary = "cfaitestboundary"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields.items()]  # fmt: skip
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.mp3"\r\nContent-Type: audio/mpeg\r\n\r\n'.encode() + audio + b"\r\n")  # fmt: skip
    return b"".join(
        parts
    ) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def test_render_matches_golden() -> None:
    source = render(BOTH, "s").source
    if os.environ.get("CFAI_UPDATE_GOLDEN") == "1":
        GOLDEN.write_bytes(source.encode("utf-8"))
    assert GOLDEN.read_bytes() == source.encode("utf-8"), (
        f"{GOLDEN} differs from the rendered speech Worker; review the diff and rerun with "
        "CFAI_UPDATE_GOLDEN=1 to accept it"
    )


def test_speak_answers_the_models_mp3_with_its_voice(tmp_path: Path) -> None:
    audio = {"bytes_b64": base64.b64encode(MP3).decode()}
    replies, calls = _run(
        tmp_path, BOTH,
        [
            request("POST", "/speak", {"text": "Hello."}, token=TOKEN),
            request("POST", "/v1/audio/speech", {"model": "tts-1", "input": "Hi.", "voice": "luna"}, token=TOKEN),
            request("POST", "/speak", {"text": "Hello.", "voice": "alloy"}, token=TOKEN),
            request("POST", "/v1/audio/speech", {"model": "tts-1", "input": "Hi.", "voice": "luna", "response_format": "wav"}, token=TOKEN),
            request("POST", "/speak", {"text": "x" * 2001}, token=TOKEN),
        ],
        ai_queue=[audio, audio],
    )  # fmt: skip
    assert [r.status for r in replies] == [200, 200, 400, 400, 400]
    assert replies[0].headers["content-type"] == "audio/mpeg" and replies[0].body == MP3
    assert [c["inputs"] for c in calls["ai"]] == [{"text": "Hello.", "speaker": "asteria"}, {"text": "Hi.", "speaker": "luna"}]  # fmt: skip
    assert replies[2].json()["error"]["message"].startswith("voice: must be one of luna,")
    assert replies[3].json()["error"]["message"].startswith("response_format:")
    assert replies[4].json()["error"]["message"].startswith("text:")


def test_transcribe_sends_whisper_base64_and_answers_text_and_segments(tmp_path: Path) -> None:
    body, ctype = _multipart({"model": "whisper-1", "response_format": "verbose_json"}, MP3)
    vtt, vtype = _multipart({"response_format": "vtt"}, MP3)
    replies, calls = _run(
        tmp_path, BOTH,
        [
            request("POST", "/transcribe?language=en", raw=MP3, headers={"content-type": "audio/mpeg"}, token=TOKEN),
            request("POST", "/v1/audio/transcriptions", raw=body, headers={"content-type": ctype}, token=TOKEN),
            request("POST", "/v1/audio/transcriptions", raw=vtt, headers={"content-type": vtype}, token=TOKEN),
            request("POST", "/transcribe", raw=b"hello", headers={"content-type": "text/plain"}, token=TOKEN),
            request("POST", "/transcribe", raw=b"", headers={"content-type": "audio/mpeg"}, token=TOKEN),
        ],
        ai_queue=[WHISPER, WHISPER, WHISPER],
    )  # fmt: skip
    assert [r.status for r in replies] == [200, 200, 200, 400, 400]
    assert replies[0].json() == {"text": "Ship it.", "segments": [{"start": 0, "end": 1.2, "text": "Ship it."}], "language": "en", "duration": 1.2}  # fmt: skip
    assert calls["ai"][0]["inputs"] == {"language": "en", "audio": base64.b64encode(MP3).decode()}
    verbose = replies[1].json()
    assert (
        verbose["task"] == "transcribe"
        and verbose["text"] == "Ship it."
        and verbose["segments"][0]["id"] == 0
    )
    assert replies[2].body.decode().startswith("WEBVTT\n\n00:00:00.000 --> 00:00:01.200\nShip it.")
    assert replies[3].json()["error"]["message"].startswith("content-type:")


def test_nova3_gets_the_audio_body_itself(tmp_path: Path) -> None:
    platform = _platform(stt_model="@cf/deepgram/nova-3")
    replies, calls = _run(
        tmp_path, platform,
        [
            request("POST", "/transcribe", raw=MP3, headers={"content-type": "audio/mpeg"}, token=TOKEN),
            request("POST", "/speak", {"text": "Hello."}, token=TOKEN),
        ],
        ai_queue=[NOVA],
    )  # fmt: skip
    assert replies[0].status == 200
    assert replies[0].json() == {"text": "Ship it.", "segments": [{"start": 0.1, "end": 0.9, "text": "Ship it."}], "duration": 0.9}  # fmt: skip
    audio = calls["ai"][0]["inputs"]["audio"]
    assert (
        audio["contentType"] == "audio/mpeg" and audio["body"] == {}
    )  # a ReadableStream, not JSON
    assert replies[1].status == 404 and "tts_model" in replies[1].json()["error"]["message"]


def test_health_lists_the_models(tmp_path: Path) -> None:
    replies, _ = _run(tmp_path, BOTH, [request("GET", "/health")])
    assert json.loads(replies[0].body)["models"] == [
        "@cf/openai/whisper-large-v3-turbo",
        "@cf/deepgram/aura-2-en",
    ]
