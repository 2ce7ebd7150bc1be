"""`__main__.py`, the Pulumi program, by Pulumi's conventions (under pulumi mocks): the
declaration comes from Pulumi's config ``cfai:platform`` however it got there, physical names
default to ``<project>-<stack>``, and the Cloudflare API endpoint is the provider's own
``cloudflare:baseUrl`` / ``cloudflare:apiToken`` (or environment), which the Vectorize
dynamic provider and the gateways' log URLs follow too."""

from __future__ import annotations

import json
import runpy
from pathlib import Path
from typing import Any

import pulumi
import pulumi_cloudflare
import pytest
import yaml
from support.pulumi_mocks import Mocks, use_mocks

from cfai.provision.platform import OUTPUT_KEYS

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "0123456789abcdef0123456789abcdef"
TOKEN = "s3cret"
API_TOKEN = "cf-api-t0ken"
LOCAL_API = "http://127.0.0.1:18787/client/v4"
SCRIPT = "cloudflare:index/workersScript:WorkersScript"
INDEX = "pulumi-python:dynamic/cloudflare:VectorizeIndex"
CLOUDFLARE = "cloudflare:index/"

# A declaration without name_prefix, as `pulumi config set --path` or ESC would hold it.
PLATFORM = {
    "account_id": ACCOUNT,
    "gateways": {"main": {"cache_ttl": 60}},
    "indexes": {"docs": {"preset": "@cf/baai/bge-base-en-v1.5"}},
    "workers": {
        "assistant": {"kind": "chat", "gateway": "main"},
        "kb": {"kind": "rag", "index": "docs"},
    },
}


def _engine_config(stack_file: Path) -> dict[str, str]:
    """The stack's config as the engine hands it to the program: text values, objects as
    JSON; `secure:` values decrypted (here: the test's token)."""
    config = (yaml.safe_load(stack_file.read_text()) or {}).get("config") or {}
    out = {}
    for key, value in config.items():
        if isinstance(value, dict) and set(value) == {"secure"}:
            out[key] = TOKEN
        elif isinstance(value, dict | list):
            out[key] = json.dumps(value)
        else:
            out[key] = str(value)
    return out


def _run_main(monkeypatch: pytest.MonkeyPatch, project_dir: Path) -> dict[str, Any]:
    exported: dict[str, Any] = {}
    monkeypatch.chdir(project_dir)
    monkeypatch.setattr(pulumi, "export", lambda k, v: exported.__setitem__(k, v))

    @pulumi.runtime.test
    def program() -> Any:
        runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")
        return pulumi.Output.from_input(dict(exported))

    program()
    return exported


def _resolved(value: Any) -> Any:
    seen: dict[str, Any] = {}

    @pulumi.runtime.test
    def read() -> Any:
        async def get() -> None:
            seen["value"] = await pulumi.Output.from_input(value).future()

        return get()

    read()
    return seen["value"]


@pytest.fixture(autouse=True)
def _no_cloudflare_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CLOUDFLARE_BASE_URL", "CLOUDFLARE_API_TOKEN", "CFAI_CLOUDFLARE_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


def test_main_deploys_the_shipped_staging_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    mocks = use_mocks(
        stack="staging",
        config=_engine_config(ROOT / "Pulumi.staging.yaml"),
        secret_keys=["cfai:authToken"],
    )
    exported = _run_main(monkeypatch, ROOT)
    assert tuple(exported) == OUTPUT_KEYS
    scripts = sorted(r.inputs["scriptName"] for r in mocks.of(SCRIPT))
    assert scripts and all(s.startswith("acme-staging-") for s in scripts)


