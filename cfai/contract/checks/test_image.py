"""image Workers: the bytes decode as the declared content type, at the asked size."""

from __future__ import annotations

import io

from PIL import Image

from cfai.catalog import CATALOG
from cfai.contract._http import describe
from cfai.contract._outputs import WorkerTarget
from cfai.contract.plugin import ClientFactory

_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WEBP"}


def test_image_decodes_at_requested_size(
    image_worker: WorkerTarget, worker_client: ClientFactory
) -> None:
    spec = CATALOG.get(image_worker.models[0]) if image_worker.models else None
    limits = spec.image if spec else None
    request: dict[str, object] = {"prompt": "a red lighthouse on a cliff at dusk", "seed": 7}
    expected: tuple[int, int] | None = None
    if limits and limits.sizable:
        # Not square, so swapped width/height shows; within the model's limits.
        width = max(limits.min_size, 256)
        height = width + 64 if width + 64 <= limits.max_size else width
        request |= {"width": width, "height": height}
        expected = (width, height)
    elif limits:
        expected = (limits.default_width, limits.default_height)
    r = worker_client(image_worker.name).post("/image", json=request)
    assert r.status_code == 200, describe(r)
    ctype = r.headers.get("content-type", "").split(";")[0].strip()
    assert ctype in _FORMATS, f"content-type {ctype!r} is not an image type"
    if spec is not None:
        assert ctype == spec.content_type, f"content-type {ctype}, model gives {spec.content_type}"
    try:
        img = Image.open(io.BytesIO(r.content))
        img.load()
    except Exception as err:
        raise AssertionError(f"{len(r.content)} bytes do not decode as an image: {err}") from None
    assert img.format == _FORMATS[ctype], f"declared {ctype}, bytes are {img.format}"
    if expected is not None:
        assert img.size == expected, f"asked {expected}, got {img.size}"
