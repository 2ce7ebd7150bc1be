"""The emulated AI Gateway: REST management, the Worker binding wire, the gateway URL form.

Requests run through the real emulated Workers AI, wrapped to count the runs that reach it:
a cache HIT or a refused request is one that did not reach it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from cfai.local.services.ai_gateway import GatewayService
from cfai.local.services.ai_gateway._records import NewLog
from cfai.local.services.base import EmulatorContext
from cfai.local.services.frontdoor import BINDING_HEADER, BindingKey, BindingScope, FrontDoor
from cfai.local.services.workers_ai import AiResult, WorkersAIService

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


class CountingWorkersAI(WorkersAIService):
    """The real emulated Workers AI, counting the runs that reach it."""

    def __init__(self, ctx: EmulatorContext) -> None:
        super().__init__(ctx)
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def run(self, model: str, inputs: Mapping[str, Any]) -> AiResult:
        self.calls.append((model, dict(inputs)))
        return super().run(model, inputs)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@dataclass
class Platform:
    gateway: GatewayService
    ai: CountingWorkersAI
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
    gateway, ai = GatewayService(ctx, clock=clock), CountingWorkersAI(ctx)
    ctx.register(gateway, ai)
    key = BindingKey.generate()
    # Both services behind the front door, as the emulator app serves them.
    door = FrontDoor(account_id=ACCOUNT, api_token=TOKEN, binding_key=key)
    app = door.app([*ai.endpoints(), *gateway.endpoints()])
    token = {BINDING_HEADER: key.mint(BindingScope("ai", "qa"))}
    binding = TestClient(app, base_url="http://workers-binding.ai", headers=token)
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
    # 400 input validation naming `id` (chanfana's 7001), never 7003 ("could not route").
    p.create("gw")
    response = p.rest.post(BASE, json={"id": "gw", **gateway_fields()}, headers=AUTH)
    assert_error(response, 400, 7001)
    assert "already exists" in response.json()["errors"][0]["message"]


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


def test_logs_of_answered_requests_survive_a_restart(tmp_path: Path) -> None:
    # Log rows are committed by a writer thread: a clean stop writes what is still queued.
    first = make_platform(tmp_path)
    first.create("gw")
    ids = [first.run(f"question {i}").headers["cf-aig-log-id"] for i in range(5)]
    first.gateway.close()
    second = make_platform(tmp_path)
    logged = second.logs(per_page=50).json()["result"]
    assert sorted(log["id"] for log in logged) == sorted(ids)
    second.gateway.close()


def test_a_changed_gateway_applies_to_the_next_request(p: Platform) -> None:
    # The pipeline reads gateways from memory; every write of one must show at once.
    p.create("gw")
    assert "cf-aig-log-id" in p.run("first").headers
    p.rest.put(f"{BASE}/gw", json=gateway_fields(collect_logs=False), headers=AUTH)
    assert "cf-aig-log-id" not in p.run("second").headers
    p.rest.delete(f"{BASE}/gw", headers=AUTH)
    assert p.run("third").status_code != 200


# -- caching through the binding ------------------------------------------------------------


def test_identical_request_misses_then_hits_with_identical_body(p: Platform) -> None:
    p.create("gw", cache_ttl=60)

    miss, hit = p.run("hello"), p.run("hello")

    assert (
        miss.headers["cf-aig-cache-status"] == "MISS"
        and hit.headers["cf-aig-cache-status"] == "HIT"
    )
    assert hit.headers["content-type"] == "application/json"
    assert hit.content == miss.content and miss.json()["response"]
    assert len(p.ai.calls) == 1
    log = p.rest.get(f"{BASE}/gw/logs/{hit.headers['cf-aig-log-id']}", headers=AUTH).json()[
        "result"
    ]
    usage = miss.json()["usage"]
    assert log["cached"] is True
    assert (log["tokens_in"], log["tokens_out"]) == (
        usage["prompt_tokens"],
        usage["completion_tokens"],
    )


def test_different_inputs_do_not_share_a_cache_entry(p: Platform) -> None:
    p.create("gw", cache_ttl=60)
    p.run("a")
    assert p.run("b").headers["cf-aig-cache-status"] == "MISS"


def test_skip_cache_runs_the_model_again(p: Platform) -> None:
    p.create("gw", cache_ttl=60)
    p.run("hello")

    skipped = p.run("hello", skipCache=True)

    assert skipped.headers["cf-aig-cache-status"] == "MISS" and len(p.ai.calls) == 2


def test_cache_ttl_option_expires_on_the_clock(p: Platform) -> None:
    p.create("gw", cache_ttl=None)
    p.run("hello", cacheTtl=60)

    p.clock.now += 59
    fresh = p.run("hello", cacheTtl=60)
    p.clock.now += 1
    expired = p.run("hello", cacheTtl=60)

    assert fresh.headers["cf-aig-cache-status"] == "HIT"
    assert expired.headers["cf-aig-cache-status"] == "MISS" and len(p.ai.calls) == 2


def test_gateway_without_cache_ttl_never_hits(p: Platform) -> None:
    p.create("gw", cache_ttl=None)
    p.run("hello")
    assert p.run("hello").headers["cf-aig-cache-status"] == "MISS"
    assert len(p.ai.calls) == 2


def test_cache_key_option_names_the_entry(p: Platform) -> None:
    p.create("gw", cache_ttl=60)
    first = p.run("first", cacheKey="k")
    shared = p.run("second", cacheKey="k")
    assert shared.headers["cf-aig-cache-status"] == "HIT" and shared.content == first.content
    assert "first" in first.json()["response"] and len(p.ai.calls) == 1


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
    last_usage = json.loads(first.text.split("data: ")[-2])["usage"]
    assert log["cached"] is False and log["tokens_out"] == last_usage["completion_tokens"] > 0
    assert log["response_size"] == len(second.content)


def test_failed_results_are_not_cached_and_answer_workers_ai_error_shape(p: Platform) -> None:
    p.create("gw", cache_ttl=60)
    body = {"inputs": {"prompt": "x"}, "options": {"gateway": {"id": "gw"}}}
    send = {"json": body, "headers": {"cf-consn-model-id": "@cf/nope/missing"}}

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


# -- logs -----------------------------------------------------------------------------------


def test_logs_are_recorded_only_when_collect_logs_is_on(p: Platform) -> None:
    p.create("on", collect_logs=True)
    p.create("off", collect_logs=False)

    logged, silent = p.run(gateway_id="on"), p.run(gateway_id="off")

    assert "cf-aig-log-id" in logged.headers and "cf-aig-log-id" not in silent.headers
    assert p.logs("on").json()["result_info"]["total_count"] == 1
    assert p.logs("off").json()["result_info"]["total_count"] == 0


def test_collect_log_option_overrides_the_gateway_both_ways(p: Platform) -> None:
    p.create("on", collect_logs=True)
    p.create("off", collect_logs=False)

    assert "cf-aig-log-id" not in p.run(gateway_id="on", collectLog=False).headers
    assert "cf-aig-log-id" in p.run(gateway_id="off", collectLog=True).headers
    assert [p.logs(g).json()["result_info"]["total_count"] for g in ("on", "off")] == [0, 1]


def test_log_fields_and_metadata_keeps_five_flat_entries(p: Platform) -> None:
    p.create("gw")
    metadata = {"a": 1, "nested": {"x": 1}, "b": "two", "c": True, "d": None, "e": 5.5, "f": 6}

    response = p.run("hi", metadata=metadata, eventId="evt-1")

    log = p.rest.get(f"{BASE}/gw/logs/{response.headers['cf-aig-log-id']}", headers=AUTH).json()
    entry = log["result"]
    # JSON text over REST, as the API schema and both SDKs type it
    assert json.loads(entry["metadata"]) == {"a": 1, "b": "two", "c": True, "d": None, "e": 5.5}
    assert (entry["provider"], entry["model"], entry["path"]) == ("workers-ai", MODEL, MODEL)
    assert entry["model_type"] == "text-generation" and entry["event_id"] == "evt-1"
    assert (entry["status_code"], entry["success"], entry["cached"]) == (200, True, False)
    assert entry["request_size"] == len(json.dumps({"prompt": "hi"}, separators=(",", ":")))
    assert entry["response_size"] == len(response.content)
    assert entry["response_head"] == response.text and entry["response_head_complete"] is True
    assert entry["created_at"] == "2023-11-14T22:14:00.000Z"


def test_log_request_and_response_bodies(p: Platform) -> None:
    p.create("gw")
    log_id = p.run("hi").headers["cf-aig-log-id"]

    request = p.rest.get(f"{BASE}/gw/logs/{log_id}/request", headers=AUTH)
    response = p.rest.get(f"{BASE}/gw/logs/{log_id}/response", headers=AUTH)

    # the stored bodies themselves, not wrapped in the v4 envelope
    assert request.headers["content-type"] == "application/json"
    assert request.json() == {"prompt": "hi"} and "response" in response.json()


def test_patch_log_from_the_binding_is_visible_over_rest(p: Platform) -> None:
    p.create("gw")
    log_id = p.run().headers["cf-aig-log-id"]

    patched = p.binding.patch(
        f"/ai-gateway/gateways/gw/logs/{log_id}",
        json={"feedback": -1, "score": 80, "metadata": {"user": "u1"}},
    )
    fetched = p.binding.get(f"/ai-gateway/gateways/gw/logs/{log_id}")

    assert patched.status_code == 200
    entry = p.rest.get(f"{BASE}/gw/logs/{log_id}", headers=AUTH).json()["result"]
    assert (entry["feedback"], entry["score"]) == (-1, 80)
    assert json.loads(entry["metadata"]) == {"user": "u1"}
    assert fetched.json()["result"]["metadata"] == {"user": "u1"}  # workerd types a record
    assert fetched.json()["result"]["feedback"] == -1
    assert fetched.json()["result"]["request_head_complete"] is True


def test_patch_log_over_rest_validates_feedback(p: Platform) -> None:
    p.create("gw")
    log_id = p.run().headers["cf-aig-log-id"]
    assert_error(
        p.rest.patch(f"{BASE}/gw/logs/{log_id}", json={"feedback": 2}, headers=AUTH), 400, 7001
    )
    assert (
        p.rest.patch(f"{BASE}/gw/logs/{log_id}", json={"feedback": 1}, headers=AUTH).status_code
        == 200
    )


def test_get_log_unknown_answers_404_with_errors_message(p: Platform) -> None:
    p.create("gw")
    response = p.binding.get("/ai-gateway/gateways/gw/logs/01NOPE")
    assert response.status_code == 404
    assert (
        response.json()["errors"][0]["message"] == "Log Not Found"
    )  # what AiGatewayLogNotFound shows
    assert_error(p.rest.get(f"{BASE}/gw/logs/01NOPE", headers=AUTH), 404, 7002)


def test_logs_list_orders_filters_and_pages(p: Platform) -> None:
    p.create("gw", cache_ttl=60)
    ids = [p.run(prompt).headers["cf-aig-log-id"] for prompt in ("a", "b", "a")]  # last one HIT

    newest_first = p.logs(per_page=2).json()
    cached = p.logs(cached="true").json()["result"]
    oldest = p.logs(order_by_direction="asc", per_page=1, page=1).json()["result"]
    by_filter = p.logs(
        filters=json.dumps([{"key": "cached", "operator": "eq", "value": [False]}])
    ).json()

    assert [e["id"] for e in newest_first["result"]] == [ids[2], ids[1]]
    assert newest_first["result_info"] == {"page": 1, "per_page": 2, "count": 2, "total_count": 3}
    assert [e["id"] for e in cached] == [ids[2]] and [e["id"] for e in oldest] == [ids[0]]
    assert by_filter["result_info"]["total_count"] == 2
    assert_error(p.logs(order_by="nope"), 400, 7001)


def test_delete_logs_by_filter(p: Platform) -> None:
    p.create("gw", cache_ttl=60)
    for prompt in ("a", "a", "b"):
        p.run(prompt)

    deleted = p.rest.delete(f"{BASE}/gw/logs", params={"cached": "true"}, headers=AUTH)

    assert deleted.json()["success"] is True
    assert [e["cached"] for e in p.logs().json()["result"]] == [False, False]


def test_log_management_stop_inserting_keeps_the_oldest(p: Platform) -> None:
    p.create("gw", log_management=10_000, log_management_strategy="STOP_INSERTING")
    fill(p, 9_999)

    last = p.run("last")
    refused = p.run("over")

    assert "cf-aig-log-id" in last.headers and "cf-aig-log-id" not in refused.headers
    assert refused.status_code == 200  # the request itself is served
    assert p.logs().json()["result_info"]["total_count"] == 10_000


def test_log_management_delete_oldest_makes_room(p: Platform) -> None:
    p.create("gw", log_management=10_000, log_management_strategy="DELETE_OLDEST")
    first = fill(p, 10_000)

    newest = p.run("new").headers["cf-aig-log-id"]

    info = p.logs().json()
    assert info["result_info"]["total_count"] == 10_000 and info["result"][0]["id"] == newest
    assert_error(p.rest.get(f"{BASE}/gw/logs/{first}", headers=AUTH), 404, 7002)


def fill(p: Platform, count: int) -> str:
    """Store `count` logs straight into the gateway's store; answer the first id."""
    log = NewLog(model=MODEL, path=MODEL, status_code=200, success=True, cached=False, duration=1)
    ids = [p.gateway.store.insert_log("gw", log, now=T0 - 1) for _ in range(count)]
    assert ids[0] is not None
    return ids[0]


