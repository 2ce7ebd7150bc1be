"""The emulator's whole surface, as a client sees it over HTTP: its own OpenAPI document,
inputs that used to crash handlers, and a property test over every route.

Reproductions from issue 11, "30 inputs crash emulator handlers": each was a 500
``text/plain`` and a reset keep-alive connection; each must be a 4xx in the route's error
shape on a connection that keeps serving. (Gateway log filters are checked with the log
query parser, not here.)

The property test draws requests from the document the emulator publishes
(``GET /__cfai/openapi.json``) with schemathesis, enriched with the body and query fields
the handlers read (`HINTS`): every answer is a success or a 4xx in the route's shape, never
a 500 or a dropped connection, and the emulator's memory stays bounded. ``make test`` runs
about 300 cases (`CASES`, derandomized), ``make fuzz`` 5,000 and prints counts per status.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import requests
import schemathesis
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfai.catalog import CATALOG
from cfai.config import load_file
from cfai.local.ports import free_port
from cfai.local.processes import spawn, stop
from cfai.local.provisioning import provision
from cfai.local.services.frontdoor import (
    BINDING_HEADER,
    ERROR_SCHEMAS,
    BindingKey,
    BindingScope,
    Shape,
)

pytestmark = pytest.mark.platform

REPO = Path(__file__).resolve().parents[2]
#: Generated cases in all (the router's property test takes a fifth).
CASES = int(os.environ.get("CFAI_FUZZ_CASES", "300"))
LLAMA = "@cf/meta/llama-3.1-8b-instruct"
BIG = "9" * 401
MiB = 1024 * 1024


@dataclass(frozen=True)
class Emulator:
    url: str
    token: str
    account: str
    key: BindingKey
    pid: int
    state: Path
    index: str
    gateway: str

    @property
    def api(self) -> str:
        return f"{self.url}/client/v4/accounts/{self.account}"

    def auth(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"}

    def binding(self, kind: str) -> dict[str, str]:
        index = self.index if kind == "vectorize" else None
        return {BINDING_HEADER: self.key.mint(BindingScope(kind, "fuzz", index))}


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """An emulator process of its own with the local stack's gateway (no rate limit) and
    index provisioned through its REST API."""
    state = tmp_path_factory.mktemp("emulator-surface")
    data = yaml.safe_load((REPO / "Pulumi.local.yaml").read_text())["config"]["cfai:platform"]
    del data["gateways"]["main"]["rate_limit"]
    (state / "platform.yaml").write_text(yaml.safe_dump(data))
    declaration = load_file(state / "platform.yaml")
    port, token = free_port(), "surface-token"
    env = {
        "CFAI_EMULATOR_TOKEN": token,
        "CFAI_EMULATOR_ACCOUNT": declaration.account_id,
        "CFAI_EMULATOR_STATE": str(state),
    }
    argv = [sys.executable, "-m", "cfai.local.emulator", "--port", str(port)]
    pid = spawn(argv, cwd=state, log=state / "emulator.log", env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/__cfai/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, (state / "emulator.log").read_text()
            time.sleep(0.05)
        provision(declaration, f"{url}/client/v4", token, lambda _: None)
        yield Emulator(
            url=url,
            token=token,
            account=declaration.account_id,
            key=BindingKey.read(state),
            pid=pid,
            state=state,
            index=declaration.physical_name("docs"),
            gateway=declaration.physical_name("main"),
        )
    finally:
        stop(pid)
        shutil.rmtree(state, ignore_errors=True)


def assert_refusal(r: httpx.Response, shape: Shape) -> None:
    """A 4xx, JSON exactly, in `shape`'s error body."""
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    assert r.headers["content-type"] == "application/json", r.text[:300]
    jsonschema.validate(r.json(), ERROR_SCHEMAS[shape])


def tracebacks(emulator: Emulator) -> str:
    log = (emulator.state / "emulator.log").read_text()
    return log[log.find("Traceback") :][:3000] if "Traceback" in log else ""


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


def _client_port(r: httpx.Response) -> int:
    return int(r.extensions["network_stream"].get_extra_info("client_addr")[1])


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
    assert _client_port(after) == _client_port(r), "the connection was not kept"
    assert not tracebacks(emulator)


# -- the property test ------------------------------------------------------------------------

