"""The emulated finetunes REST API through the front door: shapes, wrangler's and the SDK's
request variants, Cloudflare's upload rules, immutability, limits and persistence. The
official Python SDK (with strict response validation) reads every answer it has a type
for, so the shapes are Cloudflare's as its own client expects them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cloudflare
import httpx
import pytest
from starlette.testclient import TestClient

from cfai.finetunes.demo import adapter_config, write_adapter
from cfai.local.services.base import EmulatorContext
from cfai.local.services.finetunes import FinetunesService
from cfai.local.services.frontdoor import FrontDoor

ACCOUNT = "f" * 32
TOKEN = "finetune-test-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}
BASE = f"/client/v4/accounts/{ACCOUNT}/ai/finetunes"
LLAMA = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"


def make(state_dir: Path) -> FinetunesService:
    return FinetunesService(
        EmulatorContext(state_dir=state_dir, account_id=ACCOUNT, api_token=TOKEN)
    )


def client_of(service: FinetunesService) -> TestClient:
    door = FrontDoor(account_id=ACCOUNT, api_token=TOKEN, binding_key=None)
    return TestClient(door.app(service.endpoints()), headers=AUTH)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[FinetunesService]:
    svc = make(tmp_path / "state")
    yield svc
    svc.close()


@pytest.fixture
def client(service: FinetunesService) -> TestClient:
    return client_of(service)


@pytest.fixture
def adapter(tmp_path: Path) -> dict[str, bytes]:
    folder = tmp_path / "adapter"
    write_adapter(folder)
    return {p.name: p.read_bytes() for p in folder.iterdir()}


class _Through(httpx.BaseTransport):
    """The SDK's httpx requests, served in-process by the Starlette test client."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        answer = self.client.request(
            request.method,
            str(request.url),
            headers=list(request.headers.multi_items()),
            content=request.read(),
        )
        return httpx.Response(
            answer.status_code, headers=list(answer.headers.multi_items()), content=answer.content
        )


@pytest.fixture
def sdk(client: TestClient) -> cloudflare.Cloudflare:
    return cloudflare.Cloudflare(
        api_token=TOKEN,
        base_url="http://testserver/client/v4",
        http_client=httpx.Client(transport=_Through(client)),
        max_retries=0,
        _strict_response_validation=True,
    )


def ok(response: Any, status: int = 200) -> Any:
    body = response.json()
    assert response.status_code == status, body
    assert response.headers["content-type"] == "application/json"
    assert body["success"] is True and body["errors"] == []
    return body["result"]


def fails(response: Any, status: int, code: int) -> str:
    body = response.json()
    assert response.status_code == status, body
    assert body["success"] is False and body["errors"][0]["code"] == code, body
    return str(body["errors"][0]["message"])


def create(client: TestClient, name: str = "tone", model: str = LLAMA) -> dict[str, Any]:
    result: dict[str, Any] = ok(client.post(BASE, json={"model": model, "name": name}))
    return result


def wrangler_upload(client: TestClient, ref: str, file_name: str, data: bytes) -> Any:
    # What wrangler's undici FormData sends: the name field, then the file as "blob".
    return client.post(
        f"{BASE}/{ref}/finetune-assets",
        data={"file_name": file_name},
        files={"file": ("blob", data, "application/octet-stream")},
    )


# -- create and list -----------------------------------------------------------------------


def test_create_answers_cloudflares_shape_to_the_sdk(sdk: cloudflare.Cloudflare) -> None:
    made = sdk.ai.finetunes.create(account_id=ACCOUNT, model=LLAMA, name="tone", description="d")
    assert made.name == "tone" and made.model == LLAMA and made.description == "d"
    assert made.public is False and made.created_at == made.modified_at and len(made.id) == 36


def test_create_from_wranglers_text_plain_body(client: TestClient) -> None:
    body = json.dumps({"model": LLAMA, "name": "tone", "description": ""})
    made = ok(client.post(BASE, content=body, headers={"content-type": "text/plain;charset=UTF-8"}))
    assert made["name"] == "tone" and made["description"] == ""


def test_create_needs_model_and_name(client: TestClient) -> None:
    msg = fails(client.post(BASE, json={"model": LLAMA}), 400, 3003)
    assert msg == "Request is missing headers or body: name: required"
    fails(client.post(BASE, content=b"not json"), 400, 3003)


