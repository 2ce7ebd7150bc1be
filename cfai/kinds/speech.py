"""The speech kind: speech to text and text to speech, native and OpenAI-compatible.

Routes: ``POST /transcribe`` (the raw audio body, or multipart with a ``file``) answers
``{text, segments?, language?, duration?}``; ``POST /speak`` (``{text, voice?}``) answers
``audio/mpeg``; ``POST /v1/audio/transcriptions`` and ``POST /v1/audio/speech`` are OpenAI's
(``client.audio.transcriptions.create`` / ``client.audio.speech.create``). A Worker declares
``stt_model``, ``tts_model`` or both; a route whose model is not declared answers 404.

Limits come from the models' documented ones: audio up to 25 MiB by default (the OpenAI
transcription API's file limit, which its clients keep to), text up to the TTS model's
characters per request (Deepgram Aura: 2,000). A model whose audio travels as the request
body (nova-3) cannot go through an AI Gateway: workerd's AI binding refuses stream inputs
with a gateway (src/cloudflare/internal/ai-api.ts, "AI Gateway does not support
ReadableStreams yet").
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import MappingProxyType
from typing import Any, Literal

from pydantic import Field, model_validator

from cfai.catalog import CATALOG, AudioInput, Catalog, ModelSpec, Task
from cfai.errors import Problem
from cfai.kinds._support import (
    TASK_FIELD_HELP,
    declared_task,
    model_problems,
    render_spec,
    unknown,
)
from cfai.kinds.base import (
    HEALTH,
    Binding,
    CheckContext,
    Example,
    Kind,
    KindCost,
    ModelUse,
    RenderContext,
    Rendering,
    Route,
    Selection,
    WorkerConfig,
)
from cfai.kinds.pricing import CHARS_PER_TOKEN, DEFAULT_USER_TOKENS, Traffic, priced
from cfai.outputs import Outputs, WorkerOutput

__all__ = ["KIND", "SpeechKind", "SpeechWorkerConfig"]

#: OpenAI's transcription API takes files up to 25 MB; its clients keep to it.
DEFAULT_AUDIO_BYTES = 25 * 1_048_576
#: Characters of text a request may ask to speak when the model publishes no limit.
DEFAULT_TEXT_CHARS = 2000


class SpeechWorkerConfig(WorkerConfig):
    """A speech Worker: `/transcribe`, `/speak` and OpenAI's `/v1/audio/*`."""

    kind: Literal["speech"] = "speech"
    stt_model: str | None = Field(None, description="speech recognition model (transcribe)")
    tts_model: str | None = Field(None, description="text-to-speech model (speak)")
    task: Task | None = Field(None, description=TASK_FIELD_HELP)
    gateway: str | None = None
    voice: str | None = Field(None, description="default voice (the TTS model's `speaker`)")
    max_request_bytes: int = Field(
        DEFAULT_AUDIO_BYTES, ge=1024, le=100 * 1_048_576, description="audio upload limit"
    )
    max_text_chars: int = Field(DEFAULT_TEXT_CHARS, ge=1, le=100_000)

    @model_validator(mode="after")
    def _some_model(self) -> SpeechWorkerConfig:
        if self.stt_model is None and self.tts_model is None:
            raise ValueError("declare stt_model, tts_model or both")
        return self


def _has(task: Task) -> Selection:
    def select(worker: WorkerOutput, outputs: Outputs) -> bool:
        return any((m := CATALOG.get(n)) is not None and m.task is task for n in worker.models)

    return select


def _every(worker: WorkerOutput, outputs: Outputs) -> bool:
    return True


def _both(worker: WorkerOutput, outputs: Outputs) -> bool:
    # Transcribes and speaks: the contract makes known audio with the Worker's own /speak.
    return all(sel(worker, outputs) for sel in (_STT, _TTS))


_STT, _TTS = _has(Task.SPEECH_RECOGNITION), _has(Task.TEXT_TO_SPEECH)
_AUDIO = "--data-binary @/tmp/cfai-speech.mp3 -H 'content-type: audio/mpeg'"