_NUM = {"type": "number"}
_STR = {"type": "string"}
_INT = {"type": "integer"}
_BOOL = {"type": "boolean"}
_MESSAGES = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {"role": {"enum": ["system", "user", "assistant", "tool"]}, "content": _STR},
    },
}
_INPUTS = {
    "type": "object",
    "properties": {
        "prompt": _STR,
        "messages": _MESSAGES,
        "text": {"anyOf": [_STR, {"type": "array", "items": _STR}]},
        "max_tokens": _INT,
        "temperature": _NUM,
        "top_p": _NUM,
        "seed": _INT,
        "stream": _BOOL,
        "raw": _BOOL,
        "response_format": {
            "type": "object",
            "properties": {"type": {"enum": ["json_object", "json_schema"]}, "json_schema": {}},
        },
        "width": _INT,
        "height": _INT,
        "num_steps": _INT,
        "steps": _INT,
        "source_lang": _STR,
        "target_lang": _STR,
    },
}
_VECTOR = {"type": "array", "items": _NUM, "minItems": 766, "maxItems": 770}
_VECTORS = {
    "type": "array",
    "maxItems": 3,
    "items": {
        "type": "object",
        "required": ["id", "values"],
        "properties": {
            "id": _STR,
            "values": _VECTOR,
            "namespace": _STR,
            "metadata": {"type": "object"},
        },
    },
}
_QUERY = {
    "type": "object",
    "properties": {
        "vector": _VECTOR,
        "vectorId": _STR,
        "topK": _INT,
        "returnValues": _BOOL,
        "returnMetadata": {"enum": ["none", "indexed", "all", True, False]},
        "namespace": _STR,
        "filter": {"type": "object"},
    },
}
_GATEWAY = {
    "type": "object",
    "properties": {
        "id": _STR,
        "cache_ttl": _INT,
        "cache_invalidate_on_update": _BOOL,
        "collect_logs": _BOOL,
        "rate_limiting_interval": _INT,
        "rate_limiting_limit": _INT,
        "rate_limiting_technique": {"enum": ["fixed", "sliding"]},
        "authentication": _BOOL,
        "log_management": _INT,
    },
}
_GATEWAY_HEADERS = {
    "cf-aig-cache-ttl": _STR,
    "cf-aig-skip-cache": {"enum": ["true", "false", "1"]},
    "cf-aig-cache-key": _STR,
    "cf-aig-metadata": _STR,
    "cf-aig-collect-log": {"enum": ["true", "false"]},
}
_PAGING = {"page": _STR, "per_page": _STR}