def test_create_for_a_model_without_lora_is_cloudflares_5005(client: TestClient) -> None:
    msg = fails(
        client.post(BASE, json={"model": "@cf/meta/llama-3.1-8b-instruct", "name": "t"}), 405, 5005
    )
    assert msg == "The model @cf/meta/llama-3.1-8b-instruct does not support LoRa inference"


def test_create_refuses_a_taken_name(client: TestClient) -> None:
    create(client)
    assert "a finetune named 'tone' exists" in fails(
        client.post(BASE, json={"model": LLAMA, "name": "tone"}), 409, 10040
    )


def test_create_stops_at_100_finetunes_per_account(client: TestClient) -> None:
    for i in range(100):
        create(client, f"t{i}")
    fails(client.post(BASE, json={"model": LLAMA, "name": "t100"}), 400, 10041)
    assert len(ok(client.get(BASE))) == 100


def test_list_is_an_array_also_for_wranglers_trailing_question_mark(
    client: TestClient, sdk: cloudflare.Cloudflare
) -> None:
    made = create(client)
    listed = ok(client.get(f"{BASE}?"))
    assert listed == [{k: v for k, v in made.items() if k != "public"}]
    assert ok(client.get(f"{BASE}/")) == listed  # the docs' curl spelling
    # The SDK types the list as one object (a spec quirk) and still reads the envelope.
    assert sdk.ai.finetunes.with_raw_response.list(account_id=ACCOUNT).status_code == 200


def test_every_route_also_answers_the_docs_trailing_slash_spelling(
    client: TestClient, service: FinetunesService, adapter: dict[str, bytes]
) -> None:
    # Cloudflare's LoRA docs write the collection and the upload with a trailing slash
    # (https://developers.cloudflare.com/workers-ai/features/fine-tunes/loras/).
    made = ok(client.post(f"{BASE}/", json={"model": LLAMA, "name": "tone", "public": True}))
    for name, data in adapter.items():
        upload = client.post(
            f"{BASE}/{made['id']}/finetune-assets/",
            data={"file_name": name},
            files={"file": ("blob", data, "application/octet-stream")},
        )
        assert ok(upload) is None
    assert service.adapter(LLAMA, "tone").name == "tone"  # both assets landed
    assert [ft["name"] for ft in ok(client.get(f"{BASE}/"))] == ["tone"]
    assert [ft["name"] for ft in ok(client.get(f"{BASE}/public/"))] == ["tone"]


def test_public_list_pages_and_orders(client: TestClient, sdk: cloudflare.Cloudflare) -> None:
    for name in ("b", "a", "c"):
        ok(client.post(BASE, json={"model": LLAMA, "name": name, "public": True}))
    create(client, "private")
    page = sdk.ai.finetunes.public.list(account_id=ACCOUNT, order_by="name", limit=2, offset=1)
    assert [ft.name for ft in page] == ["b", "c"]
    assert fails(client.get(f"{BASE}/public?orderBy=size"), 400, 3003).startswith(
        "Request is missing headers or body: orderBy: one of created_at"
    )


def test_no_get_one_and_no_delete_as_on_cloudflare(client: TestClient) -> None:
    made = create(client)
    fails(client.get(f"{BASE}/{made['id']}"), 404, 7003)
    fails(client.delete(BASE), 405, 7001)


def test_routes_need_the_api_token(service: FinetunesService) -> None:
    anonymous = TestClient(
        FrontDoor(account_id=ACCOUNT, api_token=TOKEN, binding_key=None).app(service.endpoints())
    )
    fails(anonymous.get(BASE), 401, 10000)
    fails(anonymous.post(BASE, json={"model": LLAMA, "name": "x"}), 401, 10000)


# -- assets --------------------------------------------------------------------------------


def test_wrangler_uploads_both_assets_by_id(
    client: TestClient, service: FinetunesService, adapter: dict[str, bytes]
) -> None:
    made = create(client)
    for name, data in adapter.items():
        assert ok(wrangler_upload(client, made["id"], name, data)) is None
    assert service.adapter(LLAMA, made["id"]).name == "tone"
    stored = service.store.asset_path(made["id"], "adapter_model.safetensors")
    assert stored.read_bytes() == adapter["adapter_model.safetensors"]  # byte-exact


def test_sdk_uploads_by_name_with_its_own_filename(
    client: TestClient,
    sdk: cloudflare.Cloudflare,
    service: FinetunesService,
    adapter: dict[str, bytes],
) -> None:
    create(client)
    for name, data in adapter.items():
        answer = sdk.ai.finetunes.assets.create(
            "tone", account_id=ACCOUNT, file=(name, data), file_name=name
        )
        assert answer.success is True
    assert service.adapter(LLAMA, "tone").model == LLAMA


