"""The front door: every emulated route authenticated, its body bounded and parsed, and every
failure answered in the route's shape. The app is the emulator's own (`build_app`: every
registered service plus the admin routes).

Reproductions from issue 11 covered here: "admin route without a token", "binding routes
without a secret" (every binding route, not just upsert) and the index taken from the
binding token rather than a header.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.testclient import TestClient
from support.polling import wait_for

from cfai.local.emulator import build_app
from cfai.local.services import (
    EmulatorContext,
    GatewayService,
    VectorizeService,
    WorkersAIService,
)
from cfai.local.services.frontdoor import (
    BINDING_HEADER,
    ApiError,
    ApiToken,
    BindingKey,
    BindingScope,
    Call,
    Endpoint,
    FrontDoor,
    JsonBody,
    Open,
    Shape,
)

ACCOUNT = "a" * 32
TOKEN = "test-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}
V4 = f"/client/v4/accounts/{ACCOUNT}"
LLAMA = "@cf/meta/llama-3.1-8b-instruct"
DIMS = 32


@pytest.fixture
def key() -> BindingKey:
    return BindingKey.generate()


@pytest.fixture
def client(tmp_path: Path, key: BindingKey) -> Iterator[TestClient]:
    app, _ = build_app(EmulatorContext(tmp_path, ACCOUNT, TOKEN), binding_key=key)
    with TestClient(app) as c:
        for name in ("docs", "other"):
            body = {"name": name, "config": {"dimensions": DIMS, "metric": "cosine"}}
            assert c.post(f"{V4}/vectorize/v2/indexes", json=body, headers=AUTH).status_code == 201
        gateway = {
            "id": "gw",
            "cache_invalidate_on_update": True,
            "cache_ttl": None,
            "collect_logs": True,
            "rate_limiting_interval": None,
            "rate_limiting_limit": None,
        }
        assert c.post(f"{V4}/ai-gateway/gateways", json=gateway, headers=AUTH).status_code == 200
        yield c


def token(key: BindingKey, kind: str, index: str | None = None) -> dict[str, str]:
    return {BINDING_HEADER: key.mint(BindingScope(kind, "qa", index))}


def vector(vid: str, text: str = "x") -> str:
    return json.dumps({"id": vid, "values": [1.0] * DIMS, "metadata": {"text": text}})


def count(client: TestClient, index: str) -> int:
    r = client.get(f"{V4}/vectorize/v2/indexes/{index}/info", headers=AUTH)
    return int(r.json()["result"]["vectorCount"])


def code_of(response: Any) -> Any:
    """The error code, whatever the route's shape (v4 envelope, Vectorize or AI binding)."""
    body = response.json()
    if "errors" in body:
        return body["errors"][0]["code"]
    return body.get("code", body.get("internalCode"))


