"""Finetunes in the Pulumi program, under mocks (preview=False): one `Finetune` per declared
finetune, child of the Platform, with the files' hashes and project-relative paths; the chat
Worker's ``LORA`` binding is the Finetune's output (so the adapter is uploaded first); no
API token anywhere in the registered inputs."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import pulumi
import pytest
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockMonitor

from cfai.config import PlatformConfig, load_platform
from cfai.finetunes.demo import write_adapter
from cfai.provision.platform import Platform, PlatformArgs

ACCOUNT = "0123456789abcdef0123456789abcdef"
API_TOKEN = "cf-api-token-that-must-not-leak"
LLAMA = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"
FINETUNE = "pulumi-python:dynamic/cloudflare:Finetune"
SCRIPT = "cloudflare:index/workersScript:WorkersScript"


class _Mocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.registered: list[pulumi.runtime.MockResourceArgs] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.registered.append(args)
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        return {}

    def of(self, typ: str) -> list[pulumi.runtime.MockResourceArgs]:
        return [r for r in self.registered if r.typ == typ]


class _Monitor(MockMonitor):
    def __init__(self, mocks: _Mocks) -> None:
        super().__init__(mocks)
        self.parents: dict[str, str] = {}
        self.deps: dict[str, dict[str, set[str]]] = {}

    def RegisterResource(self, request: Any) -> Any:  # the gRPC method name
        response = super().RegisterResource(request)
        self.parents[response.urn] = request.parent
        self.deps[response.urn] = {k: set(v.urns) for k, v in request.propertyDependencies.items()}
        return response


@pytest.fixture
def cloud(monkeypatch: pytest.MonkeyPatch) -> tuple[_Mocks, _Monitor]:
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", API_TOKEN)
    mocks = _Mocks()
    monitor = _Monitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="cfai", stack="prod", preview=False, monitor=monitor)
    pulumi.runtime.set_all_config(
        {"cfai:authToken": "worker-token", "cfai:workersSubdomain": "acme"},
        secret_keys=["cfai:authToken"],
    )
    return mocks, monitor


def _platform(base: Path) -> PlatformConfig:
    write_adapter(base / "adapters" / "tone")
    return load_platform(
        {
            "account_id": ACCOUNT,
            "name_prefix": "acme-prod",
            "finetunes": {
                "tone": {"base_model": LLAMA, "path": "adapters/tone", "description": "tone"}
            },
            "workers": {
                "bot": {"kind": "chat", "model": LLAMA, "lora": "tone"},
                "plain": {"kind": "chat"},
            },
        },
        base_dir=base,
    )


def _run(platform: PlatformConfig, base: Path) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    @pulumi.runtime.test
    def program() -> Any:
        component = Platform("cfai", PlatformArgs.from_config(platform, base_dir=base))

        async def collect() -> None:
            seen["platform"] = await component.urn.future()
            seen["finetunes"] = {
                k: await r.urn.future() for k, r in component.finetune_resources.items()
            }
            seen["name"] = await component.finetune_resources["tone"].finetune_name.future()
            seen["scripts"] = {
                k: await w.script.urn.future() for k, w in component.worker_resources.items()
            }

        return collect()

    program()
    assert seen, "the program ran"
    return seen


def _unwrap(value: Any) -> Any:
    if isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig:
        return _unwrap(value["value"])
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    return value


def test_one_finetune_per_declared_finetune_with_hashes_and_relative_paths(
    cloud: tuple[_Mocks, _Monitor], tmp_path: Path
) -> None:
    mocks, monitor = cloud
    platform = _platform(tmp_path)
    seen = _run(platform, tmp_path)
    (ft,) = mocks.of(FINETUNE)
    assert ft.name == "cfai-tone"
    folder = tmp_path / "adapters" / "tone"
    inputs = {k: v for k, v in ft.inputs.items() if k != "__provider"}
    assert inputs == {
        "accountId": ACCOUNT,
        "finetuneName": platform.finetune_name("tone", tmp_path),
        "model": LLAMA,
        "description": "tone",
        "configPath": "adapters/tone/adapter_config.json",
        "configSha256": hashlib.sha256((folder / "adapter_config.json").read_bytes()).hexdigest(),
        "modelPath": "adapters/tone/adapter_model.safetensors",
        "modelSha256": hashlib.sha256(
            (folder / "adapter_model.safetensors").read_bytes()
        ).hexdigest(),
    }
    assert inputs["finetuneName"].startswith("acme-prod-tone-")
    assert monitor.parents[seen["finetunes"]["tone"]] == seen["platform"]
    assert seen["name"] == inputs["finetuneName"]


def test_the_lora_binding_is_the_finetunes_output(
    cloud: tuple[_Mocks, _Monitor], tmp_path: Path
) -> None:
    mocks, monitor = cloud
    platform = _platform(tmp_path)
    seen = _run(platform, tmp_path)
    (bot,) = [s for s in mocks.of(SCRIPT) if s.name == "cfai-bot"]
    lora = [b for b in _unwrap(bot.inputs["bindings"]) if b["name"] == "LORA"]
    assert lora == [
        {"type": "plain_text", "name": "LORA", "text": platform.finetune_name("tone", tmp_path)}
    ]
    assert seen["finetunes"]["tone"] in monitor.deps[seen["scripts"]["bot"]]["bindings"]
    (plain,) = [s for s in mocks.of(SCRIPT) if s.name == "cfai-plain"]
    assert "LORA" not in {b["name"] for b in _unwrap(plain.inputs["bindings"])}
    assert seen["finetunes"]["tone"] not in monitor.deps[seen["scripts"]["plain"]].get(
        "bindings", set()
    )


def test_no_api_token_in_any_registered_input(
    cloud: tuple[_Mocks, _Monitor], tmp_path: Path
) -> None:
    mocks, _ = cloud
    _run(_platform(tmp_path), tmp_path)
    for resource in mocks.registered:
        text = repr(_unwrap(resource.inputs))
        assert API_TOKEN not in text, resource.name
        provider = _unwrap(resource.inputs).get("__provider")
        if isinstance(provider, str):
            assert API_TOKEN.encode() not in base64.b64decode(provider), resource.name