# -- getUrl ---------------------------------------------------------------------------------


def test_get_url_points_at_the_emulator(p: Platform) -> None:
    p.create("gw")
    expected = f"http://127.0.0.1:8787/v1/{ACCOUNT}/gw/workers-ai"

    binding = p.binding.get("/ai-gateway/gateways/gw/url/workers-ai")
    rest = p.rest.get(f"{BASE}/gw/url/workers-ai", headers=AUTH)

    assert binding.json() == {"result": {"url": expected}}
    assert rest.json()["result"] == expected
    assert p.binding.get("/ai-gateway/gateways/nope/url/workers-ai").status_code == 404


# -- rate limiting --------------------------------------------------------------------------


def test_fixed_rate_limit_is_clock_aligned_and_refuses_unprocessed(p: Platform) -> None:
    p.create(
        "gw", rate_limiting_limit=2, rate_limiting_interval=60, rate_limiting_technique="fixed"
    )
    p.clock.now = T0 + 50  # 10 s before the next window

    ok = [p.run("a").status_code, p.run("b").status_code]
    p.clock.now = T0 + 59  # same clock-aligned window
    refused = p.run("c")
    p.clock.now = T0 + 60  # new window: counter reset although only 10 s passed
    after = p.run("d")

    assert ok == [200, 200] and after.status_code == 200
    assert refused.status_code == 429 and refused.headers["content-type"] == "application/json"
    assert {k: v for k, v in refused.json().items() if k != "description"} == RATE_LIMITED
    assert [c[1]["prompt"] for c in p.ai.calls] == ["a", "b", "d"]


