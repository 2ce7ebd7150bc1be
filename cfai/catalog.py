"""Catalog of Workers AI models: task, output form, embedding dimensions, limits, prices.

One source of truth for the config cross-checks (a rag worker's embedding model must be a
`text-embeddings` model whose dimensions equal its index's), the renderer (how a worker
reads a model's output), the emulator's stand-in models (which schema to honour) and cost
estimates. Sources: each model's page under https://developers.cloudflare.com/workers-ai/models/
(task, inputs, outputs, limits) and https://developers.cloudflare.com/workers-ai/platform/pricing/
(prices, snapshots in USD).

Example::

    >>> from cfai.catalog import get_model, Task
    >>> get_model("@cf/baai/bge-base-en-v1.5").dimensions
    768
    >>> get_model("@cf/meta/llama-3.1-8b-instruct").task is Task.TEXT_GENERATION
    True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

__all__ = [
    "CATALOG",
    "FREE_NEURONS_PER_DAY",
    "NEURON_PRICE_USD",
    "ImageLimits",
    "ModelSpec",
    "Output",
    "Price",
    "Task",
    "get_model",
    "models_for",
]

# Workers AI bills $0.011 per 1,000 neurons; 10,000 neurons a day are free (reset 00:00 UTC).
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


class Output(StrEnum):
    """How a model's result reaches `env.AI.run`'s caller."""

    JSON = "json"  # a parsed object (text generation also streams SSE when asked)
    BASE64_IMAGE = "base64_image"  # JSON {"image": "<base64>"}
    BINARY_IMAGE = "binary_image"  # raw bytes, a ReadableStream in the Worker
    BINARY_AUDIO = "binary_audio"


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


@dataclass(frozen=True)
class ModelSpec:
    """One Workers AI model as cfai knows it."""

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


def _text(name: str, price_in: float, price_out: float, context: int) -> ModelSpec:
    return ModelSpec(
        name=name,
        task=Task.TEXT_GENERATION,
        streams=True,
        context_window=context,
        prices=(Price("input_tokens", price_in), Price("output_tokens", price_out)),
    )


def _bge(name: str, dims: int, price: float) -> ModelSpec:
    return ModelSpec(
        name=name,
        task=Task.TEXT_EMBEDDINGS,
        dimensions=dims,
        max_batch=100,
        max_input_tokens=512,
        prices=(Price("input_tokens", price),),
    )


_MODELS: tuple[ModelSpec, ...] = (
    # Text generation
    _text("@cf/meta/llama-3.1-8b-instruct", 0.282, 0.827, 7968),
    _text("@cf/meta/llama-3.1-8b-instruct-fast", 0.045, 0.384, 128000),
    _text("@cf/meta/llama-3.2-3b-instruct", 0.051, 0.335, 128000),
    _text("@cf/meta/llama-3.3-70b-instruct-fp8-fast", 0.293, 2.253, 24000),
    _text("@cf/mistral/mistral-7b-instruct-v0.1", 0.110, 0.190, 2824),
    _text("@cf/qwen/qwen2.5-coder-32b-instruct", 0.660, 1.000, 32768),
    # Embeddings
    _bge("@cf/baai/bge-small-en-v1.5", 384, 0.020),
    _bge("@cf/baai/bge-base-en-v1.5", 768, 0.067),
    _bge("@cf/baai/bge-large-en-v1.5", 1024, 0.204),
    ModelSpec(
        name="@cf/google/embeddinggemma-300m",
        task=Task.TEXT_EMBEDDINGS,
        dimensions=768,
        max_batch=100,
        max_input_tokens=2048,
        prices=(Price("input_tokens", 0.012),),
    ),
    ModelSpec(
        name="@cf/qwen/qwen3-embedding-0.6b",
        task=Task.TEXT_EMBEDDINGS,
        dimensions=1024,
        max_batch=32,
        max_input_tokens=8192,
        prices=(Price("input_tokens", 0.012),),
    ),
    # Text to image
    ModelSpec(
        name="@cf/black-forest-labs/flux-1-schnell",
        task=Task.TEXT_TO_IMAGE,
        output=Output.BASE64_IMAGE,
        content_type="image/jpeg",
        image=ImageLimits(
            min_size=1024,
            max_size=1024,
            default_width=1024,
            default_height=1024,
            default_steps=4,
            max_steps=8,
            sizable=False,
            steps_field="steps",
        ),
        prices=(Price("tiles", 0.0000528, per=1), Price("steps", 0.0001056, per=1)),
    ),
    ModelSpec(
        name="@cf/stabilityai/stable-diffusion-xl-base-1.0",
        task=Task.TEXT_TO_IMAGE,
        output=Output.BINARY_IMAGE,
        content_type="image/png",
        image=ImageLimits(
            min_size=256,
            max_size=2048,
            default_width=1024,
            default_height=1024,
            default_steps=20,
            max_steps=20,
        ),
        beta=True,
    ),
    ModelSpec(
        name="@cf/leonardo/lucid-origin",
        task=Task.TEXT_TO_IMAGE,
        output=Output.BASE64_IMAGE,
        content_type="image/jpeg",
        image=ImageLimits(
            min_size=64,
            max_size=2500,
            default_width=1120,
            default_height=1120,
            default_steps=20,
            max_steps=40,
        ),
        prices=(Price("tiles", 0.007, per=1), Price("steps", 0.00013, per=1)),
    ),
    ModelSpec(
        name="@cf/leonardo/phoenix-1.0",
        task=Task.TEXT_TO_IMAGE,
        output=Output.BINARY_IMAGE,
        content_type="image/jpeg",
        image=ImageLimits(
            min_size=64,
            max_size=2048,
            default_width=1024,
            default_height=1024,
            default_steps=25,
            max_steps=50,
        ),
        prices=(Price("tiles", 0.0058, per=1), Price("steps", 0.00011, per=1)),
    ),
    # Vision
    ModelSpec(
        name="@cf/meta/llama-3.2-11b-vision-instruct",
        task=Task.IMAGE_TO_TEXT,
        streams=True,
        context_window=128000,
        prices=(Price("input_tokens", 0.049), Price("output_tokens", 0.676)),
    ),
    # Speech
    ModelSpec(
        name="@cf/openai/whisper-large-v3-turbo",
        task=Task.SPEECH_RECOGNITION,
        prices=(Price("audio_minutes", 0.00051, per=1),),
    ),
    ModelSpec(
        name="@cf/openai/whisper",
        task=Task.SPEECH_RECOGNITION,
        prices=(Price("audio_minutes", 0.00045, per=1),),
    ),
    ModelSpec(
        name="@cf/deepgram/aura-2-en",
        task=Task.TEXT_TO_SPEECH,
        output=Output.BINARY_AUDIO,
        content_type="audio/mpeg",
        prices=(Price("characters", 0.03, per=1000),),
    ),
    ModelSpec(
        name="@cf/deepgram/aura-2-es",
        task=Task.TEXT_TO_SPEECH,
        output=Output.BINARY_AUDIO,
        content_type="audio/mpeg",
        prices=(Price("characters", 0.03, per=1000),),
    ),
    # Translation and classification
    ModelSpec(
        name="@cf/meta/m2m100-1.2b",
        task=Task.TRANSLATION,
        prices=(Price("input_tokens", 0.342), Price("output_tokens", 0.342)),
    ),
    ModelSpec(
        name="@cf/huggingface/distilbert-sst-2-int8",
        task=Task.TEXT_CLASSIFICATION,
        prices=(Price("input_tokens", 0.026),),
    ),
)

CATALOG: dict[str, ModelSpec] = {m.name: m for m in _MODELS}


def get_model(name: str) -> ModelSpec:
    """The catalog entry for `name`; KeyError names the known models of the closest task."""
    try:
        return CATALOG[name]
    except KeyError:
        raise KeyError(f"unknown Workers AI model {name!r}") from None


def models_for(task: Task) -> list[str]:
    """Names of every catalog model of `task`, sorted."""
    return sorted(m.name for m in _MODELS if m.task is task)
