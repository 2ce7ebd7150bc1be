"""Workers AI REST driven by Cloudflare's Python SDK, the `openai` client (the
OpenAI-compatible ``ai/v1`` routes) and `wrangler ai models`."""

from __future__ import annotations

import json

import cloudflare
import openai
import pytest
from conftest import Wrangler

AI = "/accounts/{account_id}/ai"
MODEL = "@cf/meta/llama-3.1-8b-instruct"
EMBED = "@cf/baai/bge-small-en-v1.5"


@pytest.mark.parity(f"POST {AI}/run/{{model_name}}", client="python-sdk")
def test_run_a_model(cf: cloudflare.Cloudflare, account: str) -> None:
    out = cf.ai.run(MODEL, account_id=account, prompt="Say hello", max_tokens=8)
    embedded = cf.ai.run(EMBED, account_id=account, text=["a", "b"])

    assert isinstance(out, dict) and out["response"]
    assert isinstance(embedded, dict) and embedded["shape"] == [2, 384]


@pytest.mark.parity(f"POST {AI}/run/{{model_name}}", client="python-sdk")
def test_run_an_unknown_model_is_5007(cf: cloudflare.Cloudflare, account: str) -> None:
    with pytest.raises(cloudflare.BadRequestError) as refused:
        cf.ai.run("@cf/acme/none", account_id=account, prompt="x")

    assert refused.value.body["errors"][0]["code"] == 5007  # type: ignore[index]


@pytest.mark.parity(f"GET {AI}/models/search", client="python-sdk")
def test_search_models_pages_through_the_catalog(cf: cloudflare.Cloudflare, account: str) -> None:
    every = list(cf.ai.models.list(account_id=account, per_page=5))
    embeddings = list(cf.ai.models.list(account_id=account, task="Text Embeddings"))

    names = {m["name"] for m in every}  # type: ignore[index]
    assert MODEL in names and EMBED in names
    assert {m["task"]["name"] for m in embeddings} == {"Text Embeddings"}  # type: ignore[index]


@pytest.mark.parity("GET /accounts/{account_id}/ai/models/search", client="wrangler")
def test_wrangler_ai_models(wrangler: Wrangler) -> None:
    result = wrangler("ai", "models", "--json")

    assert result.returncode == 0, result.stderr
    models = json.loads(result.stdout[result.stdout.index("[") :])
    assert MODEL in {m["name"] for m in models}


@pytest.mark.parity(f"POST {AI}/v1/chat/completions", client="openai")
def test_openai_chat_completions(api: dict[str, str], account: str) -> None:
    base = f"{api['base_url']}/accounts/{account}/ai/v1"
    with openai.OpenAI(base_url=base, api_key=api["token"]) as ai:
        out = ai.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hello"}], max_tokens=8
        )

    assert out.object == "chat.completion" and out.choices[0].message.content
    assert out.usage is not None and out.usage.completion_tokens <= 8


@pytest.mark.parity(f"POST {AI}/v1/responses", client="openai")
def test_openai_responses(api: dict[str, str], account: str) -> None:
    base = f"{api['base_url']}/accounts/{account}/ai/v1"
    with openai.OpenAI(base_url=base, api_key=api["token"]) as ai:
        out = ai.responses.create(
            model="@cf/openai/gpt-oss-20b",
            instructions="The Eiffel Tower is 330 metres tall.",
            input="How tall is the Eiffel Tower?",
            reasoning={"effort": "low"},
        )
        with pytest.raises(openai.BadRequestError):  # Responses serve gpt-oss only
            ai.responses.create(model=MODEL, input="hello")

    assert out.object == "response" and out.status == "completed"
    assert "330 metres" in out.output_text
    assert [item.type for item in out.output] == ["reasoning", "message"]
    assert out.usage is not None and out.usage.output_tokens > 0


@pytest.mark.parity(f"POST {AI}/v1/embeddings", client="openai")
def test_openai_embeddings(api: dict[str, str], account: str) -> None:
    base = f"{api['base_url']}/accounts/{account}/ai/v1"
    with openai.OpenAI(base_url=base, api_key=api["token"]) as ai:
        out = ai.embeddings.create(model=EMBED, input=["one", "two"])

    assert [len(d.embedding) for d in out.data] == [384, 384]
