"""The image Worker's API in Node with stub bindings: both result forms (base64 JSON and
binary stream) give the image bytes with the right content-type; inputs are validated
against the model's limits."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import pytest
from conftest import TOKEN, env_for, make_platform, render
from node_harness import request, run_worker
from PIL import Image

FLUX = "@cf/black-forest-labs/flux-1-schnell"
SDXL = "@cf/stabilityai/stable-diffusion-xl-base-1.0"


def _image(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 4), (200, 10, 10)).save(out, format=fmt)
    return out.getvalue()


def _run(
    tmp_path: Path, worker_settings: dict[str, Any], requests: list[dict[str, Any]], **stubs: Any
):
    platform = make_platform({"studio": {"kind": "image", **worker_settings}})
    worker = render(platform, "studio")
    return run_worker(
        tmp_path, worker.source, {"env": env_for(worker), "requests": requests, **stubs}
    )


@pytest.mark.parametrize(
    ("model", "fmt", "action", "content_type"),
    [
        (FLUX, "JPEG", lambda b: {"json": {"image": base64.b64encode(b).decode()}}, "image/jpeg"),
        (SDXL, "PNG", lambda b: {"bytes_b64": base64.b64encode(b).decode()}, "image/png"),
        # The catalog says phoenix answers JPEG; the bytes decide, not the catalog.
        (
            "@cf/leonardo/phoenix-1.0",
            "PNG",
            lambda b: {"bytes_b64": base64.b64encode(b).decode()},
            "image/png",
        ),
        # A JSON reply with a content-type other than exactly application/json reaches the
        # Worker as a stream; the Worker still finds the image inside.
        (
            FLUX,
            "PNG",
            lambda b: {"sse": ['{"image": "' + base64.b64encode(b).decode() + '"}']},
            "image/png",
        ),
    ],
)
def test_image_bytes_and_content_type(
    model: str, fmt: str, action: Any, content_type: str, tmp_path: Path
) -> None:
    data = _image(fmt)
    replies, calls = _run(
        tmp_path,
        {"model": model},
        [request("POST", "/image", {"prompt": "a red square"}, token=TOKEN)],
        ai_queue=[action(data)],
    )
    reply = replies[0]
    assert reply.status == 200, reply.body
    assert reply.headers["content-type"] == content_type
    assert reply.body == data
    assert calls["ai"][0]["model"] == model


def test_image_inputs_use_the_models_step_field_and_limits(tmp_path: Path) -> None:
    png = {"bytes_b64": base64.b64encode(_image("PNG")).decode()}
    replies, calls = _run(
        tmp_path,
        {"model": SDXL, "steps": 12, "max_width": 1024, "max_height": 768},
        [
            request("POST", "/image", {"prompt": "p"}, token=TOKEN),
            request(
                "POST",
                "/image",
                {
                    "prompt": "p",
                    "steps": 20,
                    "width": 512,
                    "height": 256,
                    "seed": 7,
                    "negative_prompt": "blur",
                },
                token=TOKEN,
            ),
        ],
        ai_queue=[png, png],
    )
    assert [r.status for r in replies] == [200, 200]
    assert calls["ai"][0]["inputs"] == {
        "prompt": "p",
        "num_steps": 12,
        "width": 1024,
        "height": 768,
    }
    assert calls["ai"][1]["inputs"] == {
        "prompt": "p",
        "num_steps": 20,
        "width": 512,
        "height": 256,
        "seed": 7,
        "negative_prompt": "blur",
    }


def test_flux_takes_steps_and_no_size(tmp_path: Path) -> None:
    jpeg = {"json": {"image": base64.b64encode(_image("JPEG")).decode()}}
    replies, calls = _run(
        tmp_path,
        {"model": FLUX},
        [
            request("POST", "/image", {"prompt": "p", "steps": 8}, token=TOKEN),
            request("POST", "/image", {"prompt": "p", "width": 512}, token=TOKEN),
        ],
        ai_queue=[jpeg],
    )
    assert calls["ai"][0]["inputs"] == {"prompt": "p", "steps": 8}
    assert replies[1].status == 400
    assert replies[1].json()["error"]["message"].startswith("width: ")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "prompt"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": "x" * 2049}, "prompt"),
        ({"prompt": "p", "steps": 21}, "steps"),
        ({"prompt": "p", "steps": 0}, "steps"),
        ({"prompt": "p", "width": 1025}, "width"),
        ({"prompt": "p", "height": 769}, "height"),
        ({"prompt": "p", "height": 255}, "height"),
        ({"prompt": "p", "width": 512.5}, "width"),
        ({"prompt": "p", "seed": -1}, "seed"),
        ({"prompt": "p", "negative_prompt": 3}, "negative_prompt"),
    ],
)
def test_image_rejects_out_of_range_inputs(
    body: dict[str, Any], field: str, tmp_path: Path
) -> None:
    replies, calls = _run(
        tmp_path,
        {"model": SDXL, "max_width": 1024, "max_height": 768},
        [request("POST", "/image", body, token=TOKEN)],
    )
    assert replies[0].status == 400
    assert replies[0].json()["error"]["message"].startswith(f"{field}: ")
    assert calls["ai"] == []


def test_image_without_image_is_502(tmp_path: Path) -> None:
    replies, _ = _run(
        tmp_path,
        {"model": FLUX},
        [request("POST", "/image", {"prompt": "p"}, token=TOKEN)] * 2,
        ai_queue=[{"json": {"nothing": True}}, {"json": {"image": "!!not base64!!"}}],
    )
    assert [r.status for r in replies] == [502, 502]
    assert replies[0].json()["error"]["code"] == "upstream_error"