def test_sliding_rate_limit_counts_the_last_interval(p: Platform) -> None:
    p.create(
        "gw", rate_limiting_limit=2, rate_limiting_interval=60, rate_limiting_technique="sliding"
    )
    p.clock.now = T0 + 50

    first = [p.run("a").status_code, p.run("b").status_code]
    p.clock.now = T0 + 60  # a fixed window would have reset here
    across_boundary = p.run("c").status_code
    p.clock.now = T0 + 110  # both earlier requests are 60 s old
    later = p.run("d").status_code

    assert (first, across_boundary, later) == ([200, 200], 429, 200)
    assert len(p.ai.calls) == 3


def test_rate_limited_request_is_not_cached(p: Platform) -> None:
    p.create("gw", cache_ttl=60, rate_limiting_limit=1, rate_limiting_interval=60)
    p.run("a")
    p.run("b")  # refused
    p.clock.now += 60
    assert p.run("b").headers["cf-aig-cache-status"] == "MISS"


# -- the gateway URL form -------------------------------------------------------------------


def url_form(p: Platform, gateway_id: str = "gw", **headers: str) -> Any:
    return p.rest.post(
        f"/v1/{ACCOUNT}/{gateway_id}/workers-ai/{MODEL}",
        json={"prompt": "hi"},
        headers={**AUTH, **headers},
    )


