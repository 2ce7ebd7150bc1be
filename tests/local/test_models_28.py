"""Every model of the Workers AI guide answers in its real shape, through REST ``ai/run`` and
through ``env.AI.run`` in a Worker on workerd (one platform for all 28), and a model the
catalog does not list answers when its Worker declares the task."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import miniaudio
import pytest
import yaml
from PIL import Image
from starlette.testclient import TestClient

from cfai.config import load_file
from cfai.local import LocalPlatform
from cfai.local.services.base import EmulatorContext
from cfai.local.services.frontdoor import BindingKey, FrontDoor
from cfai.local.services.workers_ai import WorkersAIService
from cfai.local.services.workers_ai.audio import speak

REPO = Path(__file__).resolve().parents[2]
ACCOUNT = "0123456789abcdef0123456789abcdef"
CONTEXT = "The Eiffel Tower is 330 metres tall. Bananas are rich in potassium."
ASK = [{"role": "system", "content": CONTEXT}, {"role": "user", "content": "How tall is the Eiffel Tower?"}]  # fmt: skip
SPOKEN = "Deploy the canary at noon."
MP3 = speak(SPOKEN)


def _png(size: tuple[int, int] = (64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 20, 20)).save(buf, "PNG")
    return buf.getvalue()


@dataclass(frozen=True)
class Answer:
    """A model's answer: parsed JSON, or the bytes of a binary one."""

    value: Any = None
    data: bytes | None = None


@dataclass(frozen=True)
class Probe:
    model: str
    inputs: dict[str, Any]
    check: Callable[[Answer], None]
    audio: tuple[str, bytes] | None = field(default=None)  # the body of a binary-input model


def native(a: Answer) -> None:
    assert isinstance(a.value["response"], str) and "330 metres" in a.value["response"]
    assert a.value["usage"]["total_tokens"] == a.value["usage"]["prompt_tokens"] + a.value["usage"]["completion_tokens"]  # fmt: skip


def think_tag(a: Answer) -> None:
    native(a)
    thought, tag, answer = a.value["response"].partition("</think>")
    assert tag and "330 metres" in answer and "330 metres" not in thought


def chat_completion(reasoning: bool) -> Callable[[Answer], None]:
    def check(a: Answer) -> None:
        assert a.value["object"] == "chat.completion"
        message = a.value["choices"][0]["message"]
        assert "330 metres" in message["content"]
        assert bool(message.get("reasoning_content")) is reasoning

    return check


def responses(a: Answer) -> None:
    assert a.value["object"] == "response"
    assert [o["type"] for o in a.value["output"]] == ["reasoning", "message"]
    assert "330 metres" in a.value["output_text"]


def vision(a: Answer) -> None:
    assert "64x48 PNG, mostly red" in a.value["response"]


def embeddings(dims: int, pooling: str | None) -> Callable[[Answer], None]:
    def check(a: Answer) -> None:
        assert a.value["shape"] == [2, dims] and len(a.value["data"][1]) == dims
        assert a.value.get("pooling") == pooling

    return check


def image(fmt: str, size: tuple[int, int], base64_json: bool) -> Callable[[Answer], None]:
    def check(a: Answer) -> None:
        data = base64.b64decode(a.value["image"]) if base64_json else a.data
        assert data is not None, "expected the image bytes"
        img = Image.open(io.BytesIO(data))
        assert (img.format, img.size) == (fmt, size)

    return check


def mp3(a: Answer) -> None:
    assert a.data is not None and a.data[:3] == b"ID3"
    decoded = miniaudio.decode(a.data)  # a real MP3 decoder accepts it
    assert decoded.duration > 0.5 and decoded.num_frames > 0


def whisper(a: Answer) -> None:
    assert a.value["text"] == SPOKEN and a.value["word_count"] == 5
    assert a.value["segments"][0]["words"][0]["word"] == "Deploy"


def nova(a: Answer) -> None:
    alt = a.value["results"]["channels"][0]["alternatives"][0]
    assert alt["transcript"] == SPOKEN and len(alt["words"]) == 5


