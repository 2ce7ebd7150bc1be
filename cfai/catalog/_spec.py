"""What cfai knows of one Workers AI model: `ModelSpec` and the small types it is made of.

The enums name the input/output *forms* Cloudflare's models come in, so that the renderer,
the emulator and the CLI dispatch on a form, never on a model's name.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum

__all__ = [
    "FREE_NEURONS_PER_DAY",
    "NEURON_PRICE_USD",
    "TASK_NAMES",
    "AudioInput",
    "Form",
    "ImageLimits",
    "ModelSpec",
    "Output",
    "Price",
    "Reasoning",
    "Task",
    "ToolShape",
    "Vision",
]

# Workers AI bills $0.011 per 1,000 neurons; 10,000 neurons a day are free (reset 00:00 UTC):
# https://developers.cloudflare.com/workers-ai/platform/pricing/
NEURON_PRICE_USD = 0.011 / 1000
FREE_NEURONS_PER_DAY = 10_000


class Task(StrEnum):
    TEXT_GENERATION = "text-generation"
    TEXT_EMBEDDINGS = "text-embeddings"
    TEXT_TO_IMAGE = "text-to-image"
    IMAGE_TO_TEXT = "image-to-text"
    SPEECH_RECOGNITION = "automatic-speech-recognition"
    TEXT_TO_SPEECH = "text-to-speech"
    TRANSLATION = "translation"
    TEXT_CLASSIFICATION = "text-classification"


#: The task names Cloudflare's model search API uses (``task.name``).
TASK_NAMES: dict[Task, str] = {
    Task.TEXT_GENERATION: "Text Generation",
    Task.TEXT_EMBEDDINGS: "Text Embeddings",
    Task.TEXT_TO_IMAGE: "Text-to-Image",
    Task.IMAGE_TO_TEXT: "Image-to-Text",
    Task.SPEECH_RECOGNITION: "Automatic Speech Recognition",
    Task.TEXT_TO_SPEECH: "Text-to-Speech",
    Task.TRANSLATION: "Translation",
    Task.TEXT_CLASSIFICATION: "Text Classification",
}


class Output(StrEnum):
    """How a model's result reaches `env.AI.run`'s caller."""

    JSON = "json"  # a parsed object (text generation also streams SSE when asked)
    BASE64_IMAGE = "base64_image"  # JSON {"image": "<base64>"}
    BINARY_IMAGE = "binary_image"  # raw bytes, a ReadableStream in the Worker
    BINARY_AUDIO = "binary_audio"


class Form(StrEnum):
    """The input/output form of a model (its schema family on its model page)."""

    NATIVE = "native"  # prompt | messages -> {response, tool_calls?, usage}
    CHAT_COMPLETION = (
        "chat-completion"  # messages -> OpenAI chat.completion; prompt -> text_completion
    )
    GPT_OSS = "gpt-oss"  # Responses API input | messages | prompt, each with its own output
    EMBEDDINGS = "embeddings"  # text -> {shape, data, pooling?}
    QWEN3_EMBEDDINGS = "qwen3-embeddings"  # queries | documents | text -> {shape, data}
    TEXT_TO_IMAGE = "text-to-image"  # prompt -> {image: base64} or image bytes (see Output)
    WHISPER = "whisper"  # audio -> {text, word_count, segments?, vtt, ...}
    DEEPGRAM_ASR = "deepgram-asr"  # binary audio body + content type -> Deepgram results
    DEEPGRAM_TTS = "deepgram-tts"  # text (+ speaker) -> audio/mpeg
    TRANSLATION = "translation"  # text, target_lang -> {translated_text}
    CLASSIFICATION = "classification"  # text -> [{label, score}]


#: One line per form: what goes in and what comes out (`cfai models` shows it).
FORM_IO: dict[Form, str] = {
    Form.NATIVE: "prompt|messages -> {response, tool_calls?, usage}",
    Form.CHAT_COMPLETION: "messages -> chat.completion; prompt -> text_completion",
    Form.GPT_OSS: "input+instructions -> response; messages -> chat.completion",
    Form.EMBEDDINGS: "text -> {shape, data, pooling}",
    Form.QWEN3_EMBEDDINGS: "queries|documents|text -> {shape, data}",
    Form.TEXT_TO_IMAGE: "prompt -> image",
    Form.WHISPER: "audio -> {text, word_count, segments, vtt}",
    Form.DEEPGRAM_ASR: "audio body -> {results.channels[].alternatives[]}",
    Form.DEEPGRAM_TTS: "text -> audio/mpeg",
    Form.TRANSLATION: "text, target_lang -> {translated_text}",
    Form.CLASSIFICATION: "text -> [{label, score}]",
}


class ToolShape(StrEnum):
    """How a model answers a tool call (``tool_calls`` items)."""

    NAME_ARGUMENTS = "name-arguments"  # {name, arguments: {...}} (Llama 3.x native)
    NESTED_OBJECT = "nested-object"  # {id, type: "function", function: {name, arguments: {...}}}
    OPENAI = "openai"  # {id, type: "function", function: {name, arguments: "<JSON text>"}}


class Reasoning(StrEnum):
    """Where a reasoning model puts its reasoning."""

    NONE = "none"
    THINK_TAG = "think-tag"  # inline in `response`, ended by "</think>" (no opening tag)
    REASONING_CONTENT = "reasoning-content"  # message.reasoning_content / delta.reasoning_content


class Vision(StrEnum):
    """How a model takes an image."""

    NONE = "none"
    IMAGE_FIELD = "image-field"  # `image`: uint8 array or base64 (llama-3.2-11b-vision)
    CONTENT_PARTS = "content-parts"  # {type: image_url, image_url: {url: "data:..."}} parts


class AudioInput(StrEnum):
    """How a speech recognition model takes its audio."""

    BASE64 = "base64"  # `audio`: a base64 string (whisper-large-v3-turbo)
    BYTE_ARRAY = "byte-array"  # `audio`: a uint8 array (whisper)
    BINARY = "binary"  # `audio: {body, contentType}` -> the request body (nova-3)


@dataclass(frozen=True)
class Price:
    """Published price: `usd` per `per` units of `unit` (tokens, images, steps, ...)."""

    unit: str
    usd: float
    per: int = 1_000_000


@dataclass(frozen=True)
class ImageLimits:
    """Size and step limits of a text-to-image model. `sizable` is False when the model
    takes no width/height (its output size is fixed at `default_width` x `default_height`)."""

    min_size: int
    max_size: int
    default_width: int
    default_height: int
    default_steps: int
    max_steps: int
    sizable: bool = True
    steps_field: str = "num_steps"


#: Image limits assumed for a text-to-image model cfai does not know (open world).
GENERIC_IMAGE = ImageLimits(256, 2048, 1024, 1024, 20, 50)


@dataclass(frozen=True)
class ModelSpec:
    """One Workers AI model as cfai knows it.

    `source` is the public page the entry was taken from; `rate_limit` is requests per
    minute; `known` is False for a model the catalog does not list that a declaration
    vouched for by naming its task (its other fields are conservative defaults).
    """

    name: str
    task: Task
    output: Output = Output.JSON
    content_type: str = "application/json"
    streams: bool = False
    dimensions: int | None = None  # embeddings only
    max_batch: int | None = None  # embeddings: texts per call
    max_input_tokens: int | None = None
    context_window: int | None = None  # text generation
    default_max_tokens: int = 256
    image: ImageLimits | None = None
    prices: tuple[Price, ...] = field(default_factory=tuple)
    beta: bool = False
    form: Form = Form.NATIVE
    tools: bool = False
    tool_shape: ToolShape = ToolShape.NAME_ARGUMENTS
    vision: Vision = Vision.NONE
    json_mode: bool = False
    reasoning: Reasoning = Reasoning.NONE
    rate_limit: int | None = None
    audio_input: AudioInput | None = None
    poolings: tuple[str, ...] = ()
    voices: tuple[str, ...] = ()
    max_chars: int | None = None  # text-to-speech: characters per request
    source: str = ""
    description: str = ""
    known: bool = True

    @property
    def io(self) -> str:
        """What goes in and what comes out, in one line."""
        return FORM_IO[self.form]

    @property
    def capabilities(self) -> tuple[str, ...]:
        """The capability words `cfai models` lists: streaming, tools, vision, json, reasoning."""
        words = [
            ("streaming", self.streams),
            ("tools", self.tools),
            ("vision", self.vision is not Vision.NONE),
            ("json", self.json_mode),
            ("reasoning", self.reasoning is not Reasoning.NONE),
            ("beta", self.beta),
        ]
        return tuple(word for word, on in words if on)

    @classmethod
    def declared(cls, name: str, task: Task, *, dimensions: int | None = None) -> ModelSpec:
        """A model the catalog does not list, vouched for by a declaration naming its task:
        the task's usual form, no limits cfai cannot know, no price."""
        base = cls(name=name, task=task, known=False, source="declared task (not in the catalog)")
        if task is Task.TEXT_GENERATION:
            return replace(base, streams=True)
        if task is Task.TEXT_EMBEDDINGS:
            return replace(base, form=Form.EMBEDDINGS, dimensions=dimensions, max_batch=100)
        if task is Task.TEXT_TO_IMAGE:
            return replace(
                base,
                form=Form.TEXT_TO_IMAGE,
                output=Output.BINARY_IMAGE,
                content_type="image/png",
                image=GENERIC_IMAGE,
            )
        if task is Task.SPEECH_RECOGNITION:
            return replace(base, form=Form.WHISPER, audio_input=AudioInput.BASE64)
        if task is Task.TEXT_TO_SPEECH:
            return replace(
                base,
                form=Form.DEEPGRAM_TTS,
                output=Output.BINARY_AUDIO,
                content_type="audio/mpeg",
            )
        if task is Task.TRANSLATION:
            return replace(base, form=Form.TRANSLATION)
        if task is Task.TEXT_CLASSIFICATION:
            return replace(base, form=Form.CLASSIFICATION)
        return replace(base, vision=Vision.IMAGE_FIELD, streams=True)  # image-to-text