#: What the handlers read beyond the document (method, path) -> body schema, query, headers.
HINTS: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/run"): {
        "body": {
            "type": "object",
            "properties": {"inputs": _INPUTS, "options": {"type": "object"}},
        },
        "headers": {"cf-consn-model-id": {"enum": sorted(CATALOG)}},
    },
    ("post", "/ai-gateway/run"): {
        "body": {
            "type": "object",
            "properties": {
                "inputs": _INPUTS,
                "options": {
                    "type": "object",
                    "properties": {
                        "gateway": {
                            "type": "object",
                            "properties": {
                                "id": {"enum": ["local-main", "nope"]},
                                "cacheTtl": _NUM,
                                "skipCache": _BOOL,
                                "cacheKey": _STR,
                                "metadata": {"type": "object"},
                                "collectLog": _BOOL,
                                "eventId": _STR,
                            },
                        }
                    },
                },
            },
        },
        "headers": {"cf-consn-model-id": {"enum": sorted(CATALOG)}},
    },
    ("post", "/client/v4/accounts/{account_id}/ai/run/{model}"): {"body": _INPUTS},
    ("post", "/v1/{account_id}/{gateway_id}/workers-ai/{model}"): {
        "body": _INPUTS,
        "headers": _GATEWAY_HEADERS,
    },
    ("get", "/client/v4/accounts/{account_id}/ai/models/search"): {
        "query": {**_PAGING, "search": _STR, "task": _STR}
    },
    ("post", "/client/v4/accounts/{account_id}/ai/v1/chat/completions"): {
        "body": {
            "type": "object",
            "properties": {
                "model": {"enum": sorted(CATALOG)},
                "messages": _MESSAGES,
                "max_tokens": _INT,
                "stream": _BOOL,
                "temperature": _NUM,
                "response_format": {"type": "object"},
            },
        }
    },
    ("post", "/client/v4/accounts/{account_id}/ai/v1/embeddings"): {
        "body": {
            "type": "object",
            "properties": {
                "model": {"enum": sorted(CATALOG)},
                "input": {"anyOf": [_STR, {"type": "array", "items": _STR}]},
            },
        }
    },
    ("post", "/client/v4/accounts/{account_id}/ai-gateway/gateways"): {"body": _GATEWAY},
    ("put", "/client/v4/accounts/{account_id}/ai-gateway/gateways/{gateway_id}"): {
        "body": _GATEWAY
    },
    ("get", "/client/v4/accounts/{account_id}/ai-gateway/gateways"): {
        "query": {**_PAGING, "search": _STR}
    },
    ("get", "/client/v4/accounts/{account_id}/ai-gateway/gateways/{gateway_id}/logs"): {
        "query": _PAGING
    },
    ("patch", "/client/v4/accounts/{account_id}/ai-gateway/gateways/{gateway_id}/logs/{log_id}"): {
        "body": {
            "type": "object",
            "properties": {"feedback": _NUM, "score": _NUM, "metadata": {"type": "object"}},
        }
    },
    ("post", "/query"): {"body": _QUERY},
    ("post", "/getByIds"): {
        "body": {"type": "object", "properties": {"ids": {"type": "array", "items": _STR}}}
    },
    ("post", "/deleteByIds"): {
        "body": {"type": "object", "properties": {"ids": {"type": "array", "items": _STR}}}
    },
    ("post", "/client/v4/accounts/{account_id}/vectorize/v2/indexes"): {
        "body": {
            "type": "object",
            "properties": {
                "name": _STR,
                "description": _STR,
                "config": {
                    "type": "object",
                    "properties": {
                        "dimensions": _INT,
                        "metric": {"enum": ["cosine", "euclidean", "dot-product"]},
                        "preset": _STR,
                    },
                },
            },
        }
    },
    ("post", "/client/v4/accounts/{account_id}/vectorize/v2/indexes/{name}/query"): {
        "body": _QUERY
    },
    ("get", "/client/v4/accounts/{account_id}/vectorize/v2/indexes/{name}/list"): {
        "query": {"count": _STR, "cursor": _STR}
    },
    (
        "post",
        "/client/v4/accounts/{account_id}/vectorize/v2/indexes/{name}/metadata_index/create",
    ): {
        "body": {
            "type": "object",
            "properties": {
                "propertyName": _STR,
                "indexType": {"enum": ["string", "number", "boolean"]},
            },
        }
    },
}
for _op in ("insert", "upsert"):
    HINTS[("post", f"/{_op}")] = {"json": _VECTORS}
    HINTS[("post", f"/client/v4/accounts/{{account_id}}/vectorize/v2/indexes/{{name}}/{_op}")] = {
        "json": _VECTORS,
        "query": {"unparsable-behavior": {"enum": ["error", "discard", "x"]}},
    }

#: Routes left out: reset wipes what the other cases need to reach deep.
SKIP = {("post", "/__cfai/reset")}


def enriched(doc: dict[str, Any]) -> dict[str, Any]:
    """`doc` with `HINTS` applied (body schemas, query and header parameters)."""
    doc = copy.deepcopy(doc)
    for (method, path), hint in HINTS.items():
        op = doc["paths"][path][method]
        for where, params in (
            ("query", hint.get("query", {})),
            ("header", hint.get("headers", {})),
        ):
            op["parameters"] += [
                {"name": name, "in": where, "required": False, "schema": schema}
                for name, schema in params.items()
            ]
        if "body" in hint:
            op["requestBody"]["content"]["application/json"]["schema"] = hint["body"]
        if "json" in hint:
            vectors = {"type": "object", "properties": {"vectors": hint["json"]}}
            op["requestBody"]["content"]["application/json"]["schema"] = vectors
    for method, path in SKIP:
        del doc["paths"][path][method]
    return doc


def send(client: httpx.Client, case: Any, base_url: str, headers: dict[str, str]) -> httpx.Response:
    """`case` serialized as schemathesis would send it (through requests' own encoding), sent
    on `client`: httpx shows a dropped keep-alive connection where requests would retry."""
    kw = case.as_transport_kwargs(base_url=base_url, headers=headers)
    fields = ("method", "url", "headers", "files", "data", "json", "params", "cookies")
    prepared = requests.Request(**{k: kw[k] for k in fields if k in kw}).prepare()
    return client.request(
        str(prepared.method),
        str(prepared.url),
        headers=dict(prepared.headers),
        content=prepared.body,
    )


