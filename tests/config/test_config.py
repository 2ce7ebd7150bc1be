"""The platform declaration: defaults, cross-checks with their exact paths, loading."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from cfai.config import load_file, load_platform, load_stack
from cfai.errors import ConfigError
from cfai.kinds.chat import ChatWorkerConfig
from cfai.kinds.rag import RagWorkerConfig

ACCOUNT = "0123456789abcdef0123456789abcdef"
REPO = Path(__file__).resolve().parents[2]


def platform(**sections: Any) -> dict[str, Any]:
    return {"account_id": ACCOUNT, **sections}


def problems(data: dict[str, Any], **kw: Any) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_platform(data, **kw)
    return [str(p) for p in info.value.problems]


def test_load_defaults_are_cloudflare_defaults() -> None:
    p = load_platform(
        platform(
            gateways={"main": {}},
            indexes={"docs": {"preset": "@cf/baai/bge-base-en-v1.5"}},
            workers={"a": {"kind": "chat"}, "kb": {"kind": "rag", "index": "docs"}},
        )
    )
    chat = p.workers["a"]
    assert isinstance(chat, ChatWorkerConfig)
    assert chat.max_tokens == 256 and chat.temperature == 0.6 and chat.auth is True
    assert p.gateways["main"].collect_logs is True and p.gateways["main"].cache_ttl is None
    assert (
        p.indexes["docs"].resolved_dimensions == 768
        and p.indexes["docs"].resolved_metric == "cosine"
    )
    assert isinstance(p.workers["kb"], RagWorkerConfig) and p.workers["kb"].top_k == 3


def test_load_unknown_index_names_the_path_and_defined_indexes() -> None:
    found = problems(
        platform(
            indexes={"docs": {"preset": "@cf/baai/bge-base-en-v1.5"}},
            workers={"qa": {"kind": "rag", "index": "docz"}},
        )
    )
    assert found == ["workers.qa.index: unknown index 'docz' (defined: docs)"]


def test_load_unknown_gateway_in_chat_and_custom() -> None:
    found = problems(
        platform(
            gateways={"main": {}},
            workers={
                "a": {"kind": "chat", "gateway": "mian"},
                "c": {
                    "kind": "custom",
                    "main": "x.js",
                    "bindings": {"gateway": {"gateway": "other"}},
                },
            },
        )
    )
    assert "workers.a.gateway: unknown gateway 'mian' (defined: main)" in found
    assert "workers.c.bindings.gateway.gateway: unknown gateway 'other' (defined: main)" in found


def test_load_dimension_mismatch_shows_both_numbers() -> None:
    found = problems(
        platform(
            indexes={"docs": {"dimensions": 384, "metric": "cosine"}},
            workers={
                "kb": {
                    "kind": "rag",
                    "index": "docs",
                    "embedding_model": "@cf/baai/bge-large-en-v1.5",
                }
            },
        )
    )
    assert len(found) == 1
    assert found[0].startswith("workers.kb.index: index 'docs' has 384 dimensions")
    assert "makes 1024" in found[0]


def test_load_model_task_must_fit_worker_kind() -> None:
    found = problems(
        platform(
            indexes={"docs": {"preset": "@cf/baai/bge-base-en-v1.5"}},
            workers={
                "a": {"kind": "chat", "model": "@cf/baai/bge-base-en-v1.5"},
                "kb": {
                    "kind": "rag",
                    "index": "docs",
                    "embedding_model": "@cf/meta/llama-3.1-8b-instruct",
                },
                "img": {"kind": "image", "model": "@cf/meta/llama-3.1-8b-instruct"},
                "u": {"kind": "chat", "model": "@cf/nobody/nothing"},
            },
        )
    )
    text = "\n".join(found)
    assert (
        "workers.a.model: a chat worker needs a text-generation model but '@cf/baai/bge-base-en-v1.5' is text-embeddings"
        in text
    )
    assert "workers.kb.embedding_model: a rag worker needs a text-embeddings model" in text
    assert "workers.img.model: an image worker needs a text-to-image model" in text
    assert "workers.u.model: unknown Workers AI model '@cf/nobody/nothing'" in text


def test_load_response_schema_must_be_a_valid_json_schema() -> None:
    found = problems(
        platform(
            workers={
                "facts": {
                    "kind": "chat",
                    "response_schema": {
                        "type": "object",
                        "properties": {"n": {"type": "integer", "minimum": "one"}},
                        "required": "n",
                    },
                },
                "ok": {
                    "kind": "chat",
                    "response_schema": {
                        "type": "object",
                        "$defs": {"even": {"type": "integer", "multipleOf": 2}},
                        "properties": {"n": {"$ref": "#/$defs/even"}},
                    },
                },
            }
        )
    )
    assert found == [
        "workers.facts.response_schema.properties.n.minimum: not a valid JSON Schema: "
        "'one' is not of type 'number'",
        "workers.facts.response_schema.required: not a valid JSON Schema: "
        "'n' is not of type 'array'",
    ]


def test_load_names_outside_cloudflare_limits() -> None:
    long_key = "a" * 70
    found = problems(platform(gateways={"Main GW": {}}, workers={long_key: {"kind": "chat"}}))
    assert (
        "gateways.Main GW: gateway name 'Main GW' must use lowercase letters, digits, '-' and '_'"
        in found
    )
    assert any(
        f.startswith(f"workers.{long_key}: worker name") and "Cloudflare allows 63" in f
        for f in found
    )


def test_load_ranges_name_the_field() -> None:
    found = problems(
        platform(
            gateways={"g": {"cache_ttl": 5, "rate_limit": {"limit": 0, "interval": 60}}},
            indexes={"docs": {"preset": "@cf/baai/bge-base-en-v1.5"}},
            workers={
                "a": {"kind": "chat", "temperature": 9, "max_tokens": 0},
                "kb": {"kind": "rag", "index": "docs", "top_k": 80},
                "i": {
                    "kind": "image",
                    "model": "@cf/stabilityai/stable-diffusion-xl-base-1.0",
                    "steps": 30,
                    "max_width": 4000,
                },
            },
        )
    )
    paths = {f.split(":")[0] for f in found}
    assert {
        "gateways.g.cache_ttl",
        "gateways.g.rate_limit.limit",
        "workers.a.temperature",
        "workers.a.max_tokens",
        "workers.kb.top_k",
        "workers.i.max_width",
    } <= paths
    assert any("top_k 80 exceeds Vectorize's topK limit of 50" in f for f in found)


def test_load_image_limits_from_the_model() -> None:
    found = problems(
        platform(
            workers={
                "sdxl": {
                    "kind": "image",
                    "model": "@cf/stabilityai/stable-diffusion-xl-base-1.0",
                    "steps": 25,
                },
                "flux": {
                    "kind": "image",
                    "model": "@cf/black-forest-labs/flux-1-schnell",
                    "max_width": 512,
                },
            }
        )
    )
    assert (
        "workers.sdxl.steps: steps 25 exceeds @cf/stabilityai/stable-diffusion-xl-base-1.0's maximum of 20"
        in found
    )
    assert any(
        f.startswith("workers.flux.max_width: @cf/black-forest-labs/flux-1-schnell makes 1024x1024")
        for f in found
    )


def test_load_reports_every_problem_at_once() -> None:
    found = problems(
        {
            "account_id": "not-hex",
            "gateways": {"g": {"cache_ttl": 1}},
            "indexes": {"docs": {"dimensions": 384, "metric": "cosine"}},
            "workers": {
                "typo": {"kind": "chat", "modle": "x"},
                "kb": {"kind": "rag", "index": "docs"},
                "what": {"kind": "video"},
            },
        }
    )
    assert len(found) == 5
    assert "workers.typo.modle: unknown setting (check the spelling)" in found
    (kinds,) = [f for f in found if f.startswith("workers.what: kind must be one of: ")]
    listed = kinds.removeprefix("workers.what: kind must be one of: ").split(", ")
    assert listed == sorted(listed) and {"chat", "custom", "image", "rag"} <= set(listed)
    assert any(f.startswith("account_id: must be the 32 lowercase hex digits") for f in found)
    assert any(f.startswith("workers.kb.index: index 'docs' has 384 dimensions") for f in found)


def test_load_index_needs_preset_or_dimensions_and_metric() -> None:
    found = problems(
        platform(
            indexes={
                "a": {"dimensions": 384},
                "b": {"preset": "@cf/baai/bge-base-en-v1.5", "metric": "cosine"},
                "c": {"preset": "nope"},
            }
        )
    )
    assert "indexes.a: give preset, or both dimensions and metric" in found
    assert "indexes.b: give either preset or dimensions+metric, not both" in found
    assert any(f.startswith("indexes.c: unknown preset 'nope'") for f in found)


def test_load_custom_worker_module_must_exist(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "ok.js").write_text("export default {}")
    data = platform(
        workers={
            "ok": {"kind": "custom", "main": "src/ok.js"},
            "gone": {"kind": "custom", "main": "src/gone.js"},
            "esc": {"kind": "custom", "main": "../x.js"},
        }
    )
    found = problems(data, base_dir=tmp_path)
    assert found[0].startswith("workers.gone.main: file 'src/gone.js' not found")
    assert "workers.esc.main: '../x.js' must be a path inside the project" in found


def test_load_unquoted_account_id_says_to_quote_it() -> None:
    found = problems({"account_id": 0})
    assert found == ["account_id: must be a quoted string in YAML (got int 0)"]


def test_load_stack_round_trip_with_secure_values(tmp_path: Path) -> None:
    data = {
        "config": {
            "cfai:authToken": {"secure": "v1:abcdefgh"},
            "cloudflare:apiToken": {"secure": "v1:zzz"},
            "cfai:platform": platform(
                workers={"a": {"kind": "chat", "system_prompt": "Be brief."}}
            ),
        }
    }
    (tmp_path / "Pulumi.yaml").write_text("name: acme\nruntime: python\n")
    (tmp_path / "Pulumi.dev.yaml").write_text(yaml.safe_dump(data))
    p = load_stack("dev", tmp_path)
    assert p.name_prefix == "acme-dev"
    assert p.physical_name("a") == "acme-dev-a"
    assert p.workers["a"].system_prompt == "Be brief."  # type: ignore[union-attr]
    # The same platform reloaded from its own dump is equal.
    again = load_platform(p.model_dump(mode="json"))
    assert again == p
    assert load_file(tmp_path / "Pulumi.dev.yaml").workers == p.workers


def test_load_stack_unknown_names_the_known_stacks(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.staging.yaml").write_text("config: {}\n")
    with pytest.raises(ConfigError) as info:
        load_stack("prod", tmp_path)
    assert "no stack 'prod'" in str(info.value) and "(stacks: staging)" in str(info.value)


@pytest.mark.parametrize("stack", ["local", "staging", "prod"])
def test_load_shipped_stacks_are_valid(stack: str) -> None:
    p = load_stack(stack, REPO)
    kinds = {w.kind for w in p.workers.values()}
    assert {"chat", "rag", "image"} <= kinds
