"""The `Platform` component and `__main__.py` under pulumi mocks (preview=False): every
resource once with the right inputs, parents, real dependencies, the secret kept secret,
outputs shaped like the local platform's, config errors without a stack trace."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pulumi
import pytest
from pulumi.runtime import rpc
from support.pulumi_mocks import Mocks, RecordingMonitor, unwrap_secrets, use_mocks

from cfai.config import PlatformConfig, load_platform
from cfai.errors import ConfigError
from cfai.local.platform import local_outputs
from cfai.local.state import Secrets
from cfai.provision import platform as platform_module
from cfai.provision.platform import OUTPUT_KEYS, PlatformArgs
from cfai.provision.platform import Platform as PlatformComponent
from cfai.render import module_path, render_platform, setting_text, write_rendered

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "0123456789abcdef0123456789abcdef"
TOKEN = "s3cret"
CONFIG = {"cfai:authToken": TOKEN, "cfai:workersSubdomain": "acme"}
RAG_PROMPT = (
    "Answer the question using only the context. Say so when the context does not contain "
    "the answer."
)

AI_GATEWAY = "cloudflare:index/aiGateway:AiGateway"
SCRIPT = "cloudflare:index/workersScript:WorkersScript"
SUBDOMAIN = "cloudflare:index/workersScriptSubdomain:WorkersScriptSubdomain"
INDEX = "pulumi-python:dynamic/cloudflare:VectorizeIndex"


@pytest.fixture
def cloud() -> tuple[Mocks, RecordingMonitor]:
    mocks = Mocks()
    monitor = RecordingMonitor(mocks)
    use_mocks(mocks, config=CONFIG, secret_keys=["cfai:authToken"], monitor=monitor)
    return mocks, monitor


def _platform(tmp_path: Path) -> PlatformConfig:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "edge.js").write_text(
        "export default { fetch: (_req, env) => new Response(env.MODE) };\n"
    )
    return load_platform(
        {
            "account_id": ACCOUNT,
            "name_prefix": "cfai-staging",
            "gateways": {
                "main": {
                    "cache_ttl": 3600,
                    "rate_limit": {"limit": 100, "interval": 60, "technique": "sliding"},
                    "authentication": True,
                },
                "batch": {},
            },
            "indexes": {
                "docs": {
                    "preset": "@cf/baai/bge-base-en-v1.5",
                    "description": "Product documentation",
                    "metadata_indexes": {"topic": "string"},
                },
                "notes": {"dimensions": 384, "metric": "euclidean"},
            },
            "workers": {
                "assistant": {"kind": "chat", "gateway": "main"},
                "kb": {"kind": "rag", "index": "docs", "gateway": "batch"},
                "studio": {"kind": "image", "auth": False},
                "edge": {
                    "kind": "custom",
                    "main": "src/edge.js",
                    "bindings": {
                        "ai": "AI",
                        "vectorize": {"binding": "NOTES", "index": "notes"},
                        "gateway": {"gateway": "main"},
                        "vars": {"MODE": "staging"},
                        "auth_token": "EDGE_TOKEN",
                    },
                },
            },
        },
        base_dir=tmp_path,
    )


def _deploy(platform: PlatformConfig, base_dir: Path) -> dict[str, Any]:
    """Run a program declaring `platform`; return its resolved outputs, secretness and URNs."""
    seen: dict[str, Any] = {}

    @pulumi.runtime.test
    def program() -> Any:
        component = PlatformComponent("cfai", PlatformArgs.from_config(platform, base_dir=base_dir))

        async def collect() -> None:
            seen["outputs"] = {
                k: await pulumi.Output.from_input(v).future() for k, v in component.outputs.items()
            }
            seen["secret"] = {
                k: await pulumi.Output.from_input(v).is_secret()
                for k, v in component.outputs.items()
            }
            seen["urn"] = {
                "platform": await component.urn.future(),
                **{
                    f"index:{k}": await r.urn.future() for k, r in component.index_resources.items()
                },
                **{
                    f"gateway:{k}": await g.resource.urn.future()
                    for k, g in component.gateway_resources.items()
                },
                **{
                    f"script:{k}": await w.script.urn.future()
                    for k, w in component.worker_resources.items()
                },
            }

        return collect()

    program()
    assert seen, "the program ran"
    return seen


def _without_secrets(value: Any) -> Any:
    if isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig:
        return "[secret]"
    if isinstance(value, dict):
        return {k: _without_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_secrets(v) for v in value]
    return value


def test_platform_registers_each_resource_once_with_its_type(
    cloud: tuple[Mocks, RecordingMonitor], tmp_path: Path
) -> None:
    mocks, _ = cloud
    _deploy(_platform(tmp_path), tmp_path)
    names = Counter((r.typ, r.name) for r in mocks.registered)
    assert set(names.values()) == {1}
    assert sorted(names) == sorted(
        [
            ("cfai:index:Platform", "cfai"),
            ("cfai:index:Gateway", "cfai-main"),
            ("cfai:index:Gateway", "cfai-batch"),
            (AI_GATEWAY, "cfai-main"),
            (AI_GATEWAY, "cfai-batch"),
            (INDEX, "cfai-docs"),
            (INDEX, "cfai-notes"),
            *[("cfai:index:AiWorker", f"cfai-{w}") for w in ("assistant", "kb", "studio", "edge")],
            *[(SCRIPT, f"cfai-{w}") for w in ("assistant", "kb", "studio", "edge")],
            *[(SUBDOMAIN, f"cfai-{w}-subdomain") for w in ("assistant", "kb", "studio", "edge")],
        ]
    )


def test_platform_maps_indexes_and_gateways_with_physical_names(
    cloud: tuple[Mocks, RecordingMonitor], tmp_path: Path
) -> None:
    mocks, _ = cloud
    _deploy(_platform(tmp_path), tmp_path)
    docs = {k: v for k, v in mocks.one(INDEX, "cfai-docs").items() if k != "__provider"}
    assert docs == {
        "accountId": ACCOUNT,
        "indexName": "cfai-staging-docs",
        "dimensions": 768,
        "metric": "cosine",
        "description": "Product documentation",
        "metadataIndexes": [{"propertyName": "topic", "indexType": "string"}],
    }
    notes = mocks.one(INDEX, "cfai-notes")
    assert (notes["indexName"], notes["dimensions"], notes["metric"]) == (
        "cfai-staging-notes",
        384,
        "euclidean",
    )
    assert "description" not in notes
    main = mocks.one(AI_GATEWAY, "cfai-main")
    assert (main["aiGatewayId"], main["cacheTtl"], main["rateLimitingTechnique"]) == (
        "cfai-staging-main",
        3600,
        "sliding",
    )
    assert main["authentication"] is True
    assert mocks.one(AI_GATEWAY, "cfai-batch")["aiGatewayId"] == "cfai-staging-batch"


def test_platform_uploads_the_rendered_bytes_with_every_binding(
    cloud: tuple[Mocks, RecordingMonitor], tmp_path: Path
) -> None:
    mocks, _ = cloud
    platform = _platform(tmp_path)
    _deploy(platform, tmp_path)
    rendered = {r.key: r for r in render_platform(platform, base_dir=tmp_path)}
    write_rendered({"staging": list(rendered.values())}, tmp_path / "workers")
    for key, r in rendered.items():
        inputs = mocks.one(SCRIPT, f"cfai-{key}")
        written = module_path(tmp_path / "workers", key).read_bytes()
        assert inputs["content"].encode("utf-8") == written, key
        assert inputs["scriptName"] == r.script_name == f"cfai-staging-{key}"
        assert inputs["mainModule"] == "index.js"
        assert inputs["compatibilityDate"] == platform.compatibility_date
        assert {"type": "ai", "name": "AI"} in unwrap_secrets(inputs["bindings"]), key

    def bindings(key: str) -> list[dict[str, Any]]:
        return unwrap_secrets(mocks.one(SCRIPT, f"cfai-{key}")["bindings"])

    image_limits = {
        "content_type": "image/jpeg",
        "default_height": 1024,
        "default_steps": 4,
        "default_width": 1024,
        "max_height": 1024,
        "max_steps": 8,
        "max_width": 1024,
        "min_height": 1024,
        "min_width": 1024,
        "sizable": False,
        "steps_field": "steps",
    }

    assert bindings("kb") == [
        {"type": "ai", "name": "AI"},
        {"type": "vectorize", "name": "VECTORIZE", "indexName": "cfai-staging-docs"},
        {"type": "plain_text", "name": "CHUNK_OVERLAP", "text": "100"},
        {"type": "plain_text", "name": "CHUNK_SIZE", "text": "800"},
        {"type": "plain_text", "name": "DIMENSIONS", "text": "768"},
        {"type": "plain_text", "name": "EMBEDDING_MODEL", "text": "@cf/baai/bge-base-en-v1.5"},
        {"type": "plain_text", "name": "EMBED_BATCH", "text": "100"},
        {"type": "plain_text", "name": "GATEWAY_ID", "text": "cfai-staging-batch"},
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
    assert bindings("edge") == [
        {"type": "ai", "name": "AI"},
        {"type": "vectorize", "name": "NOTES", "indexName": "cfai-staging-notes"},
        {"type": "plain_text", "name": "GATEWAY_ID", "text": "cfai-staging-main"},
        {"type": "plain_text", "name": "MODE", "text": "staging"},
        {"type": "secret_text", "name": "EDGE_TOKEN", "text": TOKEN},
    ]
    assert bindings("studio") == [
        {"type": "ai", "name": "AI"},
        {"type": "plain_text", "name": "IMAGE", "text": setting_text(image_limits)},
        {"type": "plain_text", "name": "MODEL", "text": "@cf/black-forest-labs/flux-1-schnell"},
    ]
    # flux makes 1024x1024 only, with 1 to 8 steps (4 by default), as base64 JPEG.
    assert image_limits["sizable"] is False and image_limits["max_steps"] == 8
    for key in rendered:
        sub = mocks.one(SUBDOMAIN, f"cfai-{key}-subdomain")
        assert sub == {"accountId": ACCOUNT, "scriptName": f"cfai-staging-{key}", "enabled": True}


def test_platform_children_are_parented_and_workers_wait_for_their_index_and_gateway(
    cloud: tuple[Mocks, RecordingMonitor], tmp_path: Path
) -> None:
    _, monitor = cloud
    urn = _deploy(_platform(tmp_path), tmp_path)["urn"]
    platform_urn = urn["platform"]
    for child in (urn["index:docs"], urn["index:notes"]):
        assert monitor.parents[child] == platform_urn
    for key in ("main", "batch"):
        assert "cfai:index:Gateway$cloudflare:index/aiGateway:AiGateway" in urn[f"gateway:{key}"]
        assert monitor.parents[urn[f"gateway:{key}"]].endswith(f"cfai:index:Gateway::cfai-{key}")
    for key in ("assistant", "kb", "studio", "edge"):
        script = urn[f"script:{key}"]
        assert "cfai:index:AiWorker$cloudflare:index/workersScript:WorkersScript" in script
        assert monitor.parents[script].endswith(f"cfai:index:AiWorker::cfai-{key}")
        assert monitor.parents[monitor.parents[script]] == platform_urn

    deps = {
        key: monitor.property_deps[urn[f"script:{key}"]].get("bindings", set())
        for key in ("assistant", "kb", "studio", "edge")
    }
    assert deps["kb"] == {urn["index:docs"], urn["gateway:batch"]}
    assert deps["edge"] == {urn["index:notes"], urn["gateway:main"]}
    assert deps["assistant"] == {urn["gateway:main"]}
    assert deps["studio"] == set()


def test_platform_keeps_the_auth_token_secret_everywhere(
    cloud: tuple[Mocks, RecordingMonitor], tmp_path: Path
) -> None:
    mocks, _ = cloud
    seen = _deploy(_platform(tmp_path), tmp_path)
    assert seen["outputs"]["auth_token"] == TOKEN
    assert seen["secret"]["auth_token"] is True
    assert not any(seen["secret"][k] for k in OUTPUT_KEYS if k != "auth_token")
    sent = 0
    for r in mocks.registered:
        assert TOKEN not in json.dumps(_without_secrets(r.inputs), default=str), (r.typ, r.name)
        sent += TOKEN in json.dumps(r.inputs, default=str)
    assert sent == 3, "assistant, kb and edge carry the token (inside a secret)"
    # The SDK pushes secretness up: one secret binding makes the whole list secret.
    kb = mocks.one(SCRIPT, "cfai-kb")["bindings"]
    assert kb.get(rpc._special_sig_key) == rpc._special_secret_sig
    assert isinstance(mocks.one(SCRIPT, "cfai-studio")["bindings"], list)


def test_platform_outputs_have_the_local_platform_shape(
    cloud: tuple[Mocks, RecordingMonitor], tmp_path: Path
) -> None:
    platform = _platform(tmp_path)
    outputs = _deploy(platform, tmp_path)["outputs"]
    rendered = render_platform(platform, base_dir=tmp_path)
    # What `cfai local up` writes to .cfai/local/outputs.json for the same platform.
    local = local_outputs(
        platform,
        rendered,
        stack="staging",
        ports={r.key: 8000 + i for i, r in enumerate(rendered)},
        emulator_url="http://127.0.0.1:1",
        secrets=Secrets(auth_token="t", api_token="a"),
    ).to_json()
    assert set(outputs) == set(local) - {"api"} == set(OUTPUT_KEYS)
    for section in ("endpoints", "workers", "gateways", "indexes"):
        assert set(outputs[section]) == set(local[section]), section
        for key, entry in outputs[section].items():
            if isinstance(entry, dict):
                assert set(entry) == set(local[section][key]), (section, key)
                assert None not in [v for k, v in entry.items() if k != "gateway"], (section, key)
    assert (outputs["target"], outputs["stack"]) == ("cloudflare", "staging")
    assert outputs["endpoints"]["kb"] == "https://cfai-staging-kb.acme.workers.dev"
    kb = outputs["workers"]["kb"]
    local_kb = local["workers"]["kb"]
    assert {k: v for k, v in kb.items() if k != "url"} == {
        k: v for k, v in local_kb.items() if k != "url"
    }
    assert kb["url"] == outputs["endpoints"]["kb"]
    assert outputs["indexes"] == local["indexes"]
    assert outputs["gateways"]["main"] == {
        "id": "cfai-staging-main",
        "logs_url": f"https://api.cloudflare.com/client/v4/accounts/{ACCOUNT}/ai-gateway/gateways/cfai-staging-main/logs",
    }


def test_platform_args_require_the_workers_subdomain_and_auth_token(
    cloud: tuple[Mocks, RecordingMonitor], tmp_path: Path
) -> None:
    platform = _platform(tmp_path)
    pulumi.runtime.set_all_config({"cfai:authToken": TOKEN}, secret_keys=["cfai:authToken"])
    with pytest.raises(ConfigError, match=r"cfai:workersSubdomain: not set: .*pulumi config set"):
        PlatformArgs.from_config(platform, base_dir=tmp_path)
    pulumi.runtime.set_all_config({"cfai:workersSubdomain": "acme"}, secret_keys=[])
    with pytest.raises(
        ConfigError, match=r"cfai:authToken: not set, .*pulumi config set --secret cfai:authToken"
    ):
        PlatformArgs.from_config(platform, base_dir=tmp_path)
    no_workers = platform.model_copy(update={"workers": {}})
    args = PlatformArgs.from_config(no_workers, base_dir=tmp_path)
    assert (args.rendered, args.workers_subdomain) == ((), None)


def test_exported_members() -> None:
    assert sorted(platform_module.__all__) == ["OUTPUT_KEYS", "Platform", "PlatformArgs"]
