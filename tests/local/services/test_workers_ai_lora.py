"""Model runs with ``lora``: the finetune uploaded through the REST API changes the answer
(deterministically, naming the adapter) on REST and on the binding, by name or id, in every
output form the generator writes; what Cloudflare refuses (unknown finetune 3037, model without LoRA 5005/405, missing assets
3039) is refused in each route's shape."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from cfai.catalog import CATALOG
from cfai.finetunes.demo import write_adapter
from cfai.local.services.base import EmulatorContext
from cfai.local.services.finetunes import FinetunesService
from cfai.local.services.workers_ai import AiResult, WorkersAIService
from cfai.local.services.workers_ai.gpt_oss import run_generation

Serve = Callable[..., Starlette]
Binding = Callable[..., dict[str, str]]

ACCOUNT = "0123456789abcdef0123456789abcdef"
TOKEN = "test-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}
BASE = f"/client/v4/accounts/{ACCOUNT}/ai"
LLAMA = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"
QUESTION = {"messages": [{"role": "user", "content": "What does the adapter change?"}]}


@pytest.fixture
def app(tmp_path: Path, serve: Serve) -> Iterator[Starlette]:
    ctx = EmulatorContext(state_dir=tmp_path / "state", account_id=ACCOUNT, api_token=TOKEN)
    finetunes = FinetunesService(ctx)
    yield serve(ctx, WorkersAIService(ctx), finetunes)
    finetunes.close()


@pytest.fixture
def rest(app: Starlette) -> TestClient:
    return TestClient(app, headers=AUTH)


@pytest.fixture
def binding(app: Starlette, binding: Binding) -> TestClient:
    return TestClient(app, base_url="http://workers-binding.ai", headers=binding("ai"))


@pytest.fixture
def tone(rest: TestClient, tmp_path: Path) -> dict[str, Any]:
    """The finetune ``acme-tone`` for llama-3.3, both assets uploaded as wrangler does."""
    write_adapter(tmp_path / "adapter")
    made = rest.post(f"{BASE}/finetunes", json={"model": LLAMA, "name": "acme-tone"}).json()
    for path in sorted((tmp_path / "adapter").iterdir()):
        r = rest.post(
            f"{BASE}/finetunes/{made['result']['id']}/finetune-assets",
            data={"file_name": path.name},
            files={"file": ("blob", path.read_bytes(), "application/octet-stream")},
        )
        assert r.status_code == 200, r.text
    result: dict[str, Any] = made["result"]
    return result


def run(rest: TestClient, model: str, **inputs: Any) -> Any:
    return rest.post(f"{BASE}/run/{model}", json={**QUESTION, **inputs})


def call(binding: TestClient, model: str, **inputs: Any) -> Any:
    """What workerd's env.AI.run sends (ai-api.ts)."""
    return binding.post(
        "/run?version=3",
        json={"inputs": {**QUESTION, **inputs}, "options": {}},
        headers={"cf-consn-model-id": model},
    )


@pytest.mark.usefixtures("tone")
def test_rest_run_with_lora_names_the_adapter_and_differs_from_the_base(rest: TestClient) -> None:
    base = run(rest, LLAMA).json()["result"]["response"]
    tuned = run(rest, LLAMA, lora="acme-tone").json()["result"]["response"]
    assert base.startswith("[cfai stand-in] ") and "LoRA" not in base
    assert tuned.startswith("[cfai stand-in] [LoRA acme-tone] ")
    assert tuned != base and tuned.removeprefix(
        "[cfai stand-in] [LoRA acme-tone]"
    ) == base.removeprefix("[cfai stand-in]")
    assert run(rest, LLAMA, lora="acme-tone").json()["result"]["response"] == tuned  # deterministic


def test_binding_run_by_id_and_streamed(binding: TestClient, tone: dict[str, Any]) -> None:
    answer = call(binding, LLAMA, lora=tone["id"])
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    assert answer.json()["response"].startswith("[cfai stand-in] [LoRA acme-tone] ")
    streamed = call(binding, LLAMA, lora="acme-tone", stream=True)
    assert streamed.headers["content-type"].startswith("text/event-stream")
    text = "".join(
        json.loads(line[6:]).get("response", "")
        for line in streamed.text.splitlines()
        if line.startswith("data: {")
    )
    assert text.startswith("[cfai stand-in] [LoRA acme-tone] ")


@pytest.mark.usefixtures("tone")
def test_unknown_lora_is_cloudflares_3037(rest: TestClient, binding: TestClient) -> None:
    r = run(rest, LLAMA, lora="acme-tonne")
    assert r.status_code == 404
    assert r.json()["errors"] == [{"code": 3037, "message": "Finetune acme-tonne not found"}]
    b = call(binding, LLAMA, lora="acme-tonne")
    assert b.status_code == 404 and b.json()["internalCode"] == 3037


@pytest.mark.usefixtures("tone")
def test_a_finetune_of_another_model_is_not_found_for_this_one(rest: TestClient) -> None:
    r = run(rest, "@cf/qwen/qwen2.5-coder-32b-instruct", lora="acme-tone")
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == 3037


@pytest.mark.usefixtures("tone")
def test_model_without_lora_support_is_5005(rest: TestClient, binding: TestClient) -> None:
    r = run(rest, "@cf/meta/llama-3.1-8b-instruct", lora="acme-tone")
    assert r.status_code == 405
    assert r.json()["errors"] == [
        {
            "code": 5005,
            "message": "The model @cf/meta/llama-3.1-8b-instruct does not support LoRa inference",
        }
    ]
    b = call(binding, "@cf/meta/llama-3.1-8b-instruct", lora="acme-tone")
    assert b.status_code == 405 and b.json()["internalCode"] == 5005