IMAGE_PART = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(_png()).decode()}}  # fmt: skip
LOOK = [{"role": "user", "content": [{"type": "text", "text": "What is this?"}, IMAGE_PART]}]
PROBES = [
    Probe("@cf/meta/llama-4-scout-17b-16e-instruct", {"messages": ASK}, native),
    Probe("@cf/openai/gpt-oss-120b", {"instructions": CONTEXT, "input": "How tall is the Eiffel Tower?"}, responses),
    Probe("@cf/openai/gpt-oss-20b", {"messages": ASK}, chat_completion(reasoning=True)),
    Probe("@cf/google/gemma-3-12b-it", {"messages": LOOK}, vision),
    Probe("@cf/mistralai/mistral-small-3.1-24b-instruct", {"messages": ASK}, native),
    Probe("@cf/qwen/qwq-32b", {"messages": ASK}, think_tag),
    Probe("@cf/qwen/qwen2.5-coder-32b-instruct", {"messages": ASK}, native),
    Probe("@cf/qwen/qwen3-30b-a3b-fp8", {"messages": ASK}, chat_completion(reasoning=True)),
    Probe("@cf/ibm-granite/granite-4.0-h-micro", {"messages": ASK}, chat_completion(reasoning=False)),
    Probe("@cf/meta/llama-3.3-70b-instruct-fp8-fast", {"messages": ASK}, native),
    Probe("@cf/meta/llama-3.1-8b-instruct-fp8-fast", {"messages": ASK}, native),
    Probe("@cf/meta/llama-3.1-8b-instruct", {"messages": ASK}, native),
    Probe("@cf/meta/llama-3.2-1b-instruct", {"messages": ASK}, native),
    Probe("@cf/deepseek-ai/deepseek-r1-distill-qwen-32b", {"messages": ASK}, think_tag),
    Probe("@cf/google/embeddinggemma-300m", {"text": ["a lighthouse", "a harbour"]}, embeddings(768, None)),
    Probe("@cf/baai/bge-base-en-v1.5", {"text": ["a", "b"]}, embeddings(768, "mean")),
    Probe("@cf/baai/bge-large-en-v1.5", {"text": ["a", "b"], "pooling": "cls"}, embeddings(1024, "cls")),
    Probe("@cf/baai/bge-small-en-v1.5", {"text": ["a", "b"]}, embeddings(384, "mean")),
    Probe("@cf/qwen/qwen3-embedding-0.6b", {"queries": "a", "documents": "b"}, embeddings(1024, None)),
    Probe("@cf/black-forest-labs/flux-1-schnell", {"prompt": "a lighthouse"}, image("JPEG", (1024, 1024), True)),
    Probe("@cf/leonardo/lucid-origin", {"prompt": "a lighthouse", "width": 256, "height": 320}, image("JPEG", (256, 320), True)),
    Probe("@cf/leonardo/phoenix-1.0", {"prompt": "a lighthouse", "width": 320, "height": 256}, image("JPEG", (320, 256), False)),
    Probe("@cf/stabilityai/stable-diffusion-xl-base-1.0", {"prompt": "a lighthouse", "width": 256, "height": 256}, image("PNG", (256, 256), False)),
    Probe("@cf/meta/llama-3.2-11b-vision-instruct", {"prompt": "What is this?", "image": list(_png())}, vision),
    Probe("@cf/deepgram/aura-2-en", {"text": SPOKEN, "speaker": "asteria"}, mp3),
    Probe("@cf/deepgram/aura-2-es", {"text": "Despliega a mediodía."}, mp3),
    Probe("@cf/deepgram/nova-3", {"punctuate": True}, nova, audio=("audio/mpeg", MP3)),
    Probe("@cf/openai/whisper-large-v3-turbo", {"audio": base64.b64encode(MP3).decode()}, whisper),
]  # fmt: skip


def test_the_probes_cover_the_28_models_of_the_guide() -> None:
    from cfai.catalog import CATALOG

    names = [p.model for p in PROBES]
    assert len(names) == len(set(names)) == 28
    assert all(CATALOG[n].source for n in names)


# --- through REST ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    ctx = EmulatorContext(tmp_path_factory.mktemp("ai"), account_id=ACCOUNT, api_token="t")
    service = WorkersAIService(ctx)
    ctx.register(service)
    app = FrontDoor(account_id=ACCOUNT, api_token="t", binding_key=BindingKey.generate()).app(
        service.endpoints()
    )
    with TestClient(app, headers={"authorization": "Bearer t"}) as client:
        yield client


