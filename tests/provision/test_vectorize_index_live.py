"""The dynamic provider and the REST client over real HTTP, against the local emulator's
Vectorize v2 REST API (uvicorn on a free 127.0.0.1 port, in a background thread)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from support.polling import wait_for

from cfai.local.services.base import EmulatorContext
from cfai.local.services.frontdoor import FrontDoor
from cfai.local.services.vectorize import VectorizeService
from cfai.provision import vectorize_index
from cfai.provision.rest import CloudflareApiError, CloudflareClient
from cfai.provision.vectorize_index import VectorizeIndexProvider

TOKEN = "live-test-token-0123456789"
ACCOUNT = "0" * 32


@pytest.fixture
def api(tmp_path: Path) -> Iterator[str]:
    """Base URL of a running emulator serving Vectorize's REST routes."""
    ctx = EmulatorContext(state_dir=tmp_path, account_id=ACCOUNT, api_token=TOKEN)
    service = VectorizeService(ctx)
    app = FrontDoor(account_id=ACCOUNT, api_token=TOKEN, binding_key=None).app(service.endpoints())
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off", ws="none")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_for("the emulator to start", lambda: server.started, timeout=10, alive=thread.is_alive)
    try:
        yield f"http://127.0.0.1:{port}/client/v4"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        service.close()


@pytest.fixture
def token_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)


def _props(base_url: str, **overrides: Any) -> dict[str, Any]:
    return {
        "accountId": ACCOUNT,
        "indexName": "docs",
        "dimensions": 32.0,
        "metric": "cosine",
        "metadataIndexes": [{"propertyName": "source", "indexType": "string"}],
        "baseUrl": base_url,
        "__provider": "serialized",
        **overrides,
    }


def _metadata(base_url: str) -> dict[str, str]:
    with CloudflareClient(base_url, token=TOKEN, account_id=ACCOUNT) as cf:
        return {
            m["propertyName"]: m["indexType"] for m in cf.vectorize.list_metadata_indexes("docs")
        }


@pytest.mark.usefixtures("token_env")
def test_provider_lifecycle_against_the_emulator(api: str) -> None:
    provider = VectorizeIndexProvider()

    created = provider.create(_props(api))
    assert created.id == "docs"
    assert created.outs is not None and created.outs["createdOn"]
    assert _metadata(api) == {"source": "string"}

    adopted = provider.create(_props(api))
    assert adopted.id == "docs" and adopted.outs == created.outs

    with pytest.raises(CloudflareApiError) as conflict:
        provider.create(_props(api, dimensions=64.0))
    assert conflict.value.status == 409 and conflict.value.code == 3002
    assert "dimensions=32" in str(conflict.value) and "declared dimensions=64" in str(
        conflict.value
    )

    read = provider.read("docs", {**_props(api), **created.outs})
    assert read.id == "docs" and read.outs == created.outs
    assert provider.diff("docs", read.outs, _props(api)).changes is False

    wanted = [
        {"propertyName": "lang", "indexType": "string"},
        {"propertyName": "year", "indexType": "number"},
    ]
    updated = provider.update("docs", created.outs, _props(api, metadataIndexes=wanted))
    assert _metadata(api) == {"lang": "string", "year": "number"}
    assert updated.outs is not None and updated.outs["metadataIndexes"] == wanted
    refreshed = provider.read("docs", {**_props(api), **updated.outs})
    assert refreshed.outs is not None and refreshed.outs["metadataIndexes"] == wanted

    provider.delete("docs", {**_props(api), **updated.outs})
    gone = provider.read("docs", {**_props(api), **updated.outs})
    assert (gone.id, gone.outs) == (None, {})
    provider.delete("docs", _props(api))  # 404 is done


