"""Workers AI over the wire: the binding route workerd calls, REST ai/run, model search,
the OpenAI-compatible endpoints, and the workerd config fragments."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from starlette.applications import Starlette
from starlette.testclient import TestClient

from cfai.local.services.base import EmulatorContext, WorkerdBinding, WorkerdService
from cfai.local.services.frontdoor import BindingScope
from cfai.local.services.workers_ai import WorkersAIService

Serve = Callable[..., Starlette]  # the `serve` fixture (conftest)
Binding = Callable[..., dict[str, str]]  # the `binding` fixture (conftest)

ACCOUNT = "0123456789abcdef0123456789abcdef"
TOKEN = "test-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}
LLAMA = "@cf/meta/llama-3.1-8b-instruct"
BGE = "@cf/baai/bge-base-en-v1.5"
BASE = f"/client/v4/accounts/{ACCOUNT}/ai"


@pytest.fixture
def service(tmp_path: Path) -> WorkersAIService:
    return WorkersAIService(
        EmulatorContext(state_dir=tmp_path, account_id=ACCOUNT, api_token=TOKEN)
    )


@pytest.fixture
def app(service: WorkersAIService, serve: Serve) -> Starlette:
    return serve(service.ctx, service)


@pytest.fixture
def binding(app: Starlette, binding: Binding) -> Iterator[TestClient]:
    """A client speaking as workerd's AI fetcher of Worker qa (its binding token)."""
    with TestClient(app, base_url="http://workers-binding.ai", headers=binding("ai")) as c:
        yield c


@pytest.fixture
def rest(app: Starlette) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


def _call(client: TestClient, model: str, inputs: dict[str, Any], **kw: Any) -> Any:
    """What workerd's env.AI.run sends (ai-api.ts)."""
    headers = {
        "cf-consn-model-id": model,
        "cf-consn-sdk-version": "2.0.0",
        "content-type": "application/json",
    }
    body = json.dumps({"inputs": inputs, "options": {}})
    return client.post("/run?version=3", content=body, headers=headers, **kw)


def _sse(text: str) -> list[Any]:
    assert text.endswith("\n\n")
    events = text[:-2].split("\n\n")
    assert all(e.startswith("data: ") for e in events)
    return [e[6:] if e == "data: [DONE]" else json.loads(e[6:]) for e in events]


# --- binding ---------------------------------------------------------------------------------


def test_binding_json_result_is_bare_with_exact_content_type(binding: TestClient) -> None:
    r = _call(binding, BGE, {"text": ["hello"]})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.json()["shape"] == [1, 768] and "result" not in r.json()
    assert r.headers["cf-ai-req-id"]


def test_binding_stream_is_event_stream(binding: TestClient) -> None:
    r = _call(binding, LLAMA, {"prompt": "hello", "stream": True})
    assert r.headers["content-type"] == "text/event-stream"
    events = _sse(r.text)
    assert events[-1] == "[DONE]" and "usage" in events[-2]


def test_binding_binary_models_send_bytes_with_their_type(binding: TestClient) -> None:
    r = _call(
        binding,
        "@cf/stabilityai/stable-diffusion-xl-base-1.0",
        {"prompt": "a cat", "width": 256, "height": 256},
    )
    assert r.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(r.content)).size == (256, 256)
    r = _call(binding, "@cf/deepgram/aura-2-en", {"text": "hi"})
    assert r.headers["content-type"] == "audio/mpeg" and r.content[:3] == b"ID3"


@pytest.mark.parametrize(
    ("model", "inputs", "status", "code"),
    [
        ("@cf/nope/nothing", {"prompt": "x"}, 400, 5007),
        (LLAMA, {"prompt": "x", "top_k": 0}, 400, 3003),
        ("@cf/openai/whisper-large-v3-turbo", {"audio": "!!"}, 400, 5004),
    ],
)
def test_binding_errors_are_what_workerd_parses(
    binding: TestClient, model: str, inputs: dict[str, Any], status: int, code: int
) -> None:
    r = _call(binding, model, inputs)
    assert r.status_code == status
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert set(body) == {"internalCode", "name", "description"}
    assert body["internalCode"] == code and body["description"]