def test_assets_cannot_be_edited_after_upload(
    client: TestClient, adapter: dict[str, bytes]
) -> None:
    create(client)
    data = adapter["adapter_config.json"]
    ok(wrangler_upload(client, "tone", "adapter_config.json", data))
    msg = fails(wrangler_upload(client, "tone", "adapter_config.json", data), 409, 10042)
    assert "assets cannot be edited after upload" in msg


def test_upload_to_an_unknown_finetune(client: TestClient, adapter: dict[str, bytes]) -> None:
    msg = fails(wrangler_upload(client, "nope", "adapter_config.json", b"{}"), 404, 3037)
    assert msg == "Finetune nope not found"


def test_upload_refuses_other_file_names(client: TestClient) -> None:
    create(client)
    msg = fails(wrangler_upload(client, "tone", "adapter_model.bin", b"\0"), 400, 10043)
    assert msg == (
        "file_name must be adapter_config.json or adapter_model.safetensors, got 'adapter_model.bin'"
    )


def test_upload_refuses_a_rank_over_32_and_a_missing_model_type(client: TestClient) -> None:
    create(client)
    config = {**adapter_config(64, "llama")}
    del config["model_type"]
    msg = fails(
        wrangler_upload(client, "tone", "adapter_config.json", json.dumps(config).encode()),
        400,
        10043,
    )
    assert msg == (
        "adapter_config.json: model_type is missing; Cloudflare requires one of mistral, gemma, "
        'llama (add "model_type"); rank r=64 exceeds Cloudflare\'s limit of 32; retrain with r <= 32'
    )


def test_upload_refuses_an_invalid_safetensors_file(
    client: TestClient, adapter: dict[str, bytes]
) -> None:
    create(client)
    truncated = adapter["adapter_model.safetensors"][:-2]
    msg = fails(wrangler_upload(client, "tone", "adapter_model.safetensors", truncated), 400, 10043)
    assert msg.startswith(
        "adapter_model.safetensors: is not a valid safetensors file: the tensors need"
    )


def test_upload_needs_multipart_with_both_fields(client: TestClient) -> None:
    create(client)
    url = f"{BASE}/tone/finetune-assets"
    assert fails(client.post(url, json={"file_name": "x"}), 400, 3003).startswith(
        "Request is missing headers or body: expected multipart/form-data"
    )
    assert fails(client.post(url, data={"file_name": "adapter_config.json"}, files={}), 400, 3003)
    msg = fails(
        client.post(url, files={"file": ("adapter_config.json", b"{}", "application/json")}),
        400,
        3003,
    )
    assert msg.startswith("Request is missing headers or body: file_name: required")


def test_run_lookup_says_what_cloudflare_says(
    client: TestClient, service: FinetunesService, adapter: dict[str, bytes]
) -> None:
    create(client)
    with pytest.raises(Exception) as missing:
        service.adapter(LLAMA, "tone")
    assert getattr(missing.value, "code", None) == 3039
    for name, data in adapter.items():
        ok(wrangler_upload(client, "tone", name, data))
    with pytest.raises(Exception) as other_model:
        service.adapter("@cf/meta/llama-guard-3-8b", "tone")
    assert getattr(other_model.value, "code", None) == 3037
    with pytest.raises(Exception) as no_lora:
        service.adapter("@cf/meta/llama-3.1-8b-instruct", "tone")
    assert getattr(no_lora.value, "code", None) == 5005


def test_finetunes_and_assets_survive_a_restart(tmp_path: Path, adapter: dict[str, bytes]) -> None:
    first = make(tmp_path / "state")
    client = client_of(first)
    made = create(client)
    for name, data in adapter.items():
        ok(wrangler_upload(client, "tone", name, data))
    first.close()
    again = make(tmp_path / "state")
    try:
        assert again.adapter(LLAMA, made["id"]).name == "tone"
        assert ok(client_of(again).get(BASE))[0]["id"] == made["id"]
    finally:
        again.close()


def test_reset_drops_finetunes_and_their_files(
    client: TestClient, service: FinetunesService, adapter: dict[str, bytes]
) -> None:
    made = create(client)
    ok(wrangler_upload(client, "tone", "adapter_config.json", adapter["adapter_config.json"]))
    service.reset()
    assert ok(client.get(BASE)) == []
    assert not service.store.asset_path(made["id"], "adapter_config.json").exists()
