"""Embedding, image, speech, translation and classification models.

Each entry cites its model page; prices are Cloudflare's published 2025 unit prices
(https://developers.cloudflare.com/workers-ai/platform/pricing/), rate limits the
requests per minute of https://developers.cloudflare.com/workers-ai/platform/limits/
(embeddings 3000, bge-large 1500; images, speech recognition and synthesis 720).
"""

from __future__ import annotations

from cfai.catalog._spec import AudioInput, Form, ImageLimits, ModelSpec, Output, Price, Task

__all__ = ["MEDIA_MODELS"]

_PAGE = "https://developers.cloudflare.com/workers-ai/models/"
_MEDIA_RATE = 720
# Deepgram Aura voices on the aura-2 model pages ("speaker" enum, default first).
_AURA_EN = (
    "luna", "amalthea", "andromeda", "apollo", "arcas", "aries", "asteria", "athena", "atlas",
    "aurora", "callista", "cora", "cordelia", "delia", "draco", "electra", "harmonia", "helena",
    "hera", "hermes", "hyperion", "iris", "janus", "juno", "jupiter", "mars", "minerva",
    "neptune", "odysseus", "ophelia", "orion", "orpheus", "pandora", "phoebe", "pluto",
    "saturn", "thalia", "theia", "vesta", "zeus",
)  # fmt: skip
_AURA_ES = (
    "aquila", "sirio", "nestor", "carina", "celeste", "alvaro", "diana", "selena", "estrella",
    "javier",
)  # fmt: skip
# Deepgram's Aura REST API takes at most 2,000 characters a request
# (https://developers.deepgram.com/docs/text-to-speech).
_AURA_MAX_CHARS = 2000


def _page(name: str) -> str:
    return _PAGE + name.rsplit("/", 1)[1] + "/"


def _bge(name: str, dims: int, price: float, rate: int = 3000) -> ModelSpec:
    return ModelSpec(
        name=name,
        task=Task.TEXT_EMBEDDINGS,
        form=Form.EMBEDDINGS,
        dimensions=dims,
        max_batch=100,
        max_input_tokens=512,
        prices=(Price("input_tokens", price),),
        poolings=("mean", "cls"),
        rate_limit=rate,
        source=_page(name),
    )


def _aura(name: str, voices: tuple[str, ...]) -> ModelSpec:
    return ModelSpec(
        name=name,
        task=Task.TEXT_TO_SPEECH,
        form=Form.DEEPGRAM_TTS,
        output=Output.BINARY_AUDIO,
        content_type="audio/mpeg",
        prices=(Price("characters", 0.030, per=1000),),
        voices=voices,
        max_chars=_AURA_MAX_CHARS,
        rate_limit=_MEDIA_RATE,
        source=_page(name),
    )


def _image(
    name: str, output: Output, content_type: str, limits: ImageLimits, prices: tuple[Price, ...]
) -> ModelSpec:
    return ModelSpec(
        name=name,
        task=Task.TEXT_TO_IMAGE,
        form=Form.TEXT_TO_IMAGE,
        output=output,
        content_type=content_type,
        image=limits,
        prices=prices,
        rate_limit=_MEDIA_RATE,
        beta=not prices,
        source=_page(name),
    )