class SpeechKind(Kind[SpeechWorkerConfig]):
    name = "speech"
    playground = True
    config = SpeechWorkerConfig
    template = "workers/speech.js.j2"
    routes = (
        HEALTH,
        Route("POST", "/speak", summary="{text, voice?} -> audio/mpeg"),
        Route("POST", "/transcribe", summary="audio body or multipart file -> {text, segments?}"),
        Route("POST", "/v1/audio/speech", summary="OpenAI-compatible text to speech"),
        Route("POST", "/v1/audio/transcriptions", summary="OpenAI-compatible transcription"),
    )
    main_route = routes[1]
    # The first writes the audio the others read (under /tmp, never the working directory).
    example = Example("POST", "/speak", {"text": "Hello from cfai."}, " -o /tmp/cfai-speech.mp3")
    examples = (
        example,
        Example("POST", "/transcribe", data=_AUDIO),
        Example(
            "POST",
            "/v1/audio/speech",
            {"model": "tts", "input": "Hello again.", "voice": "luna"},
            " -o /tmp/cfai-speech-openai.mp3",
        ),
        Example(
            "POST", "/v1/audio/transcriptions", data="-F file=@/tmp/cfai-speech.mp3 -F model=stt"
        ),
    )
    checks = ("test_speech.py", "test_playground.py")
    selections = MappingProxyType(
        {
            "speech_worker": _every,
            "stt_worker": _STT,
            "tts_worker": _TTS,
            "voice_worker": _both,
        }
    )

    def model_uses(self, worker: SpeechWorkerConfig) -> tuple[ModelUse, ...]:
        uses = []
        if worker.stt_model:
            uses.append(
                ModelUse("stt_model", worker.stt_model, Task.SPEECH_RECOGNITION, "a speech worker")
            )
        if worker.tts_model:
            uses.append(
                ModelUse("tts_model", worker.tts_model, Task.TEXT_TO_SPEECH, "a speech worker")
            )
        return tuple(uses)

    def problems(
        self, key: str, worker: SpeechWorkerConfig, ctx: CheckContext
    ) -> Iterator[Problem]:
        base = f"workers.{key}"
        if worker.gateway and worker.gateway not in ctx.gateways:
            yield unknown(f"{base}.gateway", "gateway", worker.gateway, ctx.gateways)
        specs: dict[str, ModelSpec] = {}
        for use in self.model_uses(worker):
            spec, found = model_problems(
                f"{base}.{use.setting}",
                use.name,
                use.task,
                use.role,
                ctx.catalog,
                declared_task(worker),
            )
            yield from found
            if spec is not None:
                specs[use.setting] = spec
        stt, tts = specs.get("stt_model"), specs.get("tts_model")
        if stt and worker.gateway and stt.audio_input is AudioInput.BINARY:
            yield Problem(
                f"{base}.gateway",
                f"{stt.name} takes its audio as the request body, which the AI binding cannot "
                "send through an AI Gateway; remove gateway or use a base64-audio model "
                "(@cf/openai/whisper-large-v3-turbo)",
            )
        if tts and tts.max_chars and worker.max_text_chars > tts.max_chars:
            yield Problem(
                f"{base}.max_text_chars",
                f"{tts.name} speaks at most {tts.max_chars} characters a request",
            )
        if worker.voice is not None and (
            tts is None or (tts.voices and worker.voice not in tts.voices)
        ):
            choices = ", ".join(tts.voices) if tts and tts.voices else "declare tts_model first"
            yield Problem(f"{base}.voice", f"unknown voice {worker.voice!r} ({choices})")

    def render(self, key: str, worker: SpeechWorkerConfig, ctx: RenderContext) -> Rendering:
        bindings = [Binding("ai", "AI")]
        traits: dict[str, object] = {}
        models: list[str] = []
        for use in self.model_uses(worker):
            spec = render_spec(use, key, worker, ctx.catalog)
            models.append(use.name)
            if use.task is Task.SPEECH_RECOGNITION:
                bindings.append(Binding("plain_text", "STT_MODEL", text=use.name))
                traits["stt"] = {"form": spec.form.value, "input": (spec.audio_input or AudioInput.BASE64).value}  # fmt: skip
            else:
                bindings.append(Binding("plain_text", "TTS_MODEL", text=use.name))
                voices = list(spec.voices)
                traits["tts"] = {"voices": voices, "voice": worker.voice or (voices[0] if voices else None)}  # fmt: skip
        # What the models take travels as a var like the models' names: every stack runs the
        # same code.
        bindings.append(Binding("plain_text", "SPEECH_TRAITS", text=json.dumps(traits, sort_keys=True)))  # fmt: skip
        gateway = ctx.physical_name(worker.gateway) if worker.gateway else None
        if gateway:
            bindings.append(Binding("plain_text", "GATEWAY_ID", text=gateway))
        return Rendering(
            bindings=tuple(bindings),
            models=tuple(models),
            gateway=gateway,
            settings={"MAX_TEXT_CHARS": worker.max_text_chars},
        )

    def output_fields(self, worker: SpeechWorkerConfig) -> dict[str, Any]:
        # The contract suite sends one character more than the Worker's limit (a setting:
        # a var, not in the module it could read).
        return {"max_text_chars": worker.max_text_chars} if worker.tts_model else {}

    def cost(
        self,
        key: str,
        worker: SpeechWorkerConfig,
        traffic: Traffic,
        catalog: Catalog | None = None,
    ) -> KindCost:
        catalog = catalog or CATALOG
        n = traffic.requests_per_day
        chars = (traffic.tokens_out or DEFAULT_USER_TOKENS) * CHARS_PER_TOKEN
        items = []
        said = []
        if worker.stt_model:
            items += priced(worker.stt_model, {"audio_minutes": n}, catalog)
            said.append(f"transcribes 1 audio minute with {worker.stt_model}")
        if worker.tts_model:
            items += priced(worker.tts_model, {"characters": n * chars}, catalog)
            said.append(f"speaks {chars} characters with {worker.tts_model}")
        return KindCost(tuple(items), (f"{key} (speech): each request " + " and ".join(said),))


KIND = SpeechKind()
