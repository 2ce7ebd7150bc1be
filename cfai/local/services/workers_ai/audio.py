"""Speech stand-ins: text-to-speech (aura-2) and speech recognition (whisper, nova-3).

TTS answers a real MPEG-1 Layer III stream: an ID3v2.4 tag whose ``TXXX:cfai-tts`` frame
holds the spoken text, then silent 32 kbit/s 48 kHz mono frames (96 bytes, 24 ms each),
about 0.35 s per word. Any MP3 decoder plays it as silence of that length. ``encoding``,
``container``, ``sample_rate`` and ``bit_rate`` are checked but the answer is always this
``audio/mpeg`` (the catalog's content type).

ASR recovers the text from that tag, so TTS -> ASR round-trips; any other audio is
"transcribed" as ``[cfai stand-in transcription of N bytes]`` with its duration from a WAV
header, our MP3 frames, or 16 kB/s (128 kbit/s) otherwise. whisper-large-v3-turbo takes
base64 and answers ``{text, word_count, segments, vtt, transcription_info}``; the older
whisper takes a uint8 array and answers ``{text, word_count, words, vtt}``. nova-3 takes
``audio: {body, contentType}`` (the binding and REST send the body as the raw request body,
a JSON caller as base64) and answers Deepgram's ``{results: {channels: [{alternatives:
[{transcript, confidence, words}]}]}}`` (https://developers.cloudflare.com/workers-ai/models/nova-3/).
"""

from __future__ import annotations

import io
import wave
from collections.abc import Mapping
from typing import Any

from cfai.catalog import AudioInput, Form, ModelSpec

from ._core import (
    AiResult,
    b64decode,
    bad_input,
    byte_array,
    opt_bool,
    opt_int,
    opt_num,
    opt_str,
    req_str,
)

_TAG = b"cfai-tts"
_FRAME_HEADER = bytes([0xFF, 0xFB, 0x14, 0xC0])  # MPEG-1 L3, no CRC, 32 kbit/s, 48 kHz, mono
_FRAME_BYTES = 96  # 144 * 32000 / 48000
_FRAME_SECONDS = 1152 / 48000
_SECONDS_PER_WORD = 0.35
_ENCODINGS = ("linear16", "flac", "mulaw", "alaw", "mp3", "opus", "aac")
_CONTAINERS = ("none", "wav", "ogg")


def _synchsafe(n: int) -> bytes:
    return bytes([(n >> 21) & 0x7F, (n >> 14) & 0x7F, (n >> 7) & 0x7F, n & 0x7F])


def _unsynchsafe(b: bytes) -> int:
    return (b[0] << 21) | (b[1] << 14) | (b[2] << 7) | b[3]


def speak(text: str) -> bytes:
    """MP3 bytes of silence lasting about as long as `text` takes to say, tagged with it."""
    body = b"\x03" + _TAG + b"\x00" + text.encode()  # 3 = UTF-8
    frame = b"TXXX" + _synchsafe(len(body)) + b"\x00\x00" + body
    tag = b"ID3\x04\x00\x00" + _synchsafe(len(frame)) + frame
    n = max(1, round(len(text.split()) * _SECONDS_PER_WORD / _FRAME_SECONDS))
    return tag + (_FRAME_HEADER + bytes(_FRAME_BYTES - 4)) * n


def run_tts(spec: ModelSpec, inputs: Mapping[str, Any]) -> AiResult:
    text = req_str(inputs, "text", max_len=spec.max_chars or 131_072)
    opt_str(inputs, "speaker", spec.voices[0] if spec.voices else "luna", choices=spec.voices)
    opt_str(inputs, "encoding", "mp3", choices=_ENCODINGS)
    opt_str(inputs, "container", "none", choices=_CONTAINERS)
    opt_int(inputs, "sample_rate", 24000, 1)
    opt_int(inputs, "bit_rate", 32000, 1)
    return AiResult(content_type=spec.content_type, body=speak(text))


def _listen(audio: bytes) -> tuple[str | None, float]:
    """(text from our TTS tag or None, duration in seconds)."""
    text, rest = None, audio
    if audio[:3] == b"ID3" and len(audio) >= 10:
        size = _unsynchsafe(audio[6:10])
        frames, rest = audio[10 : 10 + size], audio[10 + size :]
        while len(frames) >= 10 and frames[:4] != b"\x00\x00\x00\x00":
            fsize = _unsynchsafe(frames[4:8])
            body = frames[10 : 10 + fsize]
            if frames[:4] == b"TXXX" and body[1:].startswith(_TAG + b"\x00"):
                text = body[len(_TAG) + 2 :].decode("utf-8", "replace")
            frames = frames[10 + fsize :]
    if rest[:4] == _FRAME_HEADER:
        return text, len(rest) // _FRAME_BYTES * _FRAME_SECONDS
    if audio[:4] == b"RIFF" and audio[8:12] == b"WAVE":
        try:
            with wave.open(io.BytesIO(audio)) as w:
                return text, w.getnframes() / w.getframerate()
        except (wave.Error, EOFError, ZeroDivisionError):
            pass
    return text, len(audio) / 16000


