"""The emulator's surface as a client sees it over HTTP: its own OpenAPI document, and
inputs that used to crash handlers.

Reproductions from issue 11, "30 inputs crash emulator handlers": each was a 500
``text/plain`` and a reset keep-alive connection; each must be a 4xx in the route's error
shape on a connection that keeps serving. (Gateway log filters are checked with the log
query parser, not here.)
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from _emulator_process import (
    Emulator,
    assert_refusal,
    client_port,
    running_emulator,
    tracebacks,
)

from cfai.local.services.frontdoor import Shape

pytestmark = pytest.mark.platform

LLAMA = "@cf/meta/llama-3.1-8b-instruct"
BIG = "9" * 401


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with running_emulator(tmp_path_factory.mktemp("emulator")) as running:
        yield running


# -- the document ----------------------------------------------------------------------------


def test_openapi_document_lists_every_route_and_needs_the_token(emulator: Emulator) -> None:
    assert httpx.get(f"{emulator.url}/__cfai/openapi.json").status_code == 401
    r = httpx.get(f"{emulator.url}/__cfai/openapi.json", headers=emulator.auth())
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    doc = r.json()
    listed = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    assert ("/__cfai/openapi.json", "get") in listed and ("/__cfai/reset", "post") in listed
    assert ("/query", "post") in listed and ("/run", "post") in listed
    run = doc["paths"]["/client/v4/accounts/{account_id}/ai/run/{model}"]["post"]
    assert run["security"] == [{"apiToken": []}] and run["x-cfai-shape"] == "envelope"
    query = doc["paths"]["/query"]["post"]
    assert query["security"] == [{"bindingToken": []}] and query["x-cfai-binding"] == "vectorize"
    assert {
        "name": "host",
        "in": "header",
        "required": True,
        "schema": {"enum": ["vector-search"]},
    } in query["parameters"]
    assert doc["paths"]["/__cfai/health"]["get"]["security"] == []
    schema = schemathesis.openapi.from_dict(doc)
    assert all(op.ok() for op in schema.get_all_operations())  # every operation loads


# -- inputs that crashed handlers ------------------------------------------------------------


def _vector(first: str) -> str:
    return "[" + ",".join([first] + ["0.1"] * 767) + "]"


DEEP = '{"a":' * 3000 + "1" + "}" * 3000
NDJSON = {"content-type": "application/x-ndjson"}


def _json_mode(schema: dict[str, Any]) -> str:
    return json.dumps(
        {"prompt": "x", "response_format": {"type": "json_schema", "json_schema": schema}}
    )


# (name, kind: "rest" | "bind-<type>" | "gateway", method, path, headers, body, shape)
CRASHES: list[tuple[str, str, str, str, dict[str, str], str | None, Shape]] = [
    ("query-1e999", "rest", "POST", "/vectorize/v2/indexes/{index}/query", {},
     '{"vector":' + _vector("1e999") + "}", Shape.ENVELOPE),
    ("query-401-digits", "rest", "POST", "/vectorize/v2/indexes/{index}/query", {},
     '{"vector":' + _vector(BIG) + "}", Shape.ENVELOPE),
    ("binding-query-401-digits", "bind-vectorize", "POST", "/query", {},
     '{"vector":' + _vector(BIG) + "}", Shape.VECTORIZE),
    ("binding-query-past-float32", "bind-vectorize", "POST", "/query", {},
     '{"vector":' + _vector("1e300") + "}", Shape.VECTORIZE),
    ("filter-gt-401-digits", "bind-vectorize", "POST", "/query", {},
     '{"vector":' + _vector("0.2") + ',"filter":{"n":{"$gt":' + BIG + "}}}", Shape.VECTORIZE),
    ("metadata-3000-deep", "bind-vectorize", "POST", "/upsert", NDJSON,
     '{"id":"deep","values":' + _vector("0.1") + ',"metadata":' + DEEP + "}", Shape.VECTORIZE),
    ("rest-metadata-3000-deep", "rest", "POST", "/vectorize/v2/indexes/{index}/upsert", NDJSON,
     '{"id":"deep","values":' + _vector("0.1") + ',"metadata":' + DEEP + "}", Shape.ENVELOPE),
    ("upsert-past-float32", "bind-vectorize", "POST", "/upsert", NDJSON,
     '{"id":"big","values":' + _vector("1e300") + "}", Shape.VECTORIZE),
    ("upsert-lone-surrogate", "bind-vectorize", "POST", "/upsert", NDJSON,
     '{"id":"s","values":' + _vector("0.1") + ',"metadata":{"t":"\\ud800"}}', Shape.VECTORIZE),
    ("preset-list", "rest", "POST", "/vectorize/v2/indexes", {},
     '{"name":"p","config":{"preset":[]}}', Shape.ENVELOPE),
    ("count-superscript", "rest", "GET", "/vectorize/v2/indexes/{index}/list?count=%C2%B2", {},
     None, Shape.ENVELOPE),
    ("gateways-page-1e23", "rest", "GET", f"/ai-gateway/gateways?page={10**23}", {},
     None, Shape.ENVELOPE),
    ("logs-page-1e23", "rest", "GET", f"/ai-gateway/gateways/{{gateway}}/logs?page={10**23}", {},
     None, Shape.ENVELOPE),
    ("schema-multipleof-0", "rest", "POST", f"/ai/run/{LLAMA}", {},
     _json_mode({"type": "integer", "multipleOf": 0}), Shape.ENVELOPE),
    ("schema-anyof-empty", "rest", "POST", f"/ai/run/{LLAMA}", {},
     _json_mode({"anyOf": []}), Shape.ENVELOPE),
    ("schema-minitems-null", "bind-ai", "POST", "/run?version=3", {"cf-consn-model-id": LLAMA},
     '{"inputs":' + _json_mode({"type": "array", "minItems": None}) + "}", Shape.AI),
    ("cache-ttl-inf", "gateway", "POST", f"/workers-ai/{LLAMA}", {"cf-aig-cache-ttl": "inf"},
     '{"prompt":"x"}', Shape.ENVELOPE),
    ("gateway-run-options-list", "bind-ai", "POST", "/ai-gateway/run?version=3",
     {"cf-consn-model-id": LLAMA}, '{"inputs":{"prompt":"x"},"options":[1]}', Shape.AI),
    ("prompt-lone-surrogate", "rest", "POST", f"/ai/run/{LLAMA}", {},
     '{"prompt":"\\ud800"}', Shape.ENVELOPE),
    ("binding-prompt-lone-surrogate", "bind-ai", "POST", "/run?version=3",
     {"cf-consn-model-id": LLAMA}, '{"inputs":{"prompt":"\\ud800"}}', Shape.AI),
    ("gateway-prompt-lone-surrogate", "gateway", "POST", f"/workers-ai/{LLAMA}", {},
     '{"prompt":"\\ud800"}', Shape.ENVELOPE),
]  # fmt: skip


@pytest.fixture(scope="module")
def keepalive(emulator: Emulator) -> Iterator[httpx.Client]:
    """One connection for every crash input: a reset shows as a new client port."""
    with httpx.Client(limits=httpx.Limits(max_connections=1), timeout=30) as client:
        yield client


@pytest.mark.parametrize(
    ("kind", "method", "path", "headers", "body", "shape"),
    [case[1:] for case in CRASHES],
    ids=[case[0] for case in CRASHES],
)
def test_inputs_that_crashed_handlers_are_refused_on_a_kept_connection(
    emulator: Emulator,
    keepalive: httpx.Client,
    kind: str,
    method: str,
    path: str,
    headers: dict[str, str],
    body: str | None,
    shape: Shape,
) -> None:
    path = path.format(index=emulator.index, gateway=emulator.gateway)
    if kind == "rest":
        url, extra = f"{emulator.api}{path}", emulator.auth()
    elif kind == "gateway":
        url, extra = (
            f"{emulator.url}/v1/{emulator.account}/{emulator.gateway}{path}",
            emulator.auth(),
        )
    else:
        binding = kind.removeprefix("bind-")
        host = "vector-search" if binding == "vectorize" else "workers-binding.ai"
        url, extra = f"{emulator.url}{path}", {**emulator.binding(binding), "host": host}
    r = keepalive.request(method, url, headers={**extra, **headers}, content=body)
    assert_refusal(r, shape)
    assert r.status_code == 400, r.text
    after = keepalive.get(f"{emulator.url}/__cfai/health")
    assert after.status_code == 200
    assert client_port(after) == client_port(r), "the connection was not kept"
    assert not tracebacks(emulator)


def test_a_request_http_itself_refuses_gets_the_envelope(emulator: Emulator) -> None:
    port = int(emulator.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(
            b"POST /__cfai/reset HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n"
            b"content-length: 3\r\n\r\n{}"
        )
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ") and b"content-type: application/json" in head
    assert json.loads(body)["errors"] == [{"code": 6003, "message": "Invalid request headers"}]


@pytest.mark.parametrize("method", [b"FOO", b"get", b"MSEARCH"])
def test_a_method_the_http_parser_does_not_know_gets_the_envelope(
    emulator: Emulator, method: bytes
) -> None:
    """llhttp refuses these methods where h11 takes any token: the emulator must still
    answer them as the front door does (a 405 in the envelope naming the method), and the
    connection keeps serving."""
    port = int(emulator.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(method + b" /__cfai/health HTTP/1.1\r\nhost: x\r\n\r\n")
        s.sendall(b"GET /__cfai/health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    first, _, rest = answer.partition(b"\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 405 ") and b"content-type: application/json" in first
    length = int(first.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    error = json.loads(rest[:length])["errors"][0]
    assert method.decode() in error["message"]
    assert rest[length:].startswith(b"HTTP/1.1 200 ")
