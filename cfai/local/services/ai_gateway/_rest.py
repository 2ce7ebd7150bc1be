"""REST management of gateways and logs, under
``/client/v4/accounts/{account_id}/ai-gateway/gateways``: API token, v4 envelope, paginated
lists with ``result_info``.

``logs/{id}/request`` and ``logs/{id}/response`` answer the stored body itself, with its
content type and no envelope: the API schema gives the 200 as the body ("Returns the
request body from a specific log"), and both SDKs return what they get without unwrapping
``result`` (cloudflare-python ``resources/ai_gateway/logs.py`` ``cast_to=object``;
cloudflare-typescript ``resources/ai-gateway/logs.ts``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from cfai.local.services.ai_gateway import _config
from cfai.local.services.ai_gateway import _errors as err
from cfai.local.services.ai_gateway._binding import LOG_PATCH_BODY, log_patch
from cfai.local.services.ai_gateway.gateway import GatewayPipeline
from cfai.local.services.frontdoor import JSON, ApiToken, Call, Endpoint, JsonBody, envelope

BASE = "/client/v4/accounts/{account_id}/ai-gateway/gateways"
CONFIG_BODY = JsonBody(lambda why: err.invalid("Request body must be valid JSON"))


def rest_endpoints(
    pipeline: GatewayPipeline, account_id: str, url_of: Callable[[str, str], str]
) -> list[Endpoint]:
    """The management routes over `pipeline`'s store; `url_of(gateway, provider)` is the
    gateway URL `getUrl` reports."""
    store = pipeline.store

    def answer(gateway: dict[str, Any]) -> dict[str, Any]:
        return {**gateway, "account_id": account_id, "account_tag": account_id, "is_default": False}

    def existing(call: Call) -> str:
        gid: str = call.params["gateway_id"]
        if store.get_gateway(gid) is None:
            raise err.gateway_not_found(gid)
        return gid

    async def create(call: Call) -> Any:
        config = _config.validate(call.body)
        return answer(store.create_gateway(config, now=pipeline.clock()))

    async def list_gateways(call: Call) -> Response:
        page, per_page = _paging(call.request, err.MAX_GATEWAYS_PER_PAGE)
        items, total = store.list_gateways(
            search=call.query.get("search"), page=page, per_page=per_page
        )
        return envelope(
            [answer(g) for g in items], result_info=_info(page, per_page, len(items), total)
        )

    async def get(call: Call) -> Any:
        gid = call.params["gateway_id"]
        gateway = store.get_gateway(gid)
        if gateway is None:
            raise err.gateway_not_found(gid)
        return answer(gateway)

    async def delete(call: Call) -> Any:
        gid = call.params["gateway_id"]
        pipeline.forget(gid)
        return answer(store.delete_gateway(gid))

    async def replace(call: Call) -> Any:
        gid = call.params["gateway_id"]
        config = _config.validate(call.body, gateway_id=gid)
        updated = store.replace_gateway(config, now=pipeline.clock())
        if config.get("cache_invalidate_on_update"):
            pipeline.cache.drop_gateway(gid)
        pipeline.limiter.drop_gateway(gid)
        return answer(updated)

    async def list_logs(call: Call) -> Response:
        gid = existing(call)
        page, per_page = _paging(call.request, err.MAX_LOGS_PER_PAGE)
        items, total, meta = await run_in_threadpool(
            store.list_logs, gid, call.query.multi_items(), page=page, per_page=per_page
        )
        info: dict[str, float] = _info(page, per_page, len(items), total)
        if call.query.get("meta_info", "").lower() == "true":
            info.update(meta)
        return envelope(items, result_info=info)

    async def delete_logs(call: Call) -> Any:
        gid = existing(call)
        limit = _int(call.query.get("limit", "10000"), "limit", 1, 10000)
        await run_in_threadpool(store.delete_logs, gid, call.query.multi_items(), limit=limit)
        return None

    async def get_log(call: Call) -> Any:
        return store.get_log(existing(call), call.params["log_id"])

    async def patch_log(call: Call) -> Any:
        store.patch_log(existing(call), call.params["log_id"], log_patch(call.body))
        return {}

    async def log_body(call: Call) -> Response:
        gid, log_id = existing(call), call.params["log_id"]
        which = call.request.url.path.rsplit("/", 1)[1]
        content_type, body = store.log_body(gid, log_id, which)
        return Response(body, media_type=None, headers={"content-type": content_type or JSON})

    async def url(call: Call) -> Any:
        return url_of(existing(call), call.params["provider"])

    auth = ApiToken()
    one, logs, log = BASE + "/{gateway_id}", BASE + "/{gateway_id}/logs", BASE + "/{gateway_id}/logs/{log_id}"  # fmt: skip
    return [
        Endpoint("POST", BASE, create, auth, body=CONFIG_BODY),
        Endpoint("GET", BASE, list_gateways, auth),
        Endpoint("GET", one, get, auth),
        Endpoint("PUT", one, replace, auth, body=CONFIG_BODY),
        Endpoint("DELETE", one, delete, auth),
        Endpoint("GET", logs, list_logs, auth),
        Endpoint("DELETE", logs, delete_logs, auth),
        Endpoint("GET", log, get_log, auth),
        Endpoint("PATCH", log, patch_log, auth, body=LOG_PATCH_BODY),
        Endpoint("GET", log + "/request", log_body, auth),
        Endpoint("GET", log + "/response", log_body, auth),
        Endpoint("GET", one + "/url/{provider}", url, auth),
    ]


_MAX_PAGE = 2**31 - 1


def _paging(request: Request, max_per_page: int) -> tuple[int, int]:
    # Bounded so that the page's offset fits SQLite's 64-bit integers.
    page = _int(request.query_params.get("page", "1"), "page", 1, _MAX_PAGE)
    per_page = _int(
        request.query_params.get("per_page", str(err.DEFAULT_PER_PAGE)), "per_page", 1, max_per_page
    )
    return page, per_page


def _int(raw: str, name: str, minimum: int, maximum: int | None) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise err.bad_query(f"{name}: must be an integer") from None
    if value < minimum or (maximum is not None and value > maximum):
        raise err.bad_query(
            f"{name}: must be {minimum} to {maximum}"
            if maximum
            else f"{name}: must be >= {minimum}"
        )
    return value


def _info(page: int, per_page: int, count: int, total: int) -> dict[str, float]:
    return {"page": page, "per_page": per_page, "count": count, "total_count": total}