def _stamp(t: float) -> str:
    ms = round(t * 1000)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def _transcript(audio: bytes) -> tuple[str, float, bool]:
    """(text, duration in seconds, whether the text was really heard)."""
    heard, duration = _listen(audio)
    text = heard if heard is not None else f"[cfai stand-in transcription of {len(audio)} bytes]"
    return text, duration, heard is not None


def _timed(text: str, duration: float) -> list[dict[str, Any]]:
    said = text.split()
    step = duration / max(1, len(said))
    return [
        {"word": w, "start": round(i * step, 3), "end": round((i + 1) * step, 3)}
        for i, w in enumerate(said)
    ]


# Deepgram's boolean options on the nova-3 model page.
_DEEPGRAM_FLAGS = (
    "detect_language", "punctuate", "smart_format", "diarize", "dictation", "detect_entities",
    "filler_words", "measurements", "mip_opt_out", "multichannel", "numerals", "paragraphs",
    "profanity_filter", "sentiment", "topics", "utterances",
)  # fmt: skip


def _deepgram(spec: ModelSpec, inputs: Mapping[str, Any]) -> AiResult:
    audio = inputs.get("audio")
    if not isinstance(audio, Mapping):
        raise bad_input("audio", "required: {body, contentType} (the binding sends the body raw)")
    content_type = audio.get("contentType")
    if not isinstance(content_type, str) or not content_type:
        raise bad_input("audio.contentType", "required (the audio's media type)")
    body = audio.get("body")
    data = body if isinstance(body, bytes) else b64decode(body, "audio.body")
    if not data:
        raise bad_input("audio.body", "must not be empty")
    for key in _DEEPGRAM_FLAGS:
        opt_bool(inputs, key)
    opt_str(inputs, "mode", "general", choices=("general", "medical", "finance"))
    opt_str(inputs, "language", "en")
    text, duration, heard = _transcript(data)
    words = [{**w, "confidence": 0.99 if heard else 0.5} for w in _timed(text, duration)]
    alternative = {"transcript": text, "confidence": 0.99 if heard else 0.5, "words": words}
    return AiResult.json({"results": {"channels": [{"alternatives": [alternative]}]}})


def run_asr(spec: ModelSpec, inputs: Mapping[str, Any]) -> AiResult:
    if spec.form is Form.DEEPGRAM_ASR:
        return _deepgram(spec, inputs)
    if inputs.get("audio") is None:
        raise bad_input("audio", "required")
    turbo = spec.audio_input is not AudioInput.BYTE_ARRAY
    audio = b64decode(inputs["audio"], "audio") if turbo else byte_array(inputs["audio"], "audio")
    if not audio:
        raise bad_input("audio", "must not be empty")
    language = opt_str(inputs, "language", "en")
    if turbo:
        opt_str(inputs, "task", "transcribe", choices=("transcribe", "translate"))
        opt_bool(inputs, "vad_filter")
        opt_str(inputs, "initial_prompt", "")
        opt_str(inputs, "prefix", "")
        opt_int(inputs, "beam_size", 5, 1)
        for key in ("compression_ratio_threshold", "log_prob_threshold", "no_speech_threshold"):
            opt_num(inputs, key, 0.0, -1e9, 1e9)
    text, duration, heard = _transcript(audio)
    said = text.split()
    timed = _timed(text, duration)
    vtt = f"WEBVTT\n\n{_stamp(0)} --> {_stamp(duration)}\n{text}\n\n"
    if not turbo:
        return AiResult.json({"text": text, "word_count": len(said), "words": timed, "vtt": vtt})
    segment = {
        "start": 0.0,
        "end": round(duration, 3),
        "text": text,
        "temperature": 0.0,
        "avg_logprob": -0.1,
        "compression_ratio": 1.0,
        "no_speech_prob": 0.0 if heard else 0.5,
        "words": timed,
    }
    info = {
        "language": language,
        "language_probability": 1.0,
        "duration": round(duration, 3),
        "duration_after_vad": round(duration, 3),
    }
    result = {
        "text": text,
        "word_count": len(said),
        "segments": [segment],
        "vtt": vtt,
        "transcription_info": info,
    }
    return AiResult.json(result)
