"""The emulated Workers AI service: deterministic, honest stand-in models for every model in
`cfai.catalog.CATALOG`, with the real input checks, defaults, output shapes and forms.

One handler per task (`HANDLERS`), each in its own module: `text` (text generation and
vision: `_prompt` reads the inputs, `vision` describes images, `_forms` writes each model's
output form, `gpt_oss` the Responses API), `embeddings`, `images`, `audio` (speech
recognition and text-to-speech), `misc` (translation, classification). `routes` holds the
binding routes workerd's ``env.AI`` calls and the REST surface (``ai/run``,
``ai/models/search``, the OpenAI-compatible ``ai/v1`` in `compat`); `service` the
`WorkersAIService` that ties them together and answers the models a declaration vouches
for besides the catalog (setting ``models``).

Example::

    ai = WorkersAIService(EmulatorContext(Path(".cfai"), account_id="0" * 32, api_token="t"))
    out = ai.run("@cf/baai/bge-small-en-v1.5", {"text": ["hello"]})
    out.result["shape"]  # [1, 384]
"""

from __future__ import annotations

from ._core import (
    AiError,
    AiResult,
    LocalChunks,
    Quick,
    Runner,
    bad_input,
    on_loop,
    stream_response,
)
from .compat import OPENAI_COMPAT, OpenAICall
from .routes import RUN_BODY
from .service import HANDLERS, WorkersAIService, WorkersAISettings

__all__ = [
    "HANDLERS",
    "OPENAI_COMPAT",
    "RUN_BODY",
    "AiError",
    "AiResult",
    "LocalChunks",
    "OpenAICall",
    "Quick",
    "Runner",
    "WorkersAIService",
    "WorkersAISettings",
    "bad_input",
    "on_loop",
    "stream_response",
]