def test_finetune_without_its_assets_is_3039(rest: TestClient) -> None:
    rest.post(f"{BASE}/finetunes", json={"model": LLAMA, "name": "empty"})
    r = run(rest, LLAMA, lora="empty")
    assert r.status_code == 400
    assert r.json()["errors"] == [
        {
            "code": 3039,
            "message": "Finetune is missing required files (model.safetensors and config.json)",
        }
    ]


def test_lora_must_be_a_string(rest: TestClient) -> None:
    r = run(rest, LLAMA, lora=7)
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == 3003
    assert "lora: must be a string" in r.json()["errors"][0]["message"]


# --- the adapter in every output form ----------------------------------------------------------

QWQ = "@cf/qwen/qwq-32b"
CONTEXT = "The Eiffel Tower is 330 metres tall. It stands in Paris."
ASK = [
    {"role": "system", "content": CONTEXT},
    {"role": "user", "content": "How tall is the Eiffel Tower?"},
]
TUNED = "[cfai stand-in] [LoRA acme-tone] "


def _finetune(rest: TestClient, folder: Path, model: str, name: str) -> None:
    write_adapter(folder)
    made = rest.post(f"{BASE}/finetunes", json={"model": model, "name": name}).json()
    for path in sorted(folder.iterdir()):
        r = rest.post(
            f"{BASE}/finetunes/{made['result']['id']}/finetune-assets",
            data={"file_name": path.name},
            files={"file": ("blob", path.read_bytes(), "application/octet-stream")},
        )
        assert r.status_code == 200, r.text


def _answer(result: AiResult) -> str:
    """The answer text (not the reasoning) of a text run in any output form, streamed or not."""
    if result.chunks is None:
        out = result.result
        if "response" in out:  # native (a think-tag model's reasoning comes first)
            return str(out["response"]).rpartition("</think>")[2].lstrip()
        if out["object"] == "response":  # gpt-oss's Responses API
            return str(out["output_text"])
        choice = out["choices"][0]
        return str(choice["text"] if "text" in choice else choice["message"]["content"])
    raw = b"".join(result.chunks).decode()
    events = [json.loads(e[6:]) for e in raw.strip().split("\n\n") if e != "data: [DONE]"]
    pieces = []
    for e in events:
        if "response" in e:
            pieces.append(e["response"])
        elif e["choices"]:
            choice = e["choices"][0]
            pieces.append(choice.get("text") or choice.get("delta", {}).get("content") or "")
    return "".join(pieces).rpartition("</think>")[2].lstrip()


# Cloudflare serves LoRA on native-form models only, so the OpenAI forms are shown on the
# generator itself (the service refuses them first, 5005): one place applies the adapter.
FORMS = [
    pytest.param(LLAMA, {"messages": ASK}, id="native"),
    pytest.param(QWQ, {"messages": ASK}, id="native-think-tag"),
    pytest.param("@cf/qwen/qwen3-30b-a3b-fp8", {"messages": ASK}, id="chat-completion"),
    pytest.param(
        "@cf/ibm-granite/granite-4.0-h-micro",
        {"prompt": f"{CONTEXT} How tall is the Eiffel Tower?"},
        id="text-completion",
    ),
    pytest.param("@cf/openai/gpt-oss-20b", {"messages": ASK}, id="gpt-oss-messages"),
]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize(("model", "inputs"), FORMS)
def test_the_adapter_shows_in_every_output_form(
    model: str, inputs: dict[str, Any], stream: bool
) -> None:
    spec = CATALOG[model]
    base = _answer(run_generation(spec, {**inputs, "stream": stream}))
    tuned = _answer(run_generation(spec, {**inputs, "stream": stream}, adapter="acme-tone"))
    assert "330 metres" in base and "LoRA" not in base
    assert tuned.startswith(TUNED)
    assert tuned.removeprefix(TUNED) == base.removeprefix("[cfai stand-in] ")


def test_the_adapter_shows_in_gpt_oss_responses() -> None:
    spec = CATALOG["@cf/openai/gpt-oss-20b"]
    inputs = {"instructions": CONTEXT, "input": "How tall is the Eiffel Tower?"}
    base = run_generation(spec, inputs)
    tuned = run_generation(spec, inputs, adapter="acme-tone")
    assert _answer(tuned) == TUNED + _answer(base).removeprefix("[cfai stand-in] ")
    assert tuned.result["id"] != base.result["id"]  # ids derive from the adapter too


def test_a_reasoning_base_model_thinks_then_answers_with_the_adapter(
    rest: TestClient, binding: TestClient, tmp_path: Path
) -> None:
    _finetune(rest, tmp_path / "adapter", QWQ, "acme-reason")
    body = {"messages": ASK, "lora": "acme-reason"}
    out = rest.post(f"{BASE}/run/{QWQ}", json=body).json()["result"]["response"]
    thought, _, answer = out.partition("\n</think>\n\n")
    assert thought.startswith("The user asks: How tall is the Eiffel Tower?")
    assert "LoRA" not in thought
    assert answer.startswith("[cfai stand-in] [LoRA acme-reason] ") and "330 metres" in answer
    streamed = binding.post(
        "/run?version=3",
        json={"inputs": {**body, "stream": True}, "options": {}},
        headers={"cf-consn-model-id": QWQ},
    )
    assert streamed.headers["content-type"].startswith("text/event-stream")
    text = "".join(
        json.loads(line[6:]).get("response", "")
        for line in streamed.text.splitlines()
        if line.startswith("data: {")
    )
    assert text == out
