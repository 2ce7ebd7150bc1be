"""AI Gateway's REST API (gateways, URLs, logs) driven by Cloudflare's Python SDK.

Logs are made by real requests through the gateway with the `openai` client (the
OpenAI-compatible ``workers-ai/v1`` form), as a user's application would make them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import cloudflare
import openai
import pytest

GATEWAYS = "/accounts/{account_id}/ai-gateway/gateways"
ONE = GATEWAYS + "/{gateway_id}"
LOGS = ONE + "/logs"
LOG = LOGS + "/{id}"
MODEL = "@cf/meta/llama-3.1-8b-instruct"
SDK = "python-sdk"


def through(gateway_root: str, api: dict[str, str], gateway_id: str) -> openai.OpenAI:
    base = f"{gateway_root}/v1/{api['account_id']}/{gateway_id}/workers-ai/v1"
    return openai.OpenAI(base_url=base, api_key=api["token"], max_retries=0)


def make_logs(
    gateway_root: str, api: dict[str, str], gateway_id: str, ok: int, failed: int
) -> None:
    with through(gateway_root, api, gateway_id) as client:
        for i in range(ok):
            client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": f"hello {i}"}],
                extra_headers={"cf-aig-metadata": json.dumps({"user": f"u{i}"})},
            )  # fmt: skip
        for _ in range(failed):
            with pytest.raises(openai.BadRequestError):
                client.chat.completions.create(model="@cf/nope/nothing", messages=[])


def log_list(cf: cloudflare.Cloudflare, account: str, gateway_id: str, **params: Any) -> list[Any]:
    return list(cf.ai_gateway.logs.list(gateway_id, account_id=account, **params))


# -- gateways -------------------------------------------------------------------------------


@pytest.mark.parity(f"POST {GATEWAYS}", client=SDK)
def test_create_gateway_stores_byok_only(
    cf: cloudflare.Cloudflare, account: str, new_gateway: Callable[..., str]
) -> None:
    gateway_id = new_gateway(byok_only=True, authentication=True)

    got = cf.ai_gateway.get(gateway_id, account_id=account)

    assert got.id == gateway_id and got.byok_only is True and got.authentication is True


@pytest.mark.parity(f"POST {GATEWAYS}", client=SDK)
def test_create_gateway_twice_is_a_validation_error_not_no_route(
    cf: cloudflare.Cloudflare, account: str, new_gateway: Callable[..., str]
) -> None:
    gateway_id = new_gateway()

    with pytest.raises(cloudflare.BadRequestError) as refused:
        cf.ai_gateway.create(
            account_id=account, id=gateway_id, cache_invalidate_on_update=True, cache_ttl=0,
            collect_logs=True, rate_limiting_interval=0, rate_limiting_limit=0,
            rate_limiting_technique="fixed",
        )  # fmt: skip

    error = refused.value.body["errors"][0]  # type: ignore[index]
    assert error["code"] == 7001 and "already exists" in error["message"]


@pytest.mark.parity(f"GET {GATEWAYS}", client=SDK)
def test_list_gateways_searches_and_pages(
    cf: cloudflare.Cloudflare, account: str, new_gateway: Callable[..., str]
) -> None:
    made = {new_gateway(), new_gateway()}

    found = {g.id for g in cf.ai_gateway.list(account_id=account, search="parity-", per_page=1)}

    assert made <= found


@pytest.mark.parity(f"GET {ONE}", client=SDK)
def test_get_gateway_and_a_missing_one(
    cf: cloudflare.Cloudflare, account: str, new_gateway: Callable[..., str]
) -> None:
    gateway_id = new_gateway(cache_ttl=60)

    assert cf.ai_gateway.get(gateway_id, account_id=account).cache_ttl == 60
    with pytest.raises(cloudflare.NotFoundError):
        cf.ai_gateway.get("parity-missing", account_id=account)


@pytest.mark.parity(f"PUT {ONE}", client=SDK)
def test_update_gateway_replaces_its_settings(
    cf: cloudflare.Cloudflare, account: str, new_gateway: Callable[..., str]
) -> None:
    gateway_id = new_gateway()

    updated = cf.ai_gateway.update(
        gateway_id, account_id=account, cache_invalidate_on_update=False, cache_ttl=120,
        collect_logs=False, rate_limiting_interval=60, rate_limiting_limit=5,
        rate_limiting_technique="sliding", byok_only=True,
    )  # fmt: skip

    assert (updated.cache_ttl, updated.collect_logs, updated.byok_only) == (120, False, True)
    assert cf.ai_gateway.get(gateway_id, account_id=account).rate_limiting_technique == "sliding"


@pytest.mark.parity(f"DELETE {ONE}", client=SDK)
def test_delete_gateway(cf: cloudflare.Cloudflare, account: str) -> None:
    cf.ai_gateway.create(
        account_id=account, id="parity-delete-me", cache_invalidate_on_update=True,
        cache_ttl=0, collect_logs=True, rate_limiting_interval=0, rate_limiting_limit=0,
        rate_limiting_technique="fixed",
    )  # fmt: skip

    deleted = cf.ai_gateway.delete("parity-delete-me", account_id=account)

    assert deleted.id == "parity-delete-me"
    with pytest.raises(cloudflare.NotFoundError):
        cf.ai_gateway.get("parity-delete-me", account_id=account)


@pytest.mark.parity(f"GET {ONE}/url/{{provider}}", client=SDK)
def test_gateway_url_points_at_the_local_gateway(
    cf: cloudflare.Cloudflare, account: str, gateway_root: str, new_gateway: Callable[..., str]
) -> None:
    gateway_id = new_gateway()

    url = cf.ai_gateway.urls.get("workers-ai", account_id=account, gateway_id=gateway_id)

    assert url == f"{gateway_root}/v1/{account}/{gateway_id}/workers-ai"


@pytest.mark.parity(f"GET {GATEWAYS}", client=SDK)
def test_global_api_key_and_email_authenticate(
    api: dict[str, str], account: str, new_gateway: Callable[..., str]
) -> None:
    gateway_id = new_gateway()
    base = api["base_url"]

    with cloudflare.Cloudflare(api_email="dev@example.com", api_key=api["token"], base_url=base) as keyed:  # fmt: skip
        assert keyed.ai_gateway.get(gateway_id, account_id=account).id == gateway_id
    with (
        cloudflare.Cloudflare(api_email="dev@example.com", api_key="not-the-key", base_url=base) as wrong,
        pytest.raises(cloudflare.PermissionDeniedError) as refused,
    ):  # fmt: skip
        wrong.ai_gateway.get(gateway_id, account_id=account)
    assert refused.value.body["errors"][0]["code"] == 9103  # type: ignore[index]


# -- logs -----------------------------------------------------------------------------------


@pytest.mark.parity(f"GET {LOGS}", client=SDK)
def test_log_filters_in_the_dotted_form_select_the_failures(
    cf: cloudflare.Cloudflare, account: str, api: dict[str, str], gateway_root: str,
    new_gateway: Callable[..., str],
) -> None:  # fmt: skip
    gateway_id = new_gateway()
    make_logs(gateway_root, api, gateway_id, ok=2, failed=1)

    failed = log_list(
        cf, account, gateway_id, filters=[{"key": "success", "operator": "eq", "value": [False]}]
    )
    both = log_list(
        cf, account, gateway_id,
        filters=[{"key": "success", "operator": "eq", "value": [True]},
                 {"key": "model", "operator": "eq", "value": [MODEL]}],
    )  # fmt: skip
    every = log_list(cf, account, gateway_id)

    assert [(log.success, log.model) for log in failed] == [(False, "@cf/nope/nothing")]
    assert len(both) == 2 and all(log.success and log.model == MODEL for log in both)
    assert len(every) == 3
    assert all(log.model != "v1/chat/completions" for log in every)  # no bogus model
    assert {log.path for log in every} == {"v1/chat/completions"}


@pytest.mark.parity(f"GET {LOGS}", client=SDK)
def test_log_plain_parameters_apply(
    cf: cloudflare.Cloudflare, account: str, api: dict[str, str], gateway_root: str,
    new_gateway: Callable[..., str],
) -> None:  # fmt: skip
    gateway_id = new_gateway()
    make_logs(gateway_root, api, gateway_id, ok=2, failed=1)
    logs = log_list(cf, account, gateway_id)
    newest = logs[0].created_at

    assert len(log_list(cf, account, gateway_id, success=False)) == 1
    assert len(log_list(cf, account, gateway_id, cached=True)) == 0
    assert len(log_list(cf, account, gateway_id, model=MODEL, provider="workers-ai")) == 2
    assert len(log_list(cf, account, gateway_id, min_tokens_in=1, success=True)) == 2
    assert len(log_list(cf, account, gateway_id, max_tokens_in=0)) == 0
    assert len(log_list(cf, account, gateway_id, search="u1")) == 1  # metadata text
    assert len(log_list(cf, account, gateway_id, start_date=newest)) >= 1
    assert len(log_list(cf, account, gateway_id, end_date=logs[-1].created_at)) >= 1
    ordered = log_list(cf, account, gateway_id, order_by="success", order_by_direction="asc")
    assert ordered[0].success is False


@pytest.mark.parity(f"DELETE {LOGS}", client=SDK)
def test_filtered_delete_deletes_only_the_matches(
    cf: cloudflare.Cloudflare, account: str, api: dict[str, str], gateway_root: str,
    new_gateway: Callable[..., str],
) -> None:  # fmt: skip
    gateway_id = new_gateway()
    make_logs(gateway_root, api, gateway_id, ok=2, failed=1)

    deleted = cf.ai_gateway.logs.delete(
        gateway_id, account_id=account,
        filters=[{"key": "success", "operator": "eq", "value": [False]}],
    )  # fmt: skip

    assert deleted.success is True
    assert [log.success for log in log_list(cf, account, gateway_id)] == [True, True]


@pytest.mark.parity(f"GET {LOG}", client=SDK)
def test_get_log_has_metadata_as_json_text(
    cf: cloudflare.Cloudflare, account: str, api: dict[str, str], gateway_root: str,
    new_gateway: Callable[..., str],
) -> None:  # fmt: skip
    gateway_id = new_gateway()
    make_logs(gateway_root, api, gateway_id, ok=1, failed=0)
    log_id = log_list(cf, account, gateway_id)[0].id

    log = cf.ai_gateway.logs.get(log_id, account_id=account, gateway_id=gateway_id)

    assert isinstance(log.metadata, str) and json.loads(log.metadata) == {"user": "u0"}
    assert (log.provider, log.model, log.success) == ("workers-ai", MODEL, True)
    assert log.request_head and log.response_head


@pytest.mark.parity(f"PATCH {LOG}", client=SDK)
def test_edit_log_feedback_and_metadata(
    cf: cloudflare.Cloudflare, account: str, api: dict[str, str], gateway_root: str,
    new_gateway: Callable[..., str],
) -> None:  # fmt: skip
    gateway_id = new_gateway()
    make_logs(gateway_root, api, gateway_id, ok=1, failed=0)
    log_id = log_list(cf, account, gateway_id)[0].id

    cf.ai_gateway.logs.edit(
        log_id, account_id=account, gateway_id=gateway_id, feedback=1, score=90,
        metadata={"reviewed": True},
    )  # fmt: skip

    log = cf.ai_gateway.logs.get(log_id, account_id=account, gateway_id=gateway_id)
    assert json.loads(log.metadata or "{}") == {"reviewed": True}
    assert len(log_list(cf, account, gateway_id, feedback=1)) == 1


@pytest.mark.parity(f"GET {LOG}/request", client=SDK)
def test_log_request_is_the_stored_body(
    cf: cloudflare.Cloudflare, account: str, api: dict[str, str], gateway_root: str,
    new_gateway: Callable[..., str],
) -> None:  # fmt: skip
    gateway_id = new_gateway()
    make_logs(gateway_root, api, gateway_id, ok=1, failed=0)
    log_id = log_list(cf, account, gateway_id)[0].id

    body = cf.ai_gateway.logs.request(log_id, account_id=account, gateway_id=gateway_id)

    assert body == {"model": MODEL, "messages": [{"role": "user", "content": "hello 0"}]}


@pytest.mark.parity(f"GET {LOG}/response", client=SDK)
def test_log_response_is_the_stored_body(
    cf: cloudflare.Cloudflare, account: str, api: dict[str, str], gateway_root: str,
    new_gateway: Callable[..., str],
) -> None:  # fmt: skip
    gateway_id = new_gateway()
    make_logs(gateway_root, api, gateway_id, ok=1, failed=0)
    log_id = log_list(cf, account, gateway_id)[0].id

    body = cf.ai_gateway.logs.response(log_id, account_id=account, gateway_id=gateway_id)

    assert isinstance(body, dict) and body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["role"] == "assistant"
