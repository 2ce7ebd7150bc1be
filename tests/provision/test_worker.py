"""The `AiWorker` component under pulumi mocks: the rendered module and bindings uploaded,
the index dependency real, the token secret, the workers.dev URL; clear config errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi
import pytest
from support.pulumi_mocks import Mocks, unwrap_secrets, use_mocks

from cfai.config import load_platform
from cfai.errors import ConfigError
from cfai.provision import worker as worker_module
from cfai.provision.worker import AiWorker, AiWorkerArgs, auth_token, workers_subdomain
from cfai.render import RenderedWorker, render_platform

ACCOUNT = "0123456789abcdef0123456789abcdef"
TOKEN = "s3cret"
SCRIPT = "cloudflare:index/workersScript:WorkersScript"
SUBDOMAIN = "cloudflare:index/workersScriptSubdomain:WorkersScriptSubdomain"


@pytest.fixture
def mocks() -> Mocks:
    return use_mocks(
        config={"cfai:authToken": TOKEN, "cfai:workersSubdomain": "acme"},
        secret_keys=["cfai:authToken"],
    )


def _rendered(tmp_path: Path, key: str = "kb") -> RenderedWorker:
    platform = load_platform(
        {
            "account_id": ACCOUNT,
            "name_prefix": "cfai-staging",
            "indexes": {"docs": {"preset": "@cf/baai/bge-small-en-v1.5"}},
            "workers": {
                "kb": {
                    "kind": "rag",
                    "index": "docs",
                    "embedding_model": "@cf/baai/bge-small-en-v1.5",
                },
                "chat": {"kind": "chat", "compatibility_flags": ["nodejs_compat"]},
            },
        },
        base_dir=tmp_path,
    )
    return next(r for r in render_platform(platform, base_dir=tmp_path) if r.key == key)


def _declare(mocks: Mocks, args: AiWorkerArgs) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    @pulumi.runtime.test
    def program() -> Any:
        worker = AiWorker("kb", args)

        async def collect() -> None:
            seen["url"] = await worker.url.future()
            seen["url_after"] = {r.__class__.__name__ for r in await worker.url.resources()}
            seen["script_name"] = await worker.script_name.future()
            seen["template_sha256"] = await worker.template_sha256.future()
            seen["bindings_secret"] = await worker.script.bindings.is_secret()
            seen["script_urn"] = await worker.script.urn.future()
            seen["subdomain_urn"] = await worker.subdomain.urn.future()

        return collect()

    program()
    return seen


RAG_PROMPT = (
    "Answer the question using only the context. Say so when the context does not contain "
    "the answer."
)


def test_worker_uploads_the_rendered_module_with_ordered_bindings(
    mocks: Mocks, tmp_path: Path
) -> None:
    rendered = _rendered(tmp_path)
    index_name = pulumi.Output.from_input("cfai-staging-docs-from-the-resource")
    seen = _declare(
        mocks,
        AiWorkerArgs(
            account_id=ACCOUNT,
            rendered=rendered,
            workers_subdomain=workers_subdomain(),
            auth_token=auth_token(),
            index_names={"cfai-staging-docs": index_name},
        ),
    )
    script = mocks.one(SCRIPT)
    assert script["content"] == rendered.source
    assert script["scriptName"] == "cfai-staging-kb"
    assert script["mainModule"] == "index.js"
    assert (script["compatibilityDate"], script["compatibilityFlags"]) == ("2025-09-01", [])
    assert unwrap_secrets(script["bindings"]) == [
        {"type": "ai", "name": "AI"},
        {
            "type": "vectorize",
            "name": "VECTORIZE",
            "indexName": "cfai-staging-docs-from-the-resource",
        },
        {"type": "plain_text", "name": "CHUNK_OVERLAP", "text": "100"},
        {"type": "plain_text", "name": "CHUNK_SIZE", "text": "800"},
        {"type": "plain_text", "name": "DIMENSIONS", "text": "384"},
        {"type": "plain_text", "name": "EMBEDDING_MODEL", "text": "@cf/baai/bge-small-en-v1.5"},
        {"type": "plain_text", "name": "EMBED_BATCH", "text": "100"},
        {"type": "plain_text", "name": "MAX_TOKENS", "text": "256"},
        {"type": "plain_text", "name": "MODEL", "text": "@cf/meta/llama-3.1-8b-instruct"},
        {
            "type": "plain_text",
            "name": "MODEL_TRAITS",
            "text": '{"form": "native", "reasoning": "none", "vision": "none"}',
        },
        {"type": "plain_text", "name": "POOLING", "text": "mean"},
        {"type": "plain_text", "name": "SYSTEM_PROMPT", "text": RAG_PROMPT},
        {"type": "plain_text", "name": "TEMPERATURE", "text": "0.6"},
        {"type": "plain_text", "name": "TOP_K", "text": "3"},
        {"type": "secret_text", "name": "AUTH_TOKEN", "text": TOKEN},
    ]
    assert seen["bindings_secret"] is True
    assert TOKEN not in json.dumps({k: v for k, v in script.items() if k != "bindings"})
    assert mocks.one(SUBDOMAIN) == {
        "accountId": ACCOUNT,
        "scriptName": "cfai-staging-kb",
        "enabled": True,
    }
    assert seen["url"] == "https://cfai-staging-kb.acme.workers.dev"
    assert "WorkersScriptSubdomain" in seen["url_after"], "the URL waits for workers.dev"
    assert (seen["script_name"], seen["template_sha256"]) == ("cfai-staging-kb", rendered.sha256)
    assert (
        "cfai:index:AiWorker$cloudflare:index/workersScript:WorkersScript::kb" in seen["script_urn"]
    )
    assert seen["subdomain_urn"].endswith(
        "cfai:index:AiWorker$cloudflare:index/workersScriptSubdomain:WorkersScriptSubdomain::kb-subdomain"
    )


def test_worker_passes_compatibility_flags(mocks: Mocks, tmp_path: Path) -> None:
    rendered = _rendered(tmp_path, "chat")
    _declare(
        mocks,
        AiWorkerArgs(ACCOUNT, rendered, workers_subdomain="acme", auth_token=auth_token()),
    )
    assert mocks.one(SCRIPT)["compatibilityFlags"] == ["nodejs_compat"]


def test_worker_without_an_index_resource_for_its_binding_fails(
    mocks: Mocks, tmp_path: Path
) -> None:
    args = AiWorkerArgs(ACCOUNT, _rendered(tmp_path), "acme", auth_token=auth_token())
    with pytest.raises(ValueError, match=r"binding VECTORIZE needs index 'cfai-staging-docs'"):
        AiWorker("kb", args)


def test_worker_with_a_secret_binding_needs_the_auth_token(mocks: Mocks, tmp_path: Path) -> None:
    pulumi.runtime.set_all_config({"cfai:workersSubdomain": "acme"}, secret_keys=[])
    assert auth_token() is None
    args = AiWorkerArgs(ACCOUNT, _rendered(tmp_path, "chat"), "acme", auth_token=None)
    with pytest.raises(
        ConfigError, match=r"cfai:authToken: not set, and Worker 'cfai-staging-chat'"
    ):
        AiWorker("chat", args)


@pytest.mark.parametrize(
    ("value", "hint"),
    [("acme.workers.dev", r"only the first label: 'acme'"), ("Acme_Corp", r"lowercase letters")],
)
def test_worker_refuses_a_malformed_workers_subdomain(
    mocks: Mocks, tmp_path: Path, value: str, hint: str
) -> None:
    pulumi.runtime.set_all_config({"cfai:workersSubdomain": value}, secret_keys=[])
    with pytest.raises(ConfigError, match=rf"cfai:workersSubdomain: '{value}' is not .*{hint}"):
        workers_subdomain()
    args = AiWorkerArgs(ACCOUNT, _rendered(tmp_path, "chat"), value, auth_token=None)
    with pytest.raises(ConfigError, match=r"cfai:workersSubdomain"):
        AiWorker("chat", args)


def test_exported_members() -> None:
    assert sorted(worker_module.__all__) == [
        "AiWorker",
        "AiWorkerArgs",
        "CANARIED_INPUTS",
        "assets_directory",
        "auth_token",
        "check_subdomain",
        "missing_auth_token",
        "workers_subdomain",
    ]