def test_url_form_answers_the_rest_envelope_with_gateway_headers(p: Platform) -> None:
    p.create("gw", cache_ttl=60)

    miss, hit = url_form(p), url_form(p)

    assert miss.status_code == 200 and miss.headers["content-type"] == "application/json"
    body = miss.json()
    assert (body["success"], body["errors"], body["messages"]) == (True, [], [])
    assert body["result"]["response"]
    assert (miss.headers["cf-aig-cache-status"], hit.headers["cf-aig-cache-status"]) == (
        "MISS",
        "HIT",
    )
    assert hit.json() == body and "cf-aig-log-id" in hit.headers


def test_url_form_headers_skip_cache_and_set_ttl(p: Platform) -> None:
    p.create("gw", cache_ttl=None)
    url_form(p, **{"cf-aig-cache-ttl": "60"})
    assert url_form(p, **{"cf-aig-cache-ttl": "60"}).headers["cf-aig-cache-status"] == "HIT"
    skipped = url_form(p, **{"cf-aig-cache-ttl": "60", "cf-aig-skip-cache": "true"})
    assert skipped.headers["cf-aig-cache-status"] == "MISS"


def test_url_form_authentication(p: Platform) -> None:
    p.create("gw", authentication=True)

    missing = url_form(p)
    wrong = url_form(p, **{"cf-aig-authorization": "Bearer wrong"})
    right = url_form(p, **{"cf-aig-authorization": f"Bearer {TOKEN}"})

    for refused in (missing, wrong):
        assert refused.status_code == 401
        assert refused.json()["error"] == [{"code": 2009, "message": "Unauthorized"}]
        assert refused.json()["internalCode"] == 2009
    assert right.status_code == 200 and len(p.ai.calls) == 1


