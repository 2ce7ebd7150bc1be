"""The image kind: `POST /image` answers the image bytes of a text-to-image model.

Sizes and steps are bounded by the model's limits in the catalog, narrowed by the
Worker's `max_width`/`max_height`; a model that makes one fixed size takes neither.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from types import MappingProxyType
from typing import Any, Literal

from pydantic import Field

from cfai.catalog import CATALOG, Catalog, ModelSpec, Task
from cfai.errors import Problem, RenderError
from cfai.kinds._support import (
    TASK_FIELD_HELP,
    ai_bindings,
    declared_task,
    model_problems,
    render_spec,
)
from cfai.kinds.base import (
    HEALTH,
    CheckContext,
    Example,
    Kind,
    KindCost,
    ModelUse,
    RenderContext,
    Rendering,
    Route,
    WorkerConfig,
)
from cfai.kinds.pricing import TILE_PIXELS, Traffic, priced
from cfai.outputs import Outputs, WorkerOutput

__all__ = ["KIND", "ImageKind", "ImageWorkerConfig"]


class ImageWorkerConfig(WorkerConfig):
    """An image Worker: `POST /image` answers the image bytes."""

    kind: Literal["image"] = "image"
    model: str = "@cf/black-forest-labs/flux-1-schnell"
    task: Task | None = Field(None, description=TASK_FIELD_HELP)
    steps: int | None = Field(None, ge=1, le=50, description="default steps; null = the model's")
    max_width: int | None = Field(None, ge=64, le=2500, description="null = the model's maximum")
    max_height: int | None = Field(None, ge=64, le=2500, description="null = the model's maximum")


def _every(worker: WorkerOutput, outputs: Outputs) -> bool:
    return True


def _limits(worker: ImageWorkerConfig, spec: ModelSpec, key: str) -> dict[str, Any]:
    lim = spec.image
    if lim is None:
        raise RenderError(f"workers.{key}: model {worker.model!r} has no image limits")
    if lim.sizable:
        max_w = min(worker.max_width or lim.max_size, lim.max_size)
        max_h = min(worker.max_height or lim.max_size, lim.max_size)
        min_w, min_h = min(lim.min_size, max_w), min(lim.min_size, max_h)
    else:
        max_w = min_w = lim.default_width
        max_h = min_h = lim.default_height
    return {
        "content_type": spec.content_type,
        "default_height": min(lim.default_height, max_h),
        "default_steps": min(worker.steps or lim.default_steps, lim.max_steps),
        "default_width": min(lim.default_width, max_w),
        "max_height": max_h,
        "max_steps": lim.max_steps,
        "max_width": max_w,
        "min_height": min_h,
        "min_width": min_w,
        "sizable": lim.sizable,
        "steps_field": lim.steps_field,
    }


class ImageKind(Kind[ImageWorkerConfig]):
    name = "image"
    playground = True
    config = ImageWorkerConfig
    template = "workers/image.js.j2"
    routes = (HEALTH, Route("POST", "/image", summary="the image bytes of a prompt"))
    main_route = routes[1]
    # The answer is image bytes: written under /tmp, never where the command is pasted.
    example = Example(
        "POST", "/image", {"prompt": "a lighthouse at dusk"}, " -o /tmp/cfai-image.png"
    )
    checks = ("test_image.py", "test_playground.py")
    selections = MappingProxyType({"image_worker": _every})

    def model_uses(self, worker: ImageWorkerConfig) -> tuple[ModelUse, ...]:
        return (ModelUse("model", worker.model, Task.TEXT_TO_IMAGE, "an image worker"),)

    def problems(self, key: str, worker: ImageWorkerConfig, ctx: CheckContext) -> Iterator[Problem]:
        base = f"workers.{key}"
        spec, problems = model_problems(
            f"{base}.model",
            worker.model,
            Task.TEXT_TO_IMAGE,
            "an image worker",
            ctx.catalog,
            declared_task(worker),
        )
        yield from problems
        if spec is None or spec.image is None:
            return
        lim = spec.image
        if worker.steps is not None and worker.steps > lim.max_steps:
            yield Problem(
                f"{base}.steps",
                f"steps {worker.steps} exceeds {worker.model}'s maximum of {lim.max_steps}",
            )
        for field in ("max_width", "max_height"):
            value = getattr(worker, field)
            if value is None:
                continue
            if not lim.sizable:
                yield Problem(
                    f"{base}.{field}",
                    f"{worker.model} makes {lim.default_width}x{lim.default_height} images only; remove {field}",
                )
            elif not lim.min_size <= value <= lim.max_size:
                yield Problem(
                    f"{base}.{field}",
                    f"{field} {value} is outside {worker.model}'s range {lim.min_size}..{lim.max_size}",
                )

    def render(self, key: str, worker: ImageWorkerConfig, ctx: RenderContext) -> Rendering:
        spec = render_spec(self.model_uses(worker)[0], key, worker, ctx.catalog)
        return Rendering(
            bindings=tuple(ai_bindings(worker.model)),
            models=(worker.model,),
            settings={"IMAGE": _limits(worker, spec, key)},
        )

    def cost(
        self,
        key: str,
        worker: ImageWorkerConfig,
        traffic: Traffic,
        catalog: Catalog | None = None,
    ) -> KindCost:
        catalog = catalog or CATALOG
        spec = catalog.get(worker.model) or ModelSpec.declared(worker.model, Task.TEXT_TO_IMAGE)
        assert spec.image is not None  # the config checks demand a text-to-image model
        lim = spec.image
        width = min(lim.default_width, worker.max_width or lim.default_width)
        height = min(lim.default_height, worker.max_height or lim.default_height)
        tiles = math.ceil(width / TILE_PIXELS) * math.ceil(height / TILE_PIXELS)
        steps = worker.steps or lim.default_steps
        images = traffic.requests_per_day * traffic.images_per_request
        items = priced(worker.model, {"tiles": tiles * images, "steps": steps * images}, catalog)
        said = (
            f"{key} (image): {worker.model}, {traffic.images_per_request} image(s) per request at "
            f"{width}x{height} = {tiles} tiles of {TILE_PIXELS}px, {steps} steps "
            f"({'configured' if worker.steps else 'model default'})"
        )
        return KindCost(tuple(items), (said,))


KIND = ImageKind()
