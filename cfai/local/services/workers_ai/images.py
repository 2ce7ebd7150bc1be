"""Text-to-image stand-ins: a seeded gradient with stripes, valid PNG or JPEG at the asked size.

The picture depends only on prompt, seed and size (no seed given: the prompt picks one, so a
repeat is identical, unlike the real models). Sizes and steps follow the model's
`ImageLimits` in the catalog. flux-1-schnell takes no width/height: like the real schema it
ignores them and always paints 1024x1024. Prompts are 1-2048 characters for every model.

Output forms follow the catalog: ``BASE64_IMAGE`` models (flux-1-schnell, lucid-origin)
answer JSON ``{"image": "<base64 JPEG>"}``; ``BINARY_IMAGE`` models answer raw bytes
(SDXL ``image/png``, phoenix ``image/jpeg``).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping
from typing import Any

import numpy as np
from PIL import Image

from cfai.catalog import ImageLimits, ModelSpec, Output

from ._core import (
    AiResult,
    b64decode,
    byte_array,
    digest,
    opt_int,
    opt_num,
    opt_str,
    req_str,
)

MAX_PROMPT_CHARS = 2048
# (min, max, default) guidance of the models whose input schema bounds it: the model pages
# https://developers.cloudflare.com/workers-ai/models/lucid-origin/ and .../phoenix-1.0/.
_GUIDANCE = {
    "@cf/leonardo/lucid-origin": (0.0, 10.0, 4.5),
    "@cf/leonardo/phoenix-1.0": (2.0, 10.0, 2.0),
}


def paint(prompt: str, seed: int, width: int, height: int) -> Image.Image:
    """A deterministic RGB picture: two seeded colours blended diagonally, seeded stripes."""
    d = digest(prompt, str(seed), size=16)
    c0 = np.array(list(d[0:3]), dtype=np.float32)
    c1 = np.array(list(d[3:6]), dtype=np.float32)
    period = 16 + d[6] % 48
    x = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    y = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    t = (x * (0.3 + d[7] / 255) + y * (1.3 - d[7] / 255)) / 1.6
    img = c0 * (1 - t)[..., None] + c1 * t[..., None]
    stripes = ((np.arange(width)[None, :] + np.arange(height)[:, None] * (d[8] % 3)) // period) % 2
    img += (stripes[..., None] * (d[9] % 40)).astype(np.float32)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


def encode(img: Image.Image, content_type: str) -> bytes:
    buf = io.BytesIO()
    if content_type == "image/png":
        img.save(buf, "PNG", compress_level=1)
    else:
        img.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def _size(spec: ModelSpec, lim: ImageLimits, inputs: Mapping[str, Any]) -> tuple[int, int]:
    if not lim.sizable:
        return lim.default_width, lim.default_height
    w = opt_int(inputs, "width", lim.default_width, lim.min_size, lim.max_size)
    h = opt_int(inputs, "height", lim.default_height, lim.min_size, lim.max_size)
    return w, h


def _check(spec: ModelSpec, lim: ImageLimits, inputs: Mapping[str, Any]) -> None:
    fields = (
        (lim.steps_field, "steps")
        if spec.name == "@cf/leonardo/lucid-origin"
        else (lim.steps_field,)
    )
    for field in fields:
        opt_int(inputs, field, lim.default_steps, 1, lim.max_steps)
    lo, hi, default = _GUIDANCE.get(spec.name, (0.0, 1e9, 7.5))
    opt_num(inputs, "guidance", default, lo, hi)
    opt_num(inputs, "strength", 1.0, 0.0, 1.0)
    opt_str(inputs, "negative_prompt", "")
    if inputs.get("image_b64") is not None:
        b64decode(inputs["image_b64"], "image_b64")
    for field in ("image", "mask"):
        if inputs.get(field) is not None:
            byte_array(inputs[field], field)


def run_image(spec: ModelSpec, inputs: Mapping[str, Any]) -> AiResult:
    """Text to image in the model's real output form."""
    lim = spec.image
    assert lim is not None
    prompt = req_str(inputs, "prompt", max_len=MAX_PROMPT_CHARS)
    _check(spec, lim, inputs)
    width, height = _size(spec, lim, inputs)
    seed = opt_int(inputs, "seed", int.from_bytes(digest(prompt, size=4), "little"), 0)
    data = encode(paint(prompt, seed, width, height), spec.content_type)
    if spec.output is Output.BASE64_IMAGE:
        return AiResult.json({"image": base64.b64encode(data).decode()})
    return AiResult(content_type=spec.content_type, body=data)