def test_a_stack_whose_config_comes_only_from_the_engine_deploys(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # No Pulumi.<stack>.yaml, no Pulumi.yaml: ESC, `pulumi config set --path` or the
    # Automation API set the config; project and stack come from the engine.
    mocks = use_mocks(
        project="shop",
        stack="qa",
        config={
            "cfai:platform": json.dumps(PLATFORM),
            "cfai:workersSubdomain": "shop-qa",
            "cfai:authToken": TOKEN,
        },
        secret_keys=["cfai:authToken"],
    )
    assert list(tmp_path.iterdir()) == []
    exported = _run_main(monkeypatch, tmp_path)
    assert sorted(r.inputs["scriptName"] for r in mocks.of(SCRIPT)) == [
        "shop-qa-assistant",
        "shop-qa-kb",
    ]
    assert mocks.one(INDEX)["indexName"] == "shop-qa-docs"
    outputs = {k: _resolved(v) for k, v in exported.items() if k != "auth_token"}
    assert outputs["stack"] == "qa"
    assert outputs["endpoints"]["kb"] == "https://shop-qa-kb.shop-qa.workers.dev"


def test_main_without_a_declaration_names_the_config_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    mocks = use_mocks(stack="dev", config={"cfai:workersSubdomain": "acme"})
    with pytest.raises(pulumi.RunError) as caught:
        _run_main(monkeypatch, tmp_path)
    message = str(caught.value)
    assert "cfai:platform: not set for stack 'dev'" in message
    assert "pulumi config set --path" in message and "Traceback" not in message
    assert mocks.registered == []


def test_main_reports_an_invalid_config_as_the_config_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    declared = {
        "account_id": ACCOUNT,
        "indexes": {"docs": {"dimensions": 768, "metric": "cosine"}},
        "workers": {"qa": {"kind": "rag", "index": "docz"}},
    }
    mocks = use_mocks(config={"cfai:platform": json.dumps(declared), "cfai:authToken": TOKEN})
    with pytest.raises(pulumi.RunError) as caught:
        _run_main(monkeypatch, tmp_path)
    message = str(caught.value)
    assert message.startswith("invalid platform config in ")
    assert "Pulumi config 'cfai:platform' of stack 'staging'" in message
    assert "workers.qa.index: unknown index 'docz' (defined: docs)" in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert mocks.registered == [], "nothing is declared from an invalid config"
    # Not an object at all: named too.
    use_mocks(config={"cfai:platform": "acme"})
    with pytest.raises(pulumi.RunError, match=r"cfai:platform: must be an object"):
        _run_main(monkeypatch, tmp_path)


def _cloudflare_resources(mocks: Mocks) -> list[pulumi.runtime.MockResourceArgs]:
    return [r for r in mocks.registered if r.typ.startswith(CLOUDFLARE)]


def test_the_program_points_every_resource_at_the_providers_base_url_and_token(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # What docs/deploy.md tells a Pulumi user to set to provision into the local platform.
    mocks = use_mocks(
        project="shop",
        stack="local",
        config={
            "cfai:platform": json.dumps(PLATFORM),
            "cfai:workersSubdomain": "shop",
            "cfai:authToken": TOKEN,
            "cloudflare:baseUrl": LOCAL_API,
            "cloudflare:apiToken": API_TOKEN,
        },
        secret_keys=["cfai:authToken", "cloudflare:apiToken"],
    )
    exported = _run_main(monkeypatch, tmp_path)
    # The pulumi-cloudflare resources get no explicit provider: the default provider serves
    # them, and it is configured by exactly these keys (the installed package's own names).
    resources = _cloudflare_resources(mocks)
    assert {r.typ for r in resources} >= {
        "cloudflare:index/aiGateway:AiGateway",
        SCRIPT,
        "cloudflare:index/workersScriptSubdomain:WorkersScriptSubdomain",
    }
    assert [r.provider for r in resources] == [""] * len(resources)
    assert pulumi_cloudflare.config.base_url == LOCAL_API
    assert pulumi_cloudflare.config.api_token == API_TOKEN
    # The Vectorize dynamic provider and the gateway's log URL use the same API root; the
    # API token is never an input.
    assert mocks.one(INDEX)["baseUrl"] == LOCAL_API
    assert API_TOKEN not in json.dumps([r.inputs for r in mocks.registered], default=str)
    gateways = _resolved(exported["gateways"])
    assert gateways["main"]["logs_url"] == (
        f"{LOCAL_API}/accounts/{ACCOUNT}/ai-gateway/gateways/shop-local-main/logs"
    )


def test_the_base_url_may_come_from_the_providers_environment_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CLOUDFLARE_BASE_URL", LOCAL_API + "/")
    mocks = use_mocks(
        config={
            "cfai:platform": json.dumps(PLATFORM),
            "cfai:workersSubdomain": "acme",
            "cfai:authToken": TOKEN,
        },
        secret_keys=["cfai:authToken"],
    )
    _run_main(monkeypatch, tmp_path)
    assert mocks.one(INDEX)["baseUrl"] == LOCAL_API
    # Without either, nothing is sent and Cloudflare's own API is used.
    monkeypatch.delenv("CLOUDFLARE_BASE_URL")
    mocks = use_mocks(
        config={
            "cfai:platform": json.dumps(PLATFORM),
            "cfai:workersSubdomain": "acme",
            "cfai:authToken": TOKEN,
        },
        secret_keys=["cfai:authToken"],
    )
    exported = _run_main(monkeypatch, tmp_path)
    assert "baseUrl" not in mocks.one(INDEX)
    logs = _resolved(exported["gateways"])["main"]["logs_url"]
    assert logs.startswith("https://api.cloudflare.com/client/v4/accounts/")