MEDIA_MODELS: tuple[ModelSpec, ...] = (
    # Embeddings
    _bge("@cf/baai/bge-small-en-v1.5", 384, 0.020),
    _bge("@cf/baai/bge-base-en-v1.5", 768, 0.067),
    _bge("@cf/baai/bge-large-en-v1.5", 1024, 0.204, rate=1500),
    # Cloudflare's page publishes no dimensions: 768 is Google's model card
    # (https://ai.google.dev/gemma/docs/embeddinggemma).
    ModelSpec(
        name="@cf/google/embeddinggemma-300m",
        task=Task.TEXT_EMBEDDINGS,
        form=Form.EMBEDDINGS,
        dimensions=768,
        max_batch=100,
        max_input_tokens=2048,
        prices=(Price("input_tokens", 0.012),),
        rate_limit=3000,
        source=_page("@cf/google/embeddinggemma-300m"),
    ),
    # 1024 dimensions per Qwen's model card (https://huggingface.co/Qwen/Qwen3-Embedding-0.6B);
    # some third-party tables say 768, which that card contradicts.
    ModelSpec(
        name="@cf/qwen/qwen3-embedding-0.6b",
        task=Task.TEXT_EMBEDDINGS,
        form=Form.QWEN3_EMBEDDINGS,
        dimensions=1024,
        max_batch=32,
        max_input_tokens=8192,
        prices=(Price("input_tokens", 0.012),),
        rate_limit=3000,
        source=_page("@cf/qwen/qwen3-embedding-0.6b"),
    ),
    # Text to image (per-step prices from the pricing page; tiles are 512x512)
    _image(
        "@cf/black-forest-labs/flux-1-schnell",
        Output.BASE64_IMAGE,
        "image/jpeg",
        ImageLimits(1024, 1024, 1024, 1024, 4, 8, sizable=False, steps_field="steps"),
        (Price("tiles", 0.0000528, per=1), Price("steps", 0.0001056, per=1)),
    ),
    _image(
        "@cf/stabilityai/stable-diffusion-xl-base-1.0",
        Output.BINARY_IMAGE,
        "image/png",
        ImageLimits(256, 2048, 1024, 1024, 20, 20),
        (),
    ),
    _image(
        "@cf/leonardo/lucid-origin",
        Output.BASE64_IMAGE,
        "image/jpeg",
        ImageLimits(64, 2500, 1120, 1120, 20, 40),
        (Price("tiles", 0.006996, per=1), Price("steps", 0.000132, per=1)),
    ),
    _image(
        "@cf/leonardo/phoenix-1.0",
        Output.BINARY_IMAGE,
        "image/jpeg",
        ImageLimits(64, 2048, 1024, 1024, 25, 50),
        (Price("tiles", 0.005830, per=1), Price("steps", 0.00011, per=1)),
    ),
    # Speech recognition
    ModelSpec(
        name="@cf/openai/whisper-large-v3-turbo",
        task=Task.SPEECH_RECOGNITION,
        form=Form.WHISPER,
        audio_input=AudioInput.BASE64,
        prices=(Price("audio_minutes", 0.0005, per=1),),
        rate_limit=_MEDIA_RATE,
        source=_page("@cf/openai/whisper-large-v3-turbo"),
    ),
    ModelSpec(
        name="@cf/deepgram/nova-3",
        task=Task.SPEECH_RECOGNITION,
        form=Form.DEEPGRAM_ASR,
        audio_input=AudioInput.BINARY,
        prices=(Price("audio_minutes", 0.0052, per=1),),
        rate_limit=_MEDIA_RATE,
        source=_page("@cf/deepgram/nova-3"),
    ),
    ModelSpec(
        name="@cf/openai/whisper",
        task=Task.SPEECH_RECOGNITION,
        form=Form.WHISPER,
        audio_input=AudioInput.BYTE_ARRAY,
        prices=(Price("audio_minutes", 0.00045, per=1),),
        rate_limit=_MEDIA_RATE,
        source=_page("@cf/openai/whisper"),
    ),
    # Text to speech
    _aura("@cf/deepgram/aura-2-en", _AURA_EN),
    _aura("@cf/deepgram/aura-2-es", _AURA_ES),
    # Translation and classification
    ModelSpec(
        name="@cf/meta/m2m100-1.2b",
        task=Task.TRANSLATION,
        form=Form.TRANSLATION,
        prices=(Price("input_tokens", 0.342), Price("output_tokens", 0.342)),
        rate_limit=_MEDIA_RATE,
        source=_page("@cf/meta/m2m100-1.2b"),
    ),
    ModelSpec(
        name="@cf/huggingface/distilbert-sst-2-int8",
        task=Task.TEXT_CLASSIFICATION,
        form=Form.CLASSIFICATION,
        prices=(Price("input_tokens", 0.026),),
        rate_limit=2000,
        source=_page("@cf/huggingface/distilbert-sst-2-int8"),
    ),
)