def v4_error(response: Any, status: int, code: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["success"] is False and body["result"] is None
    assert body["errors"][0]["code"] == code


# -- admin routes -----------------------------------------------------------------------------


def test_reset_from_a_web_page_is_refused_and_deletes_nothing(client: TestClient) -> None:
    # A cross-origin text/plain POST needs no CORS preflight: a page could send it.
    page = {"origin": "http://evil.example", "content-type": "text/plain"}
    v4_error(client.post("/__cfai/reset", content=b"x", headers=page), 401, 10000)
    wrong = {**page, "authorization": "Bearer guess"}
    v4_error(client.post("/__cfai/reset", content=b"x", headers=wrong), 403, 9109)
    assert client.get(f"{V4}/ai-gateway/gateways/gw", headers=AUTH).status_code == 200
    assert client.get(f"{V4}/vectorize/v2/indexes/docs", headers=AUTH).status_code == 200
    # The API token holder may reset.
    assert client.post("/__cfai/reset", headers=AUTH).json() == {"ok": True}
    assert client.get(f"{V4}/ai-gateway/gateways/gw", headers=AUTH).status_code == 404


def test_health_is_open_and_tells_nothing_secret(client: TestClient) -> None:
    r = client.get("/__cfai/health")
    assert r.status_code == 200 and r.json()["ok"] is True
    assert TOKEN not in r.text and ACCOUNT not in r.text


# -- binding routes ---------------------------------------------------------------------------

BINDING_CALLS = [
    ("vector-search", "POST", "/upsert", "vectorize"),
    ("vector-search", "POST", "/insert", "vectorize"),
    ("vector-search", "POST", "/query", "vectorize"),
    ("vector-search", "POST", "/getByIds", "vectorize"),
    ("vector-search", "POST", "/deleteByIds", "vectorize"),
    ("vector-search", "GET", "/info", "vectorize"),
    ("workers-binding.ai", "POST", "/run?version=3", "ai"),
    ("workers-binding.ai", "POST", "/ai-gateway/run?version=3", "ai"),
    ("workers-binding.ai", "GET", "/ai-gateway/gateways/gw/logs/01LOG", "ai"),
    ("workers-binding.ai", "PATCH", "/ai-gateway/gateways/gw/logs/01LOG", "ai"),
    ("workers-binding.ai", "GET", "/ai-gateway/gateways/gw/url/workers-ai", "ai"),
]


def _body(path: str) -> bytes:
    if path in ("/upsert", "/insert"):
        return vector("evil#0", "INJECTED").encode()
    if path == "/query":
        return json.dumps({"vector": [1.0] * DIMS, "returnMetadata": "all"}).encode()
    if path in ("/getByIds", "/deleteByIds"):
        return json.dumps({"ids": ["evil#0"]}).encode()
    if "run" in path:
        return json.dumps(
            {"inputs": {"prompt": "hi"}, "options": {"gateway": {"id": "gw"}}}
        ).encode()
    return json.dumps({"feedback": -1}).encode()


@pytest.mark.parametrize(("host", "method", "path", "kind"), BINDING_CALLS)
def test_binding_routes_refuse_calls_without_a_binding_token(
    client: TestClient, key: BindingKey, host: str, method: str, path: str, kind: str
) -> None:
    headers = {
        "host": host,
        "x-cfai-index": "docs",  # the old, Worker-settable way of naming an index
        "cf-consn-model-id": LLAMA,
        "content-type": "application/x-ndjson" if "sert" in path else "application/json",
    }
    body = None if method == "GET" else _body(path)
    forged = BindingKey.generate().mint(BindingScope(kind, "qa", "docs"))
    other_kind = "ai" if kind == "vectorize" else "vectorize"
    refusals = [
        ({}, 401),  # no token
        ({BINDING_HEADER: forged}, 401),  # minted with another key
        ({BINDING_HEADER: "v1.e30.AAAA"}, 401),  # made up
        (AUTH, 401),  # the API token is not a binding token
        (token(key, other_kind, "docs"), 403),  # a token of the other binding type
    ]
    for extra, status in refusals:
        r = client.request(method, path, content=body, headers={**headers, **extra})
        assert r.status_code == status, (extra, r.text)
        assert r.headers["content-type"] == "application/json"
        assert code_of(r) == 10000
    assert count(client, "docs") == 0


def test_binding_token_names_the_index_not_the_request(client: TestClient, key: BindingKey) -> None:
    headers = {
        "host": "vector-search",
        "content-type": "application/x-ndjson",
        "x-cfai-index": "other",  # ignored: the token was minted for docs
        **token(key, "vectorize", "docs"),
    }
    r = client.post("/upsert", content=vector("a"), headers=headers)
    assert r.status_code == 200 and set(r.json()) == {"mutationId"}
    assert (count(client, "docs"), count(client, "other")) == (1, 0)


def test_a_second_binding_header_is_refused(client: TestClient, key: BindingKey) -> None:
    good = token(key, "vectorize", "docs")[BINDING_HEADER]
    other = token(key, "vectorize", "other")[BINDING_HEADER]
    headers = [("host", "vector-search"), (BINDING_HEADER, other), (BINDING_HEADER, good)]
    r = client.get("/info", headers=headers)
    assert r.status_code == 401 and r.json()["code"] == 10000


def test_rest_and_admin_routes_refuse_binding_tokens(client: TestClient, key: BindingKey) -> None:
    v4_error(client.get(f"{V4}/vectorize/v2/indexes", headers=token(key, "ai")), 401, 10000)
    v4_error(client.post("/__cfai/reset", headers=token(key, "vectorize", "docs")), 401, 10000)


def test_binding_hosts_do_not_serve_rest_or_admin_routes(
    client: TestClient, key: BindingKey
) -> None:
    headers = {"host": "workers-binding.ai", **AUTH, **token(key, "ai")}
    assert client.post("/__cfai/reset", headers=headers).status_code == 404
    assert client.get(f"{V4}/vectorize/v2/indexes", headers=headers).status_code == 404
    assert (
        count(client, "docs") == 0
        and client.get(f"{V4}/ai-gateway/gateways/gw", headers=AUTH).status_code == 200
    )


# -- bodies and errors ------------------------------------------------------------------------


def test_body_over_the_route_limit_is_413_in_the_route_shape(
    client: TestClient, key: BindingKey
) -> None:
    big = b'{"ids": [' + b'"x",' * 300_000 + b'"x"]}'  # over the 1 MiB of a control body
    r = client.post(f"{V4}/vectorize/v2/indexes/docs/get_by_ids", content=big, headers=AUTH)
    v4_error(r, 413, 10013)

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while streaming
        yield b'{"ids": ['
        for _ in range(300_000):
            yield b'"x",'
        yield b'"x"]}'

    headers = {"host": "vector-search", **token(key, "vectorize", "docs")}
    r = client.post("/getByIds", content=chunks(), headers=headers)
    assert r.status_code == 413 and r.json()["code"] == 10013
    ai = {"host": "workers-binding.ai", "cf-consn-model-id": LLAMA, **token(key, "ai")}
    huge = b'{"inputs": {"prompt": "' + b"x" * (33 * 1024 * 1024) + b'"}}'
    r = client.post("/run?version=3", content=huge, headers=ai)
    assert r.status_code == 413 and r.json()["internalCode"] == 3006


def test_unknown_path_and_wrong_method_answer_the_envelope(client: TestClient) -> None:
    v4_error(client.get(f"{V4}/nothing/here", headers=AUTH), 404, 7003)
    v4_error(client.put(f"{V4}/vectorize/v2/indexes", headers=AUTH), 405, 7001)


def _door_with_a_failing_route() -> FrontDoor:
    return FrontDoor(account_id=ACCOUNT, api_token=TOKEN, binding_key=BindingKey.generate())


async def _boom(call: Call) -> Any:
    raise KeyError("a bug in a handler")


async def _refuse(call: Call) -> Any:
    raise ApiError(409, 1234, "refused")


FAILING = [
    Endpoint(
        "POST",
        "/boom",
        _boom,
        ApiToken(account=False),
        body=JsonBody(lambda why: ApiError(400, 1, why)),
    ),
    Endpoint("GET", "/refuse", _refuse, Open(), Shape.VECTORIZE),
    Endpoint("GET", "/boom-ai", _boom, Open(), Shape.AI),
]


def test_a_handler_bug_is_a_500_in_the_route_shape_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with TestClient(_door_with_a_failing_route().app(FAILING)) as c:
        with caplog.at_level(logging.ERROR, logger="cfai.local.emulator"):
            r = c.post("/boom", json={}, headers=AUTH)
        v4_error(r, 500, 10001)
        assert "KeyError" not in r.text and "Traceback" not in r.text
        assert "KeyError: 'a bug in a handler'" in caplog.text and "Traceback" in caplog.text
        ai = c.get("/boom-ai")
        assert ai.status_code == 500 and set(ai.json()) == {"internalCode", "name", "description"}
        assert c.get("/refuse").json() == {"code": 1234, "error": "refused"}
        # Bodies are parsed as JSON.parse does: no NaN, nothing too deep.
        assert c.post("/boom", content=b"[NaN]", headers=AUTH).json()["errors"][0]["code"] == 1
        deep = b"[" * 100_000 + b"]" * 100_000
        assert c.post("/boom", content=deep, headers=AUTH).status_code == 400


def _http(sock: socket.socket, request: bytes) -> tuple[int, bytes]:
    """One HTTP/1.1 exchange on an open connection (Content-Length framed answers)."""
    sock.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(rest) < length:
        rest += sock.recv(65536)
    return int(head.split(b" ")[1]), rest[:length]


def test_a_handler_bug_keeps_the_connection_usable() -> None:
    app = _door_with_a_failing_route().app(FAILING)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off", ws="none")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        wait_for("the app to serve", lambda: server.started, timeout=10, alive=thread.is_alive)
        request = f"GET /boom-ai HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n\r\n".encode()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            first = _http(sock, request)
            second = _http(sock, request)  # the same connection, after the failure
        assert first[0] == second[0] == 500
        assert json.loads(second[1])["internalCode"] == 10001
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()


# -- settings -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"vectorize_visiblity_delay": 1}, "vectorize_visiblity_delay"),
        ({"vectorize_visibility_delay": -1}, "vectorize_visibility_delay"),
        ({"remote_ai": {"base_url": "https://x"}}, "remote_ai.account_id"),
    ],
)
def test_a_bad_emulator_setting_is_refused_by_name(
    tmp_path: Path, settings: dict[str, Any], named: str
) -> None:
    with pytest.raises(ValueError, match=named.replace(".", r"\.")):
        build_app(EmulatorContext(tmp_path, ACCOUNT, TOKEN, settings=settings))


def test_services_read_their_typed_settings(tmp_path: Path) -> None:
    ctx = EmulatorContext(
        tmp_path,
        ACCOUNT,
        TOKEN,
        settings={"vectorize_visibility_delay": 2.5, "public_url": "http://h:1"},
    )
    _, services = build_app(ctx)
    # Typed handles: what another service (or a test) gets back is the service's own type.
    assert ctx.service(VectorizeService).store.visibility_delay == 2.5
    gateway = ctx.service(GatewayService)
    assert gateway.gateway_url("gw", "workers-ai") == f"http://h:1/v1/{ACCOUNT}/gw/workers-ai"
    assert ctx.service(WorkersAIService) is services["workers_ai"]
    for service in services.values():
        service.close()
