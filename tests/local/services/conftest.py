"""Fixtures for the emulated services: their routes served through the real front door,
and binding tokens as workerd's external services inject them.

`serve(ctx, *services)` is the app the emulator builds (`cfai.local.emulator.build_app`)
restricted to the given services; `binding(type, worker, index)` the header a binding of
that scope carries.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from starlette.applications import Starlette

from cfai.local.services import EmulatorContext, Service
from cfai.local.services.frontdoor import BINDING_HEADER, BindingKey, BindingScope, FrontDoor

Serve = Callable[..., Starlette]
Binding = Callable[..., dict[str, str]]


@pytest.fixture
def binding_key() -> BindingKey:
    return BindingKey.generate()


@pytest.fixture
def serve(binding_key: BindingKey) -> Serve:
    def app(ctx: EmulatorContext, *services: Service) -> Starlette:
        ctx.register(*services)
        door = FrontDoor(
            account_id=ctx.account_id, api_token=ctx.api_token, binding_key=binding_key
        )
        return door.app([ep for s in services for ep in s.endpoints()])

    return app


@pytest.fixture
def binding(binding_key: BindingKey) -> Binding:
    def header(kind: str, worker: str = "qa", index: str | None = None) -> dict[str, str]:
        return {BINDING_HEADER: binding_key.mint(BindingScope(kind, worker, index))}

    return header