def test_binding_without_model_header_is_3003(binding: TestClient) -> None:
    r = binding.post("/run?version=3", json={"inputs": {"prompt": "x"}, "options": {}})
    assert r.status_code == 400 and r.json()["internalCode"] == 3003
    assert "cf-consn-model-id" in r.json()["description"]


# --- REST ------------------------------------------------------------------------------------


def test_rest_run_envelopes_json_results(rest: TestClient) -> None:
    r = rest.post(f"{BASE}/run/{LLAMA}", json={"prompt": "hello"}, headers=AUTH)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["success"] is True and body["errors"] == [] and body["messages"] == []
    assert body["result"]["response"].startswith("[cfai stand-in]")


def test_rest_run_streams_raw_sse(rest: TestClient) -> None:
    r = rest.post(f"{BASE}/run/{LLAMA}", json={"prompt": "hello", "stream": True}, headers=AUTH)
    assert r.headers["content-type"] == "text/event-stream"
    assert _sse(r.text)[-1] == "[DONE]"


def test_rest_run_binary_is_raw_and_base64_models_are_enveloped(rest: TestClient) -> None:
    r = rest.post(
        f"{BASE}/run/@cf/leonardo/phoenix-1.0",
        json={"prompt": "a", "width": 64, "height": 64},
        headers=AUTH,
    )
    assert (
        r.headers["content-type"] == "image/jpeg"
        and Image.open(io.BytesIO(r.content)).format == "JPEG"
    )
    r = rest.post(
        f"{BASE}/run/@cf/black-forest-labs/flux-1-schnell", json={"prompt": "a"}, headers=AUTH
    )
    img = Image.open(io.BytesIO(base64.b64decode(r.json()["result"]["image"])))
    assert (img.format, img.size) == ("JPEG", (1024, 1024))


def test_rest_run_errors_use_the_v4_error_envelope(rest: TestClient) -> None:
    r = rest.post(f"{BASE}/run/@cf/nope/nothing", json={"prompt": "x"}, headers=AUTH)
    assert r.status_code == 400
    assert r.json() == {
        "result": None,
        "success": False,
        "errors": [{"code": 5007, "message": "No such model @cf/nope/nothing or task"}],
        "messages": [],
    }
    r = rest.post(f"{BASE}/run/{LLAMA}", content=b"{not json", headers=AUTH)
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == 3003


def test_rest_requires_the_bearer_token(rest: TestClient) -> None:
    assert rest.post(f"{BASE}/run/{LLAMA}", json={"prompt": "x"}).status_code == 401
    wrong = {"authorization": "Bearer nope"}
    assert rest.post(f"{BASE}/run/{LLAMA}", json={"prompt": "x"}, headers=wrong).status_code == 403
    assert rest.get(f"{BASE}/models/search").status_code == 401
    assert rest.post(f"{BASE}/v1/chat/completions", json={}).status_code == 401


def test_rest_other_account_is_refused(rest: TestClient) -> None:
    r = rest.post(
        f"/client/v4/accounts/{'f' * 32}/ai/run/{LLAMA}", json={"prompt": "x"}, headers=AUTH
    )
    assert r.status_code == 403 and r.json()["success"] is False


def test_models_search_filters_by_task_and_text(rest: TestClient) -> None:
    r = rest.get(f"{BASE}/models/search", params={"task": "Text Embeddings"}, headers=AUTH)
    names = {m["name"] for m in r.json()["result"]}
    assert "@cf/baai/bge-small-en-v1.5" in names and LLAMA not in names
    r = rest.get(f"{BASE}/models/search", params={"search": "whisper"}, headers=AUTH)
    result = r.json()["result"]
    assert {m["name"] for m in result} == {
        "@cf/openai/whisper",
        "@cf/openai/whisper-large-v3-turbo",
    }
    assert result[0]["task"]["name"] == "Automatic Speech Recognition"
    assert r.json()["result_info"]["total_count"] == 2


# --- OpenAI-compatible -----------------------------------------------------------------------


