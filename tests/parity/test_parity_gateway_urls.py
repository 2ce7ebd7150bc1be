"""The gateway URL forms driven by the `openai` client, as Cloudflare's AI Gateway docs
point it (https://developers.cloudflare.com/ai-gateway/usage/providers/workersai/ and
.../usage/chat-completion/), and the universal endpoint over plain HTTP as the docs' curl
examples call it. Each request's log is checked with Cloudflare's Python SDK.
"""

from __future__ import annotations

import base64
from collections.abc import Callable

import cloudflare
import httpx
import numpy as np
import openai
import pytest

ROOT = "/v1/{account_id}/{gateway_id}"
MODEL = "@cf/meta/llama-3.1-8b-instruct"
EMBED = "@cf/baai/bge-small-en-v1.5"
OPENAI = "openai"


def logs(cf: cloudflare.Cloudflare, account: str, gateway_id: str) -> list[object]:
    return list(cf.ai_gateway.logs.list(gateway_id, account_id=account))


@pytest.fixture
def urls(api: dict[str, str], gateway_root: str) -> Callable[[str, str], str]:
    def url(gateway_id: str, rest: str) -> str:
        return f"{gateway_root}/v1/{api['account_id']}/{gateway_id}/{rest}"

    return url


@pytest.mark.parity(f"POST {ROOT}/workers-ai/v1/chat/completions", client=OPENAI)
def test_openai_chat_through_the_workers_ai_provider(
    cf: cloudflare.Cloudflare, account: str, api: dict[str, str],
    urls: Callable[[str, str], str], new_gateway: Callable[..., str],
) -> None:  # fmt: skip
    gateway_id = new_gateway(cache_ttl=60)

    with openai.OpenAI(base_url=urls(gateway_id, "workers-ai/v1"), api_key=api["token"]) as ai:
        first = ai.chat.completions.with_raw_response.create(
            model=MODEL, messages=[{"role": "user", "content": "Say hi"}], max_tokens=16
        )
        again = ai.chat.completions.with_raw_response.create(
            model=MODEL, messages=[{"role": "user", "content": "Say hi"}], max_tokens=16
        )
        stream = ai.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Say hi"}], stream=True
        )
        streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

    completion = first.parse()
    assert completion.object == "chat.completion" and completion.choices[0].message.content
    assert streamed
    assert first.headers["cf-aig-cache-status"] == "MISS"
    assert again.headers["cf-aig-cache-status"] == "HIT"
    entries = logs(cf, account, gateway_id)
    assert {(e.provider, e.model, e.path) for e in entries} == {  # type: ignore[attr-defined]
        ("workers-ai", MODEL, "v1/chat/completions")
    }
    assert len(entries) == 3


@pytest.mark.parity(f"POST {ROOT}/workers-ai/v1/chat/completions", client=OPENAI)
def test_openai_chat_with_an_unknown_model_logs_that_model(
    cf: cloudflare.Cloudflare, account: str, api: dict[str, str],
    urls: Callable[[str, str], str], new_gateway: Callable[..., str],
) -> None:  # fmt: skip
    gateway_id = new_gateway()

    with (
        openai.OpenAI(base_url=urls(gateway_id, "workers-ai/v1"), api_key=api["token"]) as ai,
        pytest.raises(openai.BadRequestError) as refused,
    ):
        ai.chat.completions.create(model="@cf/acme/none", messages=[{"role": "user", "content": "x"}])  # fmt: skip

    assert "@cf/acme/none" in str(refused.value.body)
    [entry] = logs(cf, account, gateway_id)
    assert (entry.model, entry.success, entry.status_code) == ("@cf/acme/none", False, 400)  # type: ignore[attr-defined]


@pytest.mark.parity(f"POST {ROOT}/workers-ai/v1/embeddings", client=OPENAI)
def test_openai_embeddings_through_the_workers_ai_provider(
    cf: cloudflare.Cloudflare, account: str, api: dict[str, str],
    urls: Callable[[str, str], str], new_gateway: Callable[..., str],
) -> None:  # fmt: skip
    gateway_id = new_gateway()

    with openai.OpenAI(base_url=urls(gateway_id, "workers-ai/v1"), api_key=api["token"]) as ai:
        out = ai.embeddings.create(model=EMBED, input=["a cat", "a dog"])

    assert [len(d.embedding) for d in out.data] == [384, 384]  # the SDK decodes base64
    [entry] = logs(cf, account, gateway_id)
    assert (entry.model, entry.path) == (EMBED, "v1/embeddings")  # type: ignore[attr-defined]