def test_wrong_token_is_refused_without_leaking_it(
    api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", "not-the-token-at-all")
    with pytest.raises(CloudflareApiError) as caught:
        VectorizeIndexProvider().create(_props(api))
    assert caught.value.status == 403 and caught.value.user_fault
    assert "not-the-token-at-all" not in str(caught.value)


def test_client_data_plane_round_trip_against_the_emulator(api: str) -> None:
    """NDJSON writes, queries and id calls are accepted by the emulator as sent."""
    one = [1.0] + [0.0] * 31
    two = [0.0, 1.0] + [0.0] * 30
    with CloudflareClient(api, token=TOKEN, account_id=ACCOUNT) as cf:
        cf.vectorize.create_index("docs", dimensions=32, metric="cosine")
        cf.vectorize.create_metadata_index("docs", "source", "string")
        written = cf.vectorize.insert(
            "docs",
            [
                {"id": "a", "values": one, "metadata": {"source": "faq"}},
                {"id": "b", "values": two, "metadata": {"source": "blog"}},
            ],
        )
        assert written["mutationId"]
        cf.vectorize.upsert("docs", [{"id": "b", "values": two, "metadata": {"source": "faq"}}])
        assert cf.vectorize.info("docs")["vectorCount"] == 2
        found = cf.vectorize.query(
            "docs", one, top_k=2, return_metadata="all", filter={"source": "faq"}
        )
        assert [m["id"] for m in found["matches"]] == ["a", "b"]
        assert found["matches"][1]["metadata"] == {"source": "faq"}
        assert [v["id"] for v in cf.vectorize.get_by_ids("docs", ["b"])] == ["b"]
        cf.vectorize.delete_by_ids("docs", ["a"])
        assert cf.vectorize.info("docs")["vectorCount"] == 1
        assert [i["name"] for i in cf.vectorize.list_indexes()] == ["docs"]


class _FaultInjector(httpx.BaseTransport):
    """A real HTTP transport to the emulator with Cloudflare's transient failures in front:
    the first calls answer 429 (Retry-After) and 503, then requests pass through."""

    def __init__(self, faults: list[int]) -> None:
        self.faults = faults
        self.seen: list[int] = []
        self._inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.faults:
            status = self.faults.pop(0)
            self.seen.append(status)
            headers = {"retry-after": "0"} if status == 429 else {}
            body = {
                "result": None,
                "success": False,
                "errors": [{"code": 10013, "message": "slow down"}],
                "messages": [],
            }
            return httpx.Response(status, json=body, headers=headers)
        response = self._inner.handle_request(request)
        self.seen.append(response.status_code)
        return response

    def close(self) -> None:
        self._inner.close()


@pytest.mark.usefixtures("token_env")
def test_provider_retries_429_and_503_then_reaches_the_emulator(
    api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    transport = _FaultInjector([429, 503, 503])
    sleeps: list[float] = []

    def client(base_url: str, token: str, account_id: str) -> CloudflareClient:
        return CloudflareClient(
            base_url, token=token, account_id=account_id, transport=transport, sleep=sleeps.append
        )

    monkeypatch.setattr(vectorize_index, "_new_client", client)
    created = VectorizeIndexProvider().create(_props(api, metadataIndexes=[]))
    assert created.id == "docs"
    assert transport.seen[:3] == [429, 503, 503]
    assert set(transport.seen[3:]) <= {200, 201, 404}  # passes through: get (404) then create
    assert len(sleeps) == 3 and sleeps[0] == 0.0  # Retry-After: 0 honoured, then backoff
    # The index really exists on the other side of the faults.
    with CloudflareClient(api, token=TOKEN, account_id=ACCOUNT) as cf:
        assert cf.vectorize.get_index("docs")["config"]["dimensions"] == 32


@pytest.mark.usefixtures("token_env")
def test_refresh_notices_an_out_of_band_delete(api: str) -> None:
    provider = VectorizeIndexProvider()
    created = provider.create(_props(api))
    assert created.outs is not None
    with CloudflareClient(api, token=TOKEN, account_id=ACCOUNT) as cf:
        cf.vectorize.delete_index("docs")  # someone deletes it in the dashboard
    gone = provider.read("docs", {**_props(api), **created.outs})
    assert (gone.id, gone.outs) == (None, {})
    # Re-creating after the refresh works and a second delete is still fine.
    assert provider.create(_props(api)).id == "docs"
    provider.delete("docs", _props(api))
    provider.delete("docs", _props(api))
