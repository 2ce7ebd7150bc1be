"""The emulated AI Gateway: REST management, the Worker binding wire, the gateway URL form.

Requests run through a stand-in Workers AI that numbers its answers, so a cache HIT (same
number again) is told apart from a fresh run, and "not processed" is a call count.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Host, Router
from starlette.testclient import TestClient

from cfai.local.services._cf import CloudflareError
from cfai.local.services.ai_gateway import AiGateway
from cfai.local.services.base import EmulatorContext, Service

ACCOUNT = "a" * 32
TOKEN = "test-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}
BASE = f"/client/v4/accounts/{ACCOUNT}/ai-gateway/gateways"
MODEL = "@cf/meta/llama-3.1-8b-instruct"
T0 = 1_700_000_040.0  # a multiple of 60: fixed windows of 60 s start here
RATE_LIMITED = {
    "success": False,
    "result": [],
    "messages": [],
    "error": [{"code": 2003, "message": "Rate limited"}],
    "name": "AiGatewayError",
    "httpCode": 429,
    "internalCode": 2003,
}


@dataclass(frozen=True)
class Result:
    content_type: str
    body: bytes | None = None
    chunks: Iterator[bytes] | None = None
    usage: Mapping[str, int] | None = None
    result: Any = None


class ModelError(CloudflareError):
    def __init__(self, status: int, internal_code: int, message: str) -> None:
        super().__init__(status, internal_code, message)
        self.internal_code = internal_code


class StandInWorkersAI(Service):
    """Answers `{"response": "<prompt> #<n>"}` where n counts calls; fails for `@cf/bad`."""

    name = "workers_ai"

    def __init__(self, ctx: EmulatorContext) -> None:
        super().__init__(ctx)
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def run(self, model: str, inputs: Mapping[str, Any]) -> Result:
        self.calls.append((model, dict(inputs)))
        if model == "@cf/bad":
            raise ModelError(400, 5007, f"No such model {model} or task")
        usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
        if inputs.get("stream"):
            events = [b'data: {"response":"he"}\n\n', b'data: {"response":"y"}\n\n']
            events.append(b'data: {"response":"","usage":' + json.dumps(usage).encode() + b"}\n\n")
            return Result("text/event-stream", chunks=iter([*events, b"data: [DONE]\n\n"]))
        result = {"response": f"{inputs.get('prompt')} #{len(self.calls)}", "usage": usage}
        return Result("application/json", json.dumps(result).encode(), None, usage, result)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@dataclass
class Platform:
    gateway: AiGateway
    ai: StandInWorkersAI
    clock: Clock
    rest: TestClient
    binding: TestClient

    def create(self, gateway_id: str = "gw", **fields: Any) -> dict[str, Any]:
        body = {"id": gateway_id, **gateway_fields(), **fields}
        response = self.rest.post(BASE, json=body, headers=AUTH)
        assert response.status_code == 200, response.text
        return response.json()["result"]  # type: ignore[no-any-return]

    def run(self, prompt: str = "hi", gateway_id: str = "gw", **options: Any) -> Any:
        body = {"inputs": {"prompt": prompt}, "options": {"gateway": {"id": gateway_id, **options}}}
        return self.binding.post(
            "/ai-gateway/run?version=3", json=body, headers={"cf-consn-model-id": MODEL}
        )

    def logs(self, gateway_id: str = "gw", **params: Any) -> Any:
        return self.rest.get(f"{BASE}/{gateway_id}/logs", params=params, headers=AUTH)


def gateway_fields(**overrides: Any) -> dict[str, Any]:
    return {
        "cache_invalidate_on_update": True,
        "cache_ttl": None,
        "collect_logs": True,
        "rate_limiting_interval": None,
        "rate_limiting_limit": None,
        "rate_limiting_technique": "fixed",
        **overrides,
    }


def make_platform(state_dir: Path, **settings: Any) -> Platform:
    ctx = EmulatorContext(
        state_dir=state_dir, account_id=ACCOUNT, api_token=TOKEN, settings=settings
    )
    clock = Clock()
    gateway, ai = AiGateway(ctx, clock=clock), StandInWorkersAI(ctx)
    ctx.services.update({"ai_gateway": gateway, "workers_ai": ai})
    hosts: list[BaseRoute] = [Host(h, app=Router(r)) for h, r in gateway.binding_routes().items()]
    app = Starlette(routes=[*hosts, *gateway.routes()])
    binding = TestClient(app, base_url="http://workers-binding.ai")
    return Platform(gateway, ai, clock, TestClient(app), binding)


@pytest.fixture
def p(tmp_path: Path) -> Iterator[Platform]:
    platform = make_platform(tmp_path, public_url="http://127.0.0.1:8787")
    yield platform
    platform.gateway.close()


def assert_error(response: Any, status: int, code: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["success"] is False and body["result"] is None and body["messages"] == []
    assert body["errors"][0]["code"] == code and body["errors"][0]["message"]


# -- REST management ------------------------------------------------------------------------


def test_create_gateway_answers_every_field_in_envelope(p: Platform) -> None:
    response = p.rest.post(
        BASE, json={"id": "prod-chat_1", **gateway_fields(cache_ttl=60)}, headers=AUTH
    )

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert (body["success"], body["errors"], body["messages"]) == (True, [], [])
    gw = body["result"]
    assert gw["id"] == "prod-chat_1" and gw["account_id"] == ACCOUNT and gw["internal_id"]
    assert gw["cache_ttl"] == 60 and gw["collect_logs"] is True
    assert gw["rate_limiting_technique"] == "fixed" and gw["authentication"] is False
    assert gw["log_management"] is None and gw["log_management_strategy"] is None
    assert gw["created_at"] == gw["modified_at"] == "2023-11-14T22:14:00.000Z"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"id": "gw", "cache_ttl": None}, 400, 7001),  # required fields missing
        ({"id": "x" * 65, **gateway_fields()}, 400, 7001),
        ({"id": "Upper", **gateway_fields()}, 400, 7001),
        ({"id": "-lead", **gateway_fields()}, 400, 7001),
        ({"id": "gw", **gateway_fields(rate_limiting_technique="leaky")}, 400, 7001),
        ({"id": "gw", **gateway_fields(cache_ttl=-1)}, 400, 7001),
        ({"id": "gw", **gateway_fields(log_management=10)}, 400, 7001),
    ],
)
def test_create_gateway_rejects_bad_config(
    p: Platform, body: dict[str, Any], status: int, code: int
) -> None:
    assert_error(p.rest.post(BASE, json=body, headers=AUTH), status, code)


def test_create_gateway_twice_conflicts(p: Platform) -> None:
    p.create("gw")
    assert_error(p.rest.post(BASE, json={"id": "gw", **gateway_fields()}, headers=AUTH), 409, 7003)


def test_rest_needs_the_api_token(p: Platform) -> None:
    assert_error(p.rest.get(BASE), 401, 10000)
    assert_error(p.rest.get(BASE, headers={"authorization": "Bearer nope"}), 403, 9109)


def test_list_gateways_paginates_and_searches(p: Platform) -> None:
    for name in ("alpha", "beta", "alphabet"):
        p.create(name)

    page = p.rest.get(BASE, params={"per_page": 2, "page": 1}, headers=AUTH).json()
    found = p.rest.get(BASE, params={"search": "alpha"}, headers=AUTH).json()

    assert len(page["result"]) == 2
    assert page["result_info"] == {"page": 1, "per_page": 2, "count": 2, "total_count": 3}
    assert sorted(g["id"] for g in found["result"]) == ["alpha", "alphabet"]


def test_put_replaces_the_whole_config(p: Platform) -> None:
    p.create("gw", authentication=True, cache_ttl=300)
    p.clock.now += 5

    response = p.rest.put(f"{BASE}/gw", json=gateway_fields(collect_logs=False), headers=AUTH)

    gw = response.json()["result"]
    assert gw["authentication"] is False and gw["cache_ttl"] is None and gw["collect_logs"] is False
    assert gw["modified_at"] > gw["created_at"]
    assert_error(p.rest.put(f"{BASE}/nope", json=gateway_fields(), headers=AUTH), 404, 7002)


def test_delete_gateway_then_it_is_gone(p: Platform) -> None:
    p.create("gw")
    assert p.rest.delete(f"{BASE}/gw", headers=AUTH).json()["result"]["id"] == "gw"
    assert_error(p.rest.get(f"{BASE}/gw", headers=AUTH), 404, 7002)
    assert_error(p.rest.delete(f"{BASE}/gw", headers=AUTH), 404, 7002)


def test_gateways_survive_a_restart(tmp_path: Path) -> None:
    first = make_platform(tmp_path)
    first.create("gw", cache_ttl=60)
    first.gateway.close()
    second = make_platform(tmp_path)
    assert second.rest.get(f"{BASE}/gw", headers=AUTH).json()["result"]["cache_ttl"] == 60
    second.gateway.close()


# -- caching through the binding ------------------------------------------------------------


def test_identical_request_misses_then_hits_with_identical_body(p: Platform) -> None:
    p.create("gw", cache_ttl=60)

    miss, hit = p.run("hello"), p.run("hello")

    assert (
        miss.headers["cf-aig-cache-status"] == "MISS"
        and hit.headers["cf-aig-cache-status"] == "HIT"
    )
    assert hit.headers["content-type"] == "application/json"
    assert hit.content == miss.content and miss.json()["response"] == "hello #1"
    assert len(p.ai.calls) == 1
    log = p.rest.get(f"{BASE}/gw/logs/{hit.headers['cf-aig-log-id']}", headers=AUTH).json()[
        "result"
    ]
    assert log["cached"] is True and log["tokens_in"] == 3 and log["tokens_out"] == 2


def test_different_inputs_do_not_share_a_cache_entry(p: Platform) -> None:
    p.create("gw", cache_ttl=60)
    p.run("a")
    assert p.run("b").headers["cf-aig-cache-status"] == "MISS"


def test_skip_cache_runs_the_model_again(p: Platform) -> None:
    p.create("gw", cache_ttl=60)
    p.run("hello")

    skipped = p.run("hello", skipCache=True)

    assert (
        skipped.headers["cf-aig-cache-status"] == "MISS"
        and skipped.json()["response"] == "hello #2"
    )


def test_cache_ttl_option_expires_on_the_clock(p: Platform) -> None:
    p.create("gw", cache_ttl=None)
    p.run("hello", cacheTtl=60)

    p.clock.now += 59
    fresh = p.run("hello", cacheTtl=60)
    p.clock.now += 1
    expired = p.run("hello", cacheTtl=60)

    assert fresh.headers["cf-aig-cache-status"] == "HIT"
    assert (
        expired.headers["cf-aig-cache-status"] == "MISS"
        and expired.json()["response"] == "hello #2"
    )


def test_gateway_without_cache_ttl_never_hits(p: Platform) -> None:
    p.create("gw", cache_ttl=None)
    p.run("hello")
    assert p.run("hello").headers["cf-aig-cache-status"] == "MISS"
    assert len(p.ai.calls) == 2


def test_cache_key_option_names_the_entry(p: Platform) -> None:
    p.create("gw", cache_ttl=60)
    p.run("first", cacheKey="k")
    shared = p.run("second", cacheKey="k")
    assert (
        shared.headers["cf-aig-cache-status"] == "HIT" and shared.json()["response"] == "first #1"
    )


def test_streams_are_not_cached_and_their_log_gets_usage(p: Platform) -> None:
    p.create("gw", cache_ttl=60)
    body = {"inputs": {"prompt": "x", "stream": True}, "options": {"gateway": {"id": "gw"}}}
    send = {"json": body, "headers": {"cf-consn-model-id": MODEL}}

    first = p.binding.post("/ai-gateway/run?version=3", **send)
    second = p.binding.post("/ai-gateway/run?version=3", **send)

    assert first.headers["content-type"] == "text/event-stream"
    assert (
        first.text.endswith("data: [DONE]\n\n") and second.headers["cf-aig-cache-status"] == "MISS"
    )
    assert len(p.ai.calls) == 2
    log = p.rest.get(f"{BASE}/gw/logs/{second.headers['cf-aig-log-id']}", headers=AUTH).json()[
        "result"
    ]
    assert (log["tokens_in"], log["tokens_out"], log["cached"]) == (3, 2, False)
    assert log["response_size"] == len(second.content)


def test_failed_results_are_not_cached_and_answer_workers_ai_error_shape(p: Platform) -> None:
    p.create("gw", cache_ttl=60)
    body = {"inputs": {"prompt": "x"}, "options": {"gateway": {"id": "gw"}}}
    send = {"json": body, "headers": {"cf-consn-model-id": "@cf/bad"}}

    first = p.binding.post("/ai-gateway/run?version=3", **send)
    p.binding.post("/ai-gateway/run?version=3", **send)

    assert first.status_code == 400 and first.headers["content-type"] == "application/json"
    assert first.json()["internalCode"] == 5007 and "No such model" in first.json()["description"]
    assert len(p.ai.calls) == 2
    logs = p.logs().json()["result"]
    assert [(entry["success"], entry["status_code"]) for entry in logs] == [(False, 400)] * 2


def test_unknown_gateway_is_refused_in_gateway_shape(p: Platform) -> None:
    response = p.run(gateway_id="nope")
    assert response.status_code == 404
    body = response.json()
    assert body["name"] == "AiGatewayError" and body["internalCode"] == 2001 and body["description"]
    assert p.ai.calls == []


def test_cache_is_dropped_when_the_gateway_is_updated(p: Platform) -> None:
    p.create("gw", cache_ttl=60)
    p.run("hello")
    p.rest.put(f"{BASE}/gw", json=gateway_fields(cache_ttl=60), headers=AUTH)
    assert p.run("hello").headers["cf-aig-cache-status"] == "MISS"