@pytest.mark.parity(f"POST {ROOT}/compat/chat/completions", client=OPENAI)
def test_openai_chat_through_the_unified_compat_endpoint(
    cf: cloudflare.Cloudflare, account: str, api: dict[str, str],
    urls: Callable[[str, str], str], new_gateway: Callable[..., str],
) -> None:  # fmt: skip
    gateway_id = new_gateway()

    with openai.OpenAI(base_url=urls(gateway_id, "compat"), api_key=api["token"]) as ai:
        out = ai.chat.completions.create(
            model=f"workers-ai/{MODEL}", messages=[{"role": "user", "content": "hello"}]
        )
        with pytest.raises(openai.APIStatusError) as elsewhere:
            ai.with_options(max_retries=0).chat.completions.create(
                model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hello"}]
            )

    assert out.choices[0].message.content and out.model == MODEL
    assert elsewhere.value.status_code == 502  # no third-party provider is reachable locally
    entries = {(e.provider, e.model, e.success) for e in logs(cf, account, gateway_id)}  # type: ignore[attr-defined]
    assert entries == {("workers-ai", MODEL, True), ("openai", "gpt-4o-mini", False)}


@pytest.mark.parity(f"POST {ROOT}/compat/embeddings", client=OPENAI)
def test_openai_embeddings_through_the_unified_compat_endpoint(
    api: dict[str, str], urls: Callable[[str, str], str], new_gateway: Callable[..., str]
) -> None:
    gateway_id = new_gateway()

    with openai.OpenAI(base_url=urls(gateway_id, "compat"), api_key=api["token"]) as ai:
        out = ai.embeddings.create(
            model=f"workers-ai/{EMBED}", input="hello", encoding_format="float"
        )

    assert len(out.data[0].embedding) == 384


def test_native_provider_path_keeps_the_rest_envelope(
    api: dict[str, str], urls: Callable[[str, str], str], new_gateway: Callable[..., str]
) -> None:
    gateway_id = new_gateway()

    response = httpx.post(
        urls(gateway_id, f"workers-ai/{EMBED}"), json={"text": ["hi"]},
        headers={"authorization": f"Bearer {api['token']}"},
    )  # fmt: skip

    body = response.json()
    assert response.status_code == 200 and body["success"] is True
    assert body["result"]["shape"] == [1, 384] and response.headers["cf-aig-log-id"]


def test_universal_endpoint_falls_back_and_names_the_step(
    cf: cloudflare.Cloudflare, account: str, api: dict[str, str],
    urls: Callable[[str, str], str], new_gateway: Callable[..., str],
) -> None:  # fmt: skip
    gateway_id = new_gateway()
    token = {"Authorization": f"Bearer {api['token']}", "Content-Type": "application/json"}
    steps = [
        {"provider": "openai", "endpoint": "chat/completions",
         "headers": {"Authorization": "Bearer sk-not-here"},
         "query": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}},
        {"provider": "workers-ai", "endpoint": MODEL, "headers": {"Authorization": "Bearer nope"},
         "query": {"prompt": "hi"}},
        {"provider": "workers-ai", "endpoint": EMBED, "headers": token,
         "query": {"text": ["hi"]}},
    ]  # fmt: skip

    response = httpx.post(urls(gateway_id, ""), json=steps)
    bare = httpx.post(urls(gateway_id, "").rstrip("/"), json=steps[2])
    failed = httpx.post(urls(gateway_id, ""), json=steps[:2])

    assert response.status_code == 200 and response.headers["cf-aig-step"] == "2"
    assert response.json()["result"]["shape"] == [1, 384]
    assert bare.status_code == 200 and bare.headers["cf-aig-step"] == "0"
    assert failed.status_code == 401 and failed.headers["cf-aig-step"] == "1"
    steps_logged = sorted(
        (e.step, e.provider, e.success)
        for e in logs(cf, account, gateway_id)  # type: ignore[attr-defined]
    )
    assert steps_logged == [
        (0, "openai", False), (0, "openai", False), (0, "workers-ai", True),
        (1, "workers-ai", False), (1, "workers-ai", False), (2, "workers-ai", True),
    ]  # fmt: skip


def test_openai_embeddings_base64_decode_to_the_float_vectors(
    api: dict[str, str], urls: Callable[[str, str], str], new_gateway: Callable[..., str]
) -> None:
    gateway_id = new_gateway()
    with openai.OpenAI(base_url=urls(gateway_id, "workers-ai/v1"), api_key=api["token"]) as ai:
        floats = ai.embeddings.create(model=EMBED, input="x", encoding_format="float")
        raw = ai.embeddings.with_raw_response.create(
            model=EMBED, input="x", encoding_format="base64"
        )
    packed = raw.http_response.json()["data"][0]["embedding"]
    decoded = np.frombuffer(base64.b64decode(packed), dtype="<f4")
    assert np.allclose(decoded, floats.data[0].embedding, atol=1e-6)
