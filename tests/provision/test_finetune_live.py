"""The `Finetune` dynamic provider over real HTTP, against the local emulator's finetunes REST
API (uvicorn on a free 127.0.0.1 port, in a background thread): create with both uploads,
adopt, replace on a changed file, refresh, delete."""

from __future__ import annotations

import base64
import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dill
import pytest
import uvicorn
from pulumi.dynamic.dynamic import serialize_provider

from cfai.errors import ConfigError
from cfai.finetunes.demo import write_adapter
from cfai.local.services.base import EmulatorContext
from cfai.local.services.finetunes import FinetunesService
from cfai.local.services.frontdoor import FrontDoor
from cfai.provision.finetune import FinetuneProvider
from cfai.provision.rest import CloudflareApiError, CloudflareClient

TOKEN = "finetune-live-token-0123456789"
ACCOUNT = "0" * 32
LLAMA = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[tuple[str, FinetunesService]]:
    """Base URL of a running emulator serving the finetunes REST routes, and its service."""
    ctx = EmulatorContext(state_dir=tmp_path / "state", account_id=ACCOUNT, api_token=TOKEN)
    service = FinetunesService(ctx)
    app = FrontDoor(account_id=ACCOUNT, api_token=TOKEN, binding_key=None).app(service.endpoints())
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off", ws="none")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "emulator did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}/client/v4", service
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        service.close()


@pytest.fixture(autouse=True)
def token_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _props(
    base_url: str, folder: Path, name: str = "acme-tone-00000001", **over: Any
) -> dict[str, Any]:
    config, weights = folder / "adapter_config.json", folder / "adapter_model.safetensors"
    return {
        "accountId": ACCOUNT,
        "finetuneName": name,
        "model": LLAMA,
        "description": "support tone",
        "configPath": str(config),
        "configSha256": _sha(config),
        "modelPath": str(weights),
        "modelSha256": _sha(weights),
        "baseUrl": base_url,
        "__provider": "serialized",
        **over,
    }


def _listed(base_url: str) -> list[dict[str, Any]]:
    with CloudflareClient(base_url, token=TOKEN, account_id=ACCOUNT) as cf:
        return cf.finetunes.list_finetunes()


def test_create_uploads_both_assets_and_the_adapter_applies(
    emulator: tuple[str, FinetunesService], tmp_path: Path
) -> None:
    api, service = emulator
    write_adapter(tmp_path / "a")
    created = FinetuneProvider().create(_props(api, tmp_path / "a"))
    assert created.outs is not None and created.outs["finetuneId"] == created.id
    assert created.outs["createdAt"] and created.outs["finetuneName"] == "acme-tone-00000001"
    applied = service.adapter(LLAMA, "acme-tone-00000001")  # 3039 if an asset were missing
    assert applied.id == created.id and applied.description == "support tone"
    stored = service.store.asset_path(created.id, "adapter_model.safetensors").read_bytes()
    assert stored == (tmp_path / "a" / "adapter_model.safetensors").read_bytes()


def test_create_adopts_an_identical_finetune_even_one_left_without_assets(
    emulator: tuple[str, FinetunesService], tmp_path: Path
) -> None:
    api, service = emulator
    write_adapter(tmp_path / "a")
    # An interrupted earlier run: the finetune exists, no asset was uploaded.
    with CloudflareClient(api, token=TOKEN, account_id=ACCOUNT) as cf:
        half = cf.finetunes.create("acme-tone-00000001", model=LLAMA, description="support tone")
    adopted = FinetuneProvider().create(_props(api, tmp_path / "a"))
    assert adopted.id == half["id"]
    assert service.adapter(LLAMA, half["id"]).name == "acme-tone-00000001"
    # And once more, with both assets already there (they are immutable): still adopted.
    again = FinetuneProvider().create(_props(api, tmp_path / "a"))
    assert again.id == half["id"] and len(_listed(api)) == 1


def test_create_refuses_a_same_named_finetune_of_another_model(
    emulator: tuple[str, FinetunesService], tmp_path: Path
) -> None:
    api, _ = emulator
    write_adapter(tmp_path / "a")
    with CloudflareClient(api, token=TOKEN, account_id=ACCOUNT) as cf:
        cf.finetunes.create("acme-tone-00000001", model="@cf/meta/llama-guard-3-8b")
    with pytest.raises(CloudflareApiError) as conflict:
        FinetuneProvider().create(_props(api, tmp_path / "a"))
    assert conflict.value.status == 409
    assert "exists for model '@cf/meta/llama-guard-3-8b'" in str(conflict.value)
    assert f"declared '{LLAMA}'" in str(conflict.value)


