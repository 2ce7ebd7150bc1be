"""The local stack's LoRA demo on real workerd: `local up` uploaded the generated adapter as
a finetune through the REST API, and the chat Worker's answer changes with it: the same
messages run on the base model without the adapter answer without its name."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from cfai.config import load_stack

REPO = Path(__file__).resolve().parents[2]
QUESTION = "What does the support team say about cache_ttl?"

pytestmark = pytest.mark.platform


def _api(outputs: dict[str, Any]) -> httpx.Client:
    a = outputs["api"]
    return httpx.Client(
        base_url=f"{a['base_url']}/accounts/{a['account_id']}",
        headers={"authorization": f"Bearer {a['token']}"},
        timeout=10,
    )


def _finetune() -> tuple[str, str, str]:
    """The tone finetune's Cloudflare name, the support Worker's model and system prompt."""
    declared = load_stack("local", REPO)
    support = declared.workers["support"]
    return (
        declared.finetune_name("tone", REPO),
        getattr(support, "model", ""),
        getattr(support, "system_prompt", ""),
    )


def test_local_up_uploaded_the_adapter_as_a_finetune(local_platform: dict[str, Any]) -> None:
    name, model, _ = _finetune()
    with _api(local_platform) as api:
        listed = api.get("/ai/finetunes").json()["result"]
    (tone,) = [f for f in listed if f["name"] == name]
    assert tone["model"] == model == "@cf/meta/llama-3.3-70b-instruct-fp8-fast"
    assert tone["description"] == "Acme support tone (demo adapter)"


def test_the_chat_workers_answer_changes_with_the_adapter(local_platform: dict[str, Any]) -> None:
    name, model, system = _finetune()
    url = local_platform["endpoints"]["support"]
    headers = {"authorization": f"Bearer {local_platform['auth_token']}"}
    chat = httpx.post(f"{url}/chat", json={"prompt": QUESTION}, headers=headers, timeout=30)
    assert chat.status_code == 200, chat.text
    tuned = chat.json()["response"]
    messages = [{"role": "system", "content": system}, {"role": "user", "content": QUESTION}]
    with _api(local_platform) as api:
        base = api.post(f"/ai/run/{model}", json={"messages": messages, "max_tokens": 256})
    assert base.status_code == 200, base.text
    untuned = base.json()["result"]["response"]
    marker = "[cfai stand-in]"
    assert untuned.startswith(f"{marker} ") and "LoRA" not in untuned
    assert tuned == f"{marker} [LoRA {name}]{untuned[len(marker) :]}"


def test_openai_route_and_stream_apply_the_adapter_too(local_platform: dict[str, Any]) -> None:
    name, _, _ = _finetune()
    url = local_platform["endpoints"]["support"]
    headers = {"authorization": f"Bearer {local_platform['auth_token']}"}
    body = {"messages": [{"role": "user", "content": QUESTION}]}
    completion = httpx.post(f"{url}/v1/chat/completions", json=body, headers=headers, timeout=30)
    assert completion.status_code == 200, completion.text
    content = completion.json()["choices"][0]["message"]["content"]
    assert content.startswith(f"[cfai stand-in] [LoRA {name}] ")
    streamed = httpx.post(
        f"{url}/chat", json={"prompt": QUESTION, "stream": True}, headers=headers, timeout=30
    )
    assert streamed.status_code == 200
    text = "".join(
        json.loads(line[6:]).get("response", "")
        for line in streamed.text.splitlines()
        if line.startswith("data: {")
    )
    assert text.startswith(f"[cfai stand-in] [LoRA {name}] ")