def _process_peak(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for {pid}")


def test_every_generated_request_is_answered_or_refused_in_shape(emulator: Emulator) -> None:
    doc = httpx.get(f"{emulator.url}/__cfai/openapi.json", headers=emulator.auth()).json()
    schema = schemathesis.openapi.from_dict(enriched(doc))
    operations = [op.ok() for op in schema.get_all_operations()]
    real = {
        "account_id": [emulator.account],
        "name": [emulator.index],
        "gateway_id": [emulator.gateway],
        "model": sorted(CATALOG),
        "provider": ["workers-ai", "openai"],
    }

    def value(name: str, method: str) -> st.SearchStrategy[str | None]:
        # The real account always; a real index, gateway or model three times in four, but
        # never for a DELETE (the rest of the run needs them); None: schemathesis draws one.
        if name == "account_id":
            return st.just(emulator.account)
        if name not in real or method == "delete":
            return st.none()
        known = st.sampled_from(real[name])
        return st.sampled_from([True, True, True, False]).flatmap(
            lambda use: known if use else st.none()
        )

    def strategy(op: Any) -> st.SearchStrategy[Any]:
        chosen = {p.name: value(p.name, op.method) for p in op.path_parameters}
        modes = st.sampled_from(
            [schemathesis.GenerationMode.POSITIVE] * 3 + [schemathesis.GenerationMode.NEGATIVE]
        )
        return st.tuples(st.fixed_dictionaries(chosen), modes).flatmap(
            lambda t: op.as_strategy(
                t[1], path_parameters={k: v for k, v in t[0].items() if v is not None}
            )
        )

    statuses: Counter[int] = Counter()
    peak = _process_peak(emulator.pid)
    client = httpx.Client(limits=httpx.Limits(max_connections=1), timeout=60)
    # (client port, the connection may close: a `connection: close` either way, and when)
    last: list[tuple[int, bool, float, str]] = []

    @settings(
        max_examples=max(1, CASES * 4 // 5),
        deadline=None,
        database=None,
        derandomize=CASES <= 300,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        op = data.draw(st.sampled_from(operations), label="operation")
        case = data.draw(strategy(op), label="case")
        definition = op.definition.raw
        headers: dict[str, str] = {}
        # Mostly with credentials (so requests reach the handlers); schemathesis' negative
        # cases also drop or garble them.
        if data.draw(st.sampled_from([True] * 9 + [False]), label="credentials"):
            if definition["security"] == [{"apiToken": []}]:
                headers.update(emulator.auth())
            if "x-cfai-binding" in definition:
                headers.update(emulator.binding(definition["x-cfai-binding"]))
        try:
            r = send(client, case, emulator.url, headers)
        except httpx.LocalProtocolError:
            # The client refused to send it (an invalid header) and dropped its connection.
            last.append((-1, True, time.monotonic(), op.label))
            return
        except httpx.TransportError as err:
            last.append((-1, True, time.monotonic(), op.label))
            raise AssertionError(
                f"{op.label}: no answer ({err!r})\n{case.as_curl_command()}"
            ) from None
        statuses[r.status_code] += 1
        port = _client_port(r)
        if last and last[-1][0] != port:
            _, may_close, when, label = last[-1]
            # uvicorn closes a connection idle for 5 s (generating a case can take that long).
            assert may_close or time.monotonic() - when > 4, f"{label} dropped the connection"
        closing = (
            "close"
            in (r.headers.get("connection", "") + r.request.headers.get("connection", "")).lower()
        )
        last.append((port, closing, time.monotonic(), op.label))
        assert r.status_code < 500, (
            f"{op.label}: {r.status_code} {r.text[:300]}\n{tracebacks(emulator)}"
        )
        if r.status_code >= 400:
            shape = Shape(definition["x-cfai-shape"])
            host = next(
                (p["schema"]["enum"] for p in definition["parameters"] if p["name"] == "host"), None
            )
            if host is not None and r.request.headers.get("host") not in host:
                shape = Shape.ENVELOPE  # not this route's host: the emulator's own 404
            assert r.headers["content-type"] == "application/json", (op.label, r.text[:300])
            jsonschema.validate(r.json(), ERROR_SCHEMAS[shape])

    try:
        run()
    finally:
        client.close()
        print(
            f"\nemulator surface: {sum(statuses.values())} requests by status {dict(sorted(statuses.items()))}"
        )
    assert not tracebacks(emulator)
    # A bound, not a timing: the JSON mode blow-up this issue reported took 1.5 GB.
    assert _process_peak(emulator.pid) - peak < 256 * MiB
    assert statuses[200] > 0 and any(400 <= s < 500 for s in statuses)
