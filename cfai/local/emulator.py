"""The emulator: every registered service behind the front door, as one ASGI app.

Run as its own process by the supervisor (``python -m cfai.local.emulator``) so that it can
be stopped independently of the router. Settings come from the environment (never from
argv, which `ps` shows): ``CFAI_EMULATOR_TOKEN`` (the REST API token),
``CFAI_EMULATOR_ACCOUNT``, ``CFAI_EMULATOR_STATE``, ``CFAI_EMULATOR_SETTINGS`` (JSON, each key
read by the service that declares it), and for the runtime that runs uploaded scripts
(`cfai.local.runtime`) ``CFAI_EMULATOR_WORKERD`` (the workerd binary; without it scripts are
stored, not run) and ``CFAI_EMULATOR_PORTS`` (JSON: the public port planned per script). At start it writes a new binding key (``binding.key``, mode 600) into its state
directory: the workerd config written for this run mints the binding tokens with it.

Example::

    app, services = build_app(EmulatorContext(Path(".cfai/local"), "0" * 32, "token"),
                              binding_key=BindingKey.generate())
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import logging
import os
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from starlette.applications import Starlette

from cfai._files import private_dir
from cfai.local._http import fast_json_errors
from cfai.local.services import REGISTRY, EmulatorContext, Service, WorkersScriptsService
from cfai.local.services.frontdoor import (
    ApiError,
    ApiToken,
    BindingKey,
    Call,
    Endpoint,
    FrontDoor,
    Open,
    Shape,
    json_response,
    openapi_document,
)
from cfai.local.services.workers_scripts import WorkersScriptsSettings

__all__ = ["build_app", "check_settings", "main"]


def check_settings(settings: Mapping[str, Any]) -> None:
    """Refuse a settings key no service declares (a typo would otherwise be ignored) and a
    value its service's settings model refuses; ValueError naming the setting."""
    known = {name for cls in REGISTRY for name in cls.settings_model.model_fields}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ValueError(
            f"unknown emulator setting(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})"
        )
    for cls in REGISTRY:
        try:
            cls.settings_model.model_validate(settings)
        except ValidationError as err:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()
            )
            raise ValueError(f"emulator setting {problems}") from None


def _admin(services: Sequence[Service]) -> list[Endpoint]:
    async def health(call: Call) -> Any:
        return json_response({"ok": True, "services": sorted(s.name for s in services)})

    async def reset(call: Call) -> Any:
        for service in services:
            service.reset()
        return json_response({"ok": True})

    # Reset wipes every index and gateway: it takes the API token like any REST call, so a
    # web page's cross-origin text/plain POST (no preflight, no Authorization) is refused.
    return [
        Endpoint("GET", "/__cfai/health", health, Open()),
        Endpoint("POST", "/__cfai/reset", reset, ApiToken(account=False)),
    ]


def _openapi(endpoints: Sequence[Endpoint]) -> Endpoint:
    """``GET /__cfai/openapi.json``: the emulator's every route, this one included (the
    list is read when asked, after this endpoint joined it)."""

    async def document(call: Call) -> Any:
        return json_response(openapi_document(endpoints, title="cfai local emulator"))

    return Endpoint("GET", "/__cfai/openapi.json", document, ApiToken(account=False))


def build_app(
    ctx: EmulatorContext, *, binding_key: BindingKey | None = None
) -> tuple[Starlette, dict[str, Service]]:
    """The app and its services (by name). Without a `binding_key` no binding route answers
    anything but 401 (nothing can hold a token)."""
    check_settings(ctx.settings)
    services = [cls(ctx) for cls in REGISTRY]
    ctx.register(*services)
    door = FrontDoor(account_id=ctx.account_id, api_token=ctx.api_token, binding_key=binding_key)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        for service in services:
            service.close()

    endpoints = [*_admin(services), *(ep for s in services for ep in s.endpoints())]
    endpoints.append(_openapi(endpoints))
    return door.app(endpoints, lifespan=lifespan), {s.name: s for s in services}


# mallopt(3) parameters: glibc hands freed memory back to the kernel past 128 KiB at the top
# of the heap, and serves blocks over a (moving) threshold from fresh mappings, so each bulk
# request (a 15 MB Vectorize batch, copied a few times) page-faulted tens of MB afresh,
# which costs as much as parsing it on some VMs. Kept instead, the next request reuses it;
# the peak (what a batch needs) is the same. (M_TRIM_THRESHOLD and M_MMAP_THRESHOLD in
# https://man7.org/linux/man-pages/man3/mallopt.3.html; setting either turns off glibc's
# dynamic adjustment of both.)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_KEEP_BYTES = 256 << 20


def _keep_freed_memory() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(_M_TRIM_THRESHOLD, _KEEP_BYTES)
        libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20)  # glibc's own ceiling for it
    except (OSError, AttributeError):  # not glibc (musl has no mallopt): its own defaults
        return


def main(argv: Sequence[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m cfai.local.emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    # Unexpected handler errors are logged with their traceback to stderr: the emulator log.
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    ctx = EmulatorContext(
        state_dir=Path(os.environ.get("CFAI_EMULATOR_STATE", ".cfai/local")),
        account_id=os.environ.get("CFAI_EMULATOR_ACCOUNT", "0" * 32),
        api_token=os.environ["CFAI_EMULATOR_TOKEN"],
        settings={
            **json.loads(os.environ.get("CFAI_EMULATOR_SETTINGS", "{}")),
            "public_url": f"http://{args.host}:{args.port}",
        },
    )
    try:
        check_settings(ctx.settings)
    except ValueError as err:
        sys.exit(f"cfai emulator: {err}")
    _keep_freed_memory()
    # Everything it writes (databases, binding key) is the owner's only.
    os.umask(0o077)
    private_dir(ctx.state_dir)
    key = BindingKey.write_new(ctx.state_dir)
    app, _ = build_app(ctx, binding_key=key)
    workerd = os.environ.get("CFAI_EMULATOR_WORKERD")
    if workerd:
        # Scripts uploaded through the API run: a workerd process per version (the runtime
        # stops them when the app shuts down: WorkersScriptsService.close).
        from cfai.local.runtime import WorkersRuntime

        settings = WorkersScriptsSettings.model_validate(ctx.settings)
        runtime = WorkersRuntime(
            ctx.state_dir,
            Path(workerd),
            emulator_port=args.port,
            key=key,
            planned_ports=json.loads(os.environ.get("CFAI_EMULATOR_PORTS", "{}")),
            drain=settings.workers_drain,
        )
        ctx.service(WorkersScriptsService).use_runtime(runtime)
    # A request HTTP itself refuses (two Content-Lengths, a broken request line) gets the
    # envelope too; 6003 is Cloudflare's "Invalid request headers". llhttp parses (a third
    # less CPU a request than h11); a method it does not know goes to h11 for that
    # connection, so it still reaches the front door's JSON 404/405.
    malformed = ApiError(400, 6003, "Invalid request headers").body(Shape.ENVELOPE)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        http=fast_json_errors(json.dumps(malformed).encode()),
    )


if __name__ == "__main__":
    main()
