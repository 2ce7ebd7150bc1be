"""What a vision stand-in "sees": a description computed from the image's bytes.

The image is decoded with Pillow (PNG, JPEG, GIF, WebP, ...): the description names its
format, size, dominant colour and whether its top or bottom half is lighter, so two
different images get two different descriptions and the same image always the same one.
Bytes that do not decode as an image get the model's invalid-data error (5004, "Invalid
data type for base64 input", https://developers.cloudflare.com/workers-ai/platform/errors/).
"""

from __future__ import annotations

import io
import warnings

from PIL import Image, UnidentifiedImageError

from ._core import AiError

# Beyond this many pixels Pillow would decode a decompression bomb; no real photo is larger.
MAX_PIXELS = 40_000_000
_COLOURS = {
    "black": (0, 0, 0), "white": (255, 255, 255), "grey": (128, 128, 128),
    "red": (200, 30, 30), "orange": (240, 140, 20), "yellow": (235, 220, 40),
    "green": (40, 160, 60), "teal": (20, 150, 150), "blue": (30, 80, 210),
    "purple": (130, 50, 170), "pink": (240, 130, 180), "brown": (120, 75, 35),
}  # fmt: skip


def invalid_image(field: str, why: str) -> AiError:
    return AiError(400, 5004, f"Invalid data type for base64 input: {field}: {why}")


def _colour_name(rgb: tuple[int, int, int]) -> str:
    return min(
        _COLOURS, key=lambda n: sum((a - b) ** 2 for a, b in zip(_COLOURS[n], rgb, strict=True))
    )


def describe(data: bytes, field: str = "image") -> str:
    """One sentence about the image in `data`; `invalid_image` when it is not one."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            width, height = img.size
            if width * height > MAX_PIXELS:
                raise invalid_image(field, f"{width}x{height} pixels is too large an image")
            fmt = img.format or "image"
            small = img.convert("RGB").resize((8, 8))
    except AiError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombWarning) as err:
        raise invalid_image(field, f"not a decodable image ({type(err).__name__})") from None
    raw = small.tobytes()  # 8x8 RGB, row by row
    pixels = [(raw[i], raw[i + 1], raw[i + 2]) for i in range(0, len(raw), 3)]
    mean = tuple(sum(p[i] for p in pixels) // len(pixels) for i in range(3))
    rgb = (mean[0], mean[1], mean[2])
    top = sum(sum(p) for p in pixels[:32])
    bottom = sum(sum(p) for p in pixels[32:])
    light = (
        "lighter at the top"
        if top > bottom
        else "lighter at the bottom"
        if bottom > top
        else "evenly lit"
    )
    return (
        f"The image is a {width}x{height} {fmt}, mostly {_colour_name(rgb)} "
        f"(#{rgb[0]:02x}{rgb[1]:02x}{rgb[2]:02x}), {light}."
    )