def test_openai_chat_completion_shape(rest: TestClient) -> None:
    messages = [
        {"role": "system", "content": "The launch code is blue falcon. Lunch is at noon."},
        {"role": "user", "content": "What is the launch code?"},
    ]
    r = rest.post(
        f"{BASE}/v1/chat/completions", json={"model": LLAMA, "messages": messages}, headers=AUTH
    )
    body = r.json()
    assert body["object"] == "chat.completion" and body["model"] == LLAMA
    (choice,) = body["choices"]
    assert (
        choice["message"]["role"] == "assistant" and "blue falcon" in choice["message"]["content"]
    )
    assert choice["finish_reason"] == "stop"
    assert (
        body["usage"]["total_tokens"]
        == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    )


def test_openai_chat_max_tokens_gives_finish_reason_length(rest: TestClient) -> None:
    body = {"model": LLAMA, "messages": [{"role": "user", "content": "hi there"}], "max_tokens": 3}
    choice = rest.post(f"{BASE}/v1/chat/completions", json=body, headers=AUTH).json()["choices"][0]
    assert choice["finish_reason"] == "length" and len(choice["message"]["content"].split()) == 3


def test_openai_chat_stream_chunks_then_usage_then_done(rest: TestClient) -> None:
    body = {
        "model": LLAMA,
        "messages": [{"role": "user", "content": "hi there"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    r = rest.post(f"{BASE}/v1/chat/completions", json=body, headers=AUTH)
    assert r.headers["content-type"] == "text/event-stream"
    events = _sse(r.text)
    assert events[-1] == "[DONE]"
    chunks, usage = events[:-2], events[-2]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text.startswith("[cfai stand-in]")
    assert usage["choices"] == [] and usage["usage"]["completion_tokens"] == len(text.split())


def test_openai_chat_json_schema_content_is_a_json_string(rest: TestClient) -> None:
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    body = {
        "model": LLAMA,
        "messages": [{"role": "user", "content": "ok?"}],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "x", "schema": schema, "strict": True},
        },
    }
    content = rest.post(f"{BASE}/v1/chat/completions", json=body, headers=AUTH).json()["choices"][
        0
    ]["message"]["content"]
    assert json.loads(content) == {"ok": True}


def test_openai_chat_rejects_non_chat_models(rest: TestClient) -> None:
    r = rest.post(f"{BASE}/v1/chat/completions", json={"model": BGE, "messages": []}, headers=AUTH)
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == 5007


def test_openai_embeddings_float_and_base64_agree(rest: TestClient) -> None:
    plain = rest.post(
        f"{BASE}/v1/embeddings", json={"model": BGE, "input": ["a b", "c"]}, headers=AUTH
    ).json()
    assert plain["object"] == "list" and [d["index"] for d in plain["data"]] == [0, 1]
    assert len(plain["data"][0]["embedding"]) == 768
    packed = rest.post(
        f"{BASE}/v1/embeddings",
        json={"model": BGE, "input": "a b", "encoding_format": "base64"},
        headers=AUTH,
    ).json()
    vec = np.frombuffer(base64.b64decode(packed["data"][0]["embedding"]), dtype="<f4")
    assert np.allclose(vec, plain["data"][0]["embedding"], atol=1e-6)
    assert plain["usage"]["prompt_tokens"] == 3


# --- workerd fragments -----------------------------------------------------------------------


def test_workerd_fragments_for_an_ai_binding() -> None:
    bindings = [{"type": "ai", "name": "AI"}, {"type": "vectorize", "name": "V", "index": "docs"}]
    assert WorkersAIService.workerd_services("qa", bindings) == [
        WorkerdService(name="ai:qa", scope=BindingScope("ai", "qa"))
    ]
    assert WorkersAIService.workerd_services("plain", [{"type": "vectorize", "name": "V"}]) == []
    assert WorkersAIService.workerd_binding("qa", bindings[0]) == WorkerdBinding(
        name="AI", module="cloudflare-internal:ai-api", inner=[("fetcher", "service", "ai:qa")]
    )
