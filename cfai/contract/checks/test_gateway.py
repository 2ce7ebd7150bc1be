"""AI Gateway behind chat Workers: repeats served from cache (proved by the gateway's logs),
and, opt-in, the rate limit answers 429 past its limit."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from cfai.contract._http import assert_json_error, describe, eventually, json_body, make_client
from cfai.contract._outputs import Target, WorkerTarget
from cfai.contract.plugin import ClientFactory


def _log(target: Target, gateway_id: str, log_id: str) -> dict[str, Any]:
    assert target.api is not None, "the outputs map has no `api` to read gateway logs"
    with make_client(
        target.api.base_url, token=target.api.token, secrets=(target.auth_token or "",)
    ) as api:
        r = api.get(target.api.gateway_log_url(gateway_id, log_id))
    assert r.status_code == 200, f"gateway log {log_id}: {describe(r)}"
    result = r.json().get("result")
    assert isinstance(result, dict), f"gateway log {log_id}: {r.text[:200]}"
    return result


def test_repeat_request_served_from_cache(
    gateway_worker: WorkerTarget,
    worker_client: ClientFactory,
    cfai_target: Target,
    consistency_wait: float,
) -> None:
    client = worker_client(gateway_worker.name)
    body = {
        "prompt": f"Cache probe {uuid.uuid4().hex}: name three primary colours.",
        "stream": False,
    }
    first, second = client.post("/chat", json=body), client.post("/chat", json=body)
    assert json_body(first) == json_body(second), "the repeat answered differently"
    ids = [r.headers.get("cf-aig-log-id") for r in (first, second)]
    assert all(ids), f"responses through a gateway must carry cf-aig-log-id; got {ids}"
    assert ids[0] != ids[1], "both requests carry the same log id"
    gateway = str(gateway_worker.gateway)
    logs = eventually(
        lambda: [_log(cfai_target, gateway, str(i)) for i in ids], max(consistency_wait, 0)
    )
    assert logs[0].get("cached") is False, f"the first request was already cached: {logs[0]}"
    assert logs[1].get("cached") is True, f"the repeat was not served from cache: {logs[1]}"


@pytest.mark.cfai_rate_limit
def test_rate_limit_429_past_limit(
    rate_limited_worker: WorkerTarget, worker_client: ClientFactory, cfai_target: Target
) -> None:
    assert cfai_target.api is not None
    with httpx.Client(headers={"authorization": f"Bearer {cfai_target.api.token}"}) as api:
        gw = api.get(cfai_target.api.gateway_url(str(rate_limited_worker.gateway))).json()
    limit = int(gw["result"]["rate_limiting_limit"])
    client = worker_client(rate_limited_worker.name)
    statuses: list[int] = []
    for i in range(limit + 1):
        r = client.post(
            "/chat",
            json={"prompt": f"rate probe {uuid.uuid4().hex} {i}", "max_tokens": 1, "stream": False},
        )
        statuses.append(r.status_code)
        if r.status_code == 429:
            assert_json_error(r, 429)
            return
        assert r.status_code == 200, f"request {i + 1} of {limit + 1}: {describe(r)}"
    raise AssertionError(f"{limit + 1} requests within the window, none answered 429")
