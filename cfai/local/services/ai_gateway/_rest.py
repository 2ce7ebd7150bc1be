"""REST management of gateways and logs, under
``/client/v4/accounts/{account_id}/ai-gateway/gateways``: bearer token, v4 envelope,
paginated lists with ``result_info``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cfai.local.services._cf import CloudflareError, api_error, check_token, envelope
from cfai.local.services.ai_gateway import _config
from cfai.local.services.ai_gateway import _errors as err
from cfai.local.services.ai_gateway._binding import log_patch

if TYPE_CHECKING:
    from cfai.local.services.ai_gateway import AiGateway

BASE = "/client/v4/accounts/{account_id}/ai-gateway/gateways"
_Handler = Callable[[Request], Awaitable[Response]]


def rest_routes(service: AiGateway) -> list[Route]:
    store = service.store

    def guarded(handler: _Handler) -> _Handler:
        async def endpoint(request: Request) -> Response:
            if (denied := check_token(request, service.ctx.api_token)) is not None:
                return denied
            if request.path_params["account_id"] != service.ctx.account_id:
                return api_error(403, 10000, "Authentication error")
            try:
                return await handler(request)
            except CloudflareError as e:
                return api_error(e.status, e.code, e.message)

        return endpoint

    def answer(gateway: dict[str, Any]) -> dict[str, Any]:
        account = service.ctx.account_id
        return {**gateway, "account_id": account, "account_tag": account, "is_default": False}

    async def create(request: Request) -> Response:
        config = _config.validate(await _json(request))
        return envelope(answer(store.create_gateway(config, now=service.gateway.clock())))

    async def list_gateways(request: Request) -> Response:
        page, per_page = _paging(request, err.MAX_GATEWAYS_PER_PAGE)
        items, total = store.list_gateways(
            search=request.query_params.get("search"), page=page, per_page=per_page
        )
        return envelope(
            [answer(g) for g in items], result_info=_info(page, per_page, len(items), total)
        )

    async def one(request: Request) -> Response:
        gid = request.path_params["gateway_id"]
        if request.method == "GET":
            gateway = store.get_gateway(gid)
            if gateway is None:
                raise err.gateway_not_found(gid)
            return envelope(answer(gateway))
        if request.method == "DELETE":
            service.forget(gid)
            return envelope(answer(store.delete_gateway(gid)))
        config = _config.validate(await _json(request), gateway_id=gid)
        updated = store.replace_gateway(config, now=service.gateway.clock())
        if config.get("cache_invalidate_on_update"):
            service.cache.drop_gateway(gid)
        service.limiter.drop_gateway(gid)
        return envelope(answer(updated))

    async def logs(request: Request) -> Response:
        gid = _existing(service, request)
        query = dict(request.query_params)
        if request.method == "DELETE":
            limit = _int(query.pop("limit", "10000"), "limit", 1, 10000)
            await run_in_threadpool(store.delete_logs, gid, query, limit=limit)
            return envelope(None)
        page, per_page = _paging(request, err.MAX_LOGS_PER_PAGE)
        for name in ("page", "per_page"):
            query.pop(name, None)
        items, total = await run_in_threadpool(
            store.list_logs, gid, query, page=page, per_page=per_page
        )
        return envelope(items, result_info=_info(page, per_page, len(items), total))

    async def log(request: Request) -> Response:
        gid, log_id = _existing(service, request), request.path_params["log_id"]
        if request.method == "PATCH":
            store.patch_log(gid, log_id, log_patch(await request.body()))
            return envelope({})
        return envelope(store.get_log(gid, log_id))

    async def log_body(request: Request) -> Response:
        gid, log_id = _existing(service, request), request.path_params["log_id"]
        which = request.url.path.rsplit("/", 1)[1]
        content_type, body = store.log_body(gid, log_id, which)
        return envelope(_decoded(content_type, body))

    async def url(request: Request) -> Response:
        gid = _existing(service, request)
        return envelope(service.gateway_url(gid, request.path_params["provider"]))

    return [
        Route(BASE, guarded(create), methods=["POST"]),
        Route(BASE, guarded(list_gateways), methods=["GET"]),
        Route(BASE + "/{gateway_id}", guarded(one), methods=["GET", "PUT", "DELETE"]),
        Route(BASE + "/{gateway_id}/logs", guarded(logs), methods=["GET", "DELETE"]),
        Route(BASE + "/{gateway_id}/logs/{log_id}", guarded(log), methods=["GET", "PATCH"]),
        Route(BASE + "/{gateway_id}/logs/{log_id}/request", guarded(log_body), methods=["GET"]),
        Route(BASE + "/{gateway_id}/logs/{log_id}/response", guarded(log_body), methods=["GET"]),
        Route(BASE + "/{gateway_id}/url/{provider}", guarded(url), methods=["GET"]),
    ]


async def _json(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except ValueError:
        raise err.invalid("Request body must be valid JSON") from None


def _existing(service: AiGateway, request: Request) -> str:
    gid: str = request.path_params["gateway_id"]
    if service.store.get_gateway(gid) is None:
        raise err.gateway_not_found(gid)
    return gid


def _paging(request: Request, max_per_page: int) -> tuple[int, int]:
    page = _int(request.query_params.get("page", "1"), "page", 1, None)
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


def _info(page: int, per_page: int, count: int, total: int) -> dict[str, int]:
    return {"page": page, "per_page": per_page, "count": count, "total_count": total}


def _decoded(content_type: str | None, body: bytes) -> Any:
    """A stored body as the REST answer's `result`: parsed JSON, text, or base64 bytes."""
    if content_type == "application/json":
        try:
            return json.loads(body)
        except ValueError:
            pass
    if (
        content_type is None
        or content_type.startswith("text/")
        or content_type == "application/json"
    ):
        return body.decode("utf-8", "replace")
    return base64.b64encode(body).decode()
