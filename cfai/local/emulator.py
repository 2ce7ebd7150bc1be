"""The emulator: one Starlette app made of every registered service.

Run as its own process by the supervisor (``python -m cfai.local.emulator``) so that it can
be stopped and restarted independently of workerd. Settings come from the environment
(never from argv, which `ps` shows): ``CFAI_EMULATOR_TOKEN`` (the REST API token),
``CFAI_EMULATOR_ACCOUNT``, ``CFAI_EMULATOR_STATE``, ``CFAI_EMULATOR_SETTINGS`` (JSON).

Example::

    app, services = build_app(EmulatorContext(Path(".cfai/local"), "0" * 32, "token"))
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Host, Route, Router
from starlette.types import Receive, Scope, Send

from cfai.local.services import REGISTRY
from cfai.local.services._cf import api_error, json_response
from cfai.local.services.base import EmulatorContext, Service

__all__ = ["build_app", "main"]


async def _health(request: Request) -> Response:
    services = sorted(request.app.state.services)
    return json_response({"ok": True, "services": services})


async def _reset(request: Request) -> Response:
    for service in request.app.state.services.values():
        service.reset()
    return json_response({"ok": True})


async def _not_found(scope: Scope, receive: Receive, send: Send) -> None:
    request = Request(scope)
    response = api_error(404, 7003, f"No route for that URI: {request.method} {request.url.path}")
    await response(scope, receive, send)


def build_app(ctx: EmulatorContext) -> tuple[Starlette, dict[str, Service]]:
    """The app and its services (by name). Binding routes of several services that share a
    host are merged under one `Host` route."""
    services: dict[str, Service] = {cls.name: cls(ctx) for cls in REGISTRY}
    ctx.services.update(services)
    by_host: dict[str, list[BaseRoute]] = {}
    rest: list[BaseRoute] = []
    for service in services.values():
        for host, host_routes in service.binding_routes().items():
            by_host.setdefault(host, []).extend(host_routes)
        rest.extend(service.routes())
    routes: list[BaseRoute] = [
        Host(host, app=Router(r, default=_not_found)) for host, r in by_host.items()
    ]
    routes += [
        Route("/__cfai/health", _health),
        Route("/__cfai/reset", _reset, methods=["POST"]),
        *rest,
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        for service in services.values():
            service.close()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.router.default = _not_found
    app.state.services = services
    return app, services


def main(argv: Sequence[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m cfai.local.emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    ctx = EmulatorContext(
        state_dir=Path(os.environ.get("CFAI_EMULATOR_STATE", ".cfai/local")),
        account_id=os.environ.get("CFAI_EMULATOR_ACCOUNT", "0" * 32),
        api_token=os.environ["CFAI_EMULATOR_TOKEN"],
        settings={
            **json.loads(os.environ.get("CFAI_EMULATOR_SETTINGS", "{}")),
            "public_url": f"http://{args.host}:{args.port}",
        },
    )
    ctx.state_dir.mkdir(parents=True, exist_ok=True)
    app, _ = build_app(ctx)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