@pytest.mark.parametrize("probe", PROBES, ids=[p.model for p in PROBES])
def test_each_model_over_rest_ai_run(rest: TestClient, probe: Probe) -> None:
    url = f"/client/v4/accounts/{ACCOUNT}/ai/run/{probe.model}"
    if probe.audio:
        query = {k: json.dumps(v) for k, v in probe.inputs.items()}
        r = rest.post(
            url, params=query, content=probe.audio[1], headers={"content-type": probe.audio[0]}
        )
    else:
        r = rest.post(url, json=probe.inputs)
    assert r.status_code == 200, r.text[:300]
    if r.headers["content-type"] == "application/json":
        body = r.json()
        assert body["success"] is True and body["errors"] == []
        probe.check(Answer(value=body["result"]))
    else:
        probe.check(Answer(data=r.content))


# --- through env.AI.run on workerd ----------------------------------------------------------------

# Runs any model the request names; reports a JSON result as {json}, a binary one as {bytes}.
RUNNER_JS = """\
const b64 = (bytes) => { let s = ""; for (const b of bytes) s += String.fromCharCode(b); return btoa(s); };
export default {
  async fetch(request, env) {
    if (request.method === "GET") return Response.json({ ok: true });
    const { model, inputs, audio } = await request.json();
    if (audio) {
      const bytes = Uint8Array.from(atob(audio.b64), (c) => c.charCodeAt(0));
      inputs.audio = { body: new Response(bytes).body, contentType: audio.type };
    }
    try {
      const out = await env.AI.run(model, inputs);
      if (out instanceof ReadableStream) {
        return Response.json({ bytes: b64(new Uint8Array(await new Response(out).arrayBuffer())) });
      }
      return Response.json({ json: out });
    } catch (err) {
      return Response.json({ error: String((err && err.message) || err) }, { status: 502 });
    }
  },
};
"""
NEW_MODEL = "@cf/acme/llm-2026-12"


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    src = tmp_path_factory.mktemp("models28")
    (src / "src").mkdir()
    (src / "src" / "runner.js").write_text(RUNNER_JS)
    data = {
        "account_id": ACCOUNT,
        "compatibility_date": "2025-09-01",
        "workers": {
            "runner": {"kind": "custom", "main": "src/runner.js", "bindings": {"ai": "AI"}},
            "fresh": {"kind": "chat", "model": NEW_MODEL, "task": "text-generation"},
        },
    }
    (src / "platform.yaml").write_text(yaml.safe_dump(data))
    local = LocalPlatform(REPO, f"pytest-models28-{os.getpid()}", source_dir=src)
    try:
        yield local.up(load_file(src / "platform.yaml"), timeout=60).to_json()
    finally:
        local.down()
        shutil.rmtree(local.state_dir, ignore_errors=True)


@pytest.mark.platform
def test_each_model_through_env_ai_run_on_workerd(platform: dict[str, Any]) -> None:
    url = platform["endpoints"]["runner"]
    failures = []
    with httpx.Client(timeout=60) as client:
        for probe in PROBES:  # one workerd, every model in turn
            payload: dict[str, Any] = {"model": probe.model, "inputs": probe.inputs}
            if probe.audio:
                payload["audio"] = {
                    "type": probe.audio[0],
                    "b64": base64.b64encode(probe.audio[1]).decode(),
                }
            r = client.post(url, json=payload)
            try:
                assert r.status_code == 200, r.text[:300]
                body = r.json()
                probe.check(
                    Answer(data=base64.b64decode(body["bytes"]))
                    if "bytes" in body
                    else Answer(value=body["json"])
                )
            except (AssertionError, KeyError) as err:
                failures.append(f"{probe.model}: {err}")
    assert failures == []


@pytest.mark.platform
def test_a_model_declared_by_task_answers_on_the_local_platform(platform: dict[str, Any]) -> None:
    headers = {"authorization": f"Bearer {platform['auth_token']}"}
    r = httpx.post(
        f"{platform['endpoints']['fresh']}/chat",
        json={"prompt": "Say hi."},
        headers=headers,
        timeout=30,
    )
    assert r.status_code == 200, r.text
    assert r.json()["response"].startswith("[cfai stand-in]")
    # An undeclared one is refused by the emulator as Cloudflare refuses it (5007).
    r = httpx.post(platform["endpoints"]["runner"], json={"model": "@cf/acme/typo", "inputs": {"prompt": "hi"}}, timeout=30)  # fmt: skip
    assert r.status_code == 502 and r.json()["error"].startswith("5007: No such model")