def test_binding_calls_are_trusted_on_an_authenticated_gateway(p: Platform) -> None:
    p.create("gw", authentication=True)
    assert p.run().status_code == 200


def test_url_form_needs_the_workers_ai_token(p: Platform) -> None:
    p.create("gw")
    response = p.rest.post(f"/v1/{ACCOUNT}/gw/workers-ai/{MODEL}", json={"prompt": "hi"})
    assert_error(response, 401, 10000)
    assert p.ai.calls == []


def test_url_form_rate_limit_body_is_exact(p: Platform) -> None:
    p.create("gw", rate_limiting_limit=1, rate_limiting_interval=60)
    url_form(p)
    refused = url_form(p)
    assert refused.status_code == 429 and refused.json() == RATE_LIMITED


def test_openai_url_forms_answer_the_models_workers_ai_answers(tmp_path: Path) -> None:
    # A model the declaration vouches for (setting ``models``) answers through the gateway's
    # OpenAI-compatible forms exactly as on /ai/v1; one nobody declared is refused on both.
    declared = "@cf/acme/house-chat-7b"
    p = make_platform(tmp_path, models={declared: {"task": "text-generation"}})
    try:
        p.create("gw")
        body = {"model": declared, "messages": [{"role": "user", "content": "hi"}]}
        direct = p.rest.post(f"/client/v4/accounts/{ACCOUNT}/ai/v1/chat/completions",
                             json=body, headers=AUTH)  # fmt: skip
        forms = [
            p.rest.post(f"/v1/{ACCOUNT}/gw/workers-ai/v1/chat/completions", json=body,
                        headers=AUTH),
            p.rest.post(f"/v1/{ACCOUNT}/gw/compat/chat/completions",
                        json={**body, "model": f"workers-ai/{declared}"}, headers=AUTH),
        ]  # fmt: skip
        assert direct.status_code == 200, direct.text
        for answer in forms:
            assert answer.status_code == 200, answer.text
            assert answer.json()["object"] == "chat.completion"
            assert answer.json()["model"] == declared
            message = answer.json()["choices"][0]["message"]
            assert message["content"] == direct.json()["choices"][0]["message"]["content"]
        stranger = {**body, "model": "@cf/acme/undeclared-7b"}
        refused = p.rest.post(f"/v1/{ACCOUNT}/gw/workers-ai/v1/chat/completions",
                              json=stranger, headers=AUTH)  # fmt: skip
        assert refused.status_code == 400, refused.text
        assert "@cf/acme/undeclared-7b" in refused.text
    finally:
        p.gateway.close()


def test_log_filters_in_the_sdks_dotted_form_and_odd_values_never_crash(p: Platform) -> None:
    p.create("gw")
    p.run("a", metadata={"team": "x"})
    p.run("b", metadata={"team": "y"})

    dotted = p.logs(
        **{"filters.key": "metadata.value", "filters.operator": "eq", "filters.value": "x"}
    )
    by_key = p.logs(
        **{"filters.key": "metadata.key", "filters.operator": "eq", "filters.value": "team"}
    )
    two = p.rest.get(
        f"{BASE}/gw/logs?filters.key=success&filters.key=model&filters.operator=eq"
        "&filters.operator=eq&filters.value=true&filters.value=x&filters.value=y",
        headers=AUTH,
    )
    odd = p.logs(
        filters=json.dumps([{"key": "metadata.value", "operator": "eq", "value": {"a": 1}}])
    )
    odd_bool = p.logs(filters=json.dumps([{"key": "success", "operator": "eq", "value": {"a": 1}}]))

    assert dotted.json()["result_info"]["total_count"] == 1
    assert by_key.json()["result_info"]["total_count"] == 2
    assert_error(two, 400, 7001)  # 2 filters, 3 values: refused, never guessed
    assert "cannot be matched up" in two.json()["errors"][0]["message"]
    assert odd.status_code == 200 and odd.json()["result"] == []
    assert_error(odd_bool, 400, 7001)