def test_a_changed_file_replaces_the_finetune_under_its_new_name(
    emulator: tuple[str, FinetunesService], tmp_path: Path
) -> None:
    api, service = emulator
    provider = FinetuneProvider()
    write_adapter(tmp_path / "a")
    first = provider.create(_props(api, tmp_path / "a"))
    assert first.outs is not None
    write_adapter(tmp_path / "a", layers=3)  # retrained: new weights, new digest, new name
    news = _props(api, tmp_path / "a", name="acme-tone-00000002")
    diff = provider.diff(first.id, first.outs, news)
    assert diff.changes is True and set(diff.replaces) == {"finetuneName", "modelSha256"}
    assert diff.delete_before_replace is False
    second = provider.create(news)
    assert second.id != first.id
    assert service.adapter(LLAMA, "acme-tone-00000002").id == second.id
    provider.delete(first.id, first.outs)  # Cloudflare cannot delete: the old one stays listed
    assert {f["name"] for f in _listed(api)} == {"acme-tone-00000001", "acme-tone-00000002"}


def test_a_moved_folder_updates_in_place(
    emulator: tuple[str, FinetunesService], tmp_path: Path
) -> None:
    api, _ = emulator
    provider = FinetuneProvider()
    write_adapter(tmp_path / "a")
    created = provider.create(_props(api, tmp_path / "a"))
    assert created.outs is not None
    write_adapter(tmp_path / "b")  # the same bytes elsewhere
    moved = _props(api, tmp_path / "b")
    diff = provider.diff(created.id, created.outs, moved)
    assert diff.changes is True and list(diff.replaces) == []
    updated = provider.update(created.id, created.outs, moved)
    assert updated.outs is not None
    assert (
        updated.outs["finetuneId"] == created.id
        and updated.outs["configPath"] == moved["configPath"]
    )
    assert updated.outs["createdAt"] == created.outs["createdAt"] and len(_listed(api)) == 1


def test_refresh_and_delete(emulator: tuple[str, FinetunesService], tmp_path: Path) -> None:
    api, service = emulator
    provider = FinetuneProvider()
    write_adapter(tmp_path / "a")
    created = provider.create(_props(api, tmp_path / "a"))
    assert created.outs is not None
    read = provider.read(created.id, {**_props(api, tmp_path / "a"), **created.outs})
    assert read.id == created.id and read.outs == created.outs
    assert provider.diff(created.id, read.outs, _props(api, tmp_path / "a")).changes is False
    # delete sends nothing (there is no delete call) and never fails, even for an id that
    # does not exist; the finetune stays, and declaring it again adopts it.
    provider.delete(created.id, created.outs)
    provider.delete("no-such-id", created.outs)
    assert provider.create(_props(api, tmp_path / "a")).id == created.id
    service.reset()  # gone behind Pulumi's back: refresh says so
    gone = provider.read(created.id, {**_props(api, tmp_path / "a"), **created.outs})
    assert (gone.id, gone.outs) == (None, {})


def test_a_file_changed_after_hashing_is_not_uploaded(
    emulator: tuple[str, FinetunesService], tmp_path: Path
) -> None:
    api, _ = emulator
    write_adapter(tmp_path / "a")
    props = _props(api, tmp_path / "a")
    write_adapter(tmp_path / "a", rank=4)
    with pytest.raises(ConfigError) as changed:
        FinetuneProvider().create(props)
    assert "adapter_config.json: changed after the program hashed it" in str(changed.value)
    assert _listed(api) == []


def test_the_token_is_never_state_and_a_wrong_one_is_not_echoed(
    emulator: tuple[str, FinetunesService], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api, _ = emulator
    write_adapter(tmp_path / "a")
    provider = FinetuneProvider()
    provider._configured_token = TOKEN  # as configure() would set it from cloudflare:apiToken
    state = base64.b64decode(serialize_provider(provider))
    assert TOKEN.encode() not in state and dill.loads(state)._configured_token is None
    created = provider.create(_props(api, tmp_path / "a"))
    assert created.outs is not None and TOKEN not in repr(created.outs)
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", "not-the-token-at-all")
    with pytest.raises(CloudflareApiError) as caught:
        FinetuneProvider().create(_props(api, tmp_path / "a"))
    assert caught.value.status == 403 and "not-the-token-at-all" not in str(caught.value)
