"""The small surface every emulated Cloudflare service exposes.

The emulator app, the supervisor and the workerd config loop over `REGISTRY`
(`cfai.local.services`) and never name a service. A service contributes:

- ``routes()``: Starlette routes of the REST surface, under
  ``/client/v4/accounts/{account_id}/...`` (and the gateway URL form ``/v1/...``).
- ``binding_routes()``: routes keyed by the host the binding traffic from workerd arrives
  on (``vector-search``, ``workers-binding.ai``). Several services may serve one host
  (Workers AI and AI Gateway share ``workers-binding.ai``); the app merges them.
- ``binding_types``: the Worker binding types (``ai``, ``vectorize``) it backs, and
  ``workerd_binding(binding)`` / ``workerd_services()`` giving the capnp fragments
  the workerd config needs for them.
- ``reset()``: drop all state (tests), ``close()``: release files and connections.

Example::

    ctx = EmulatorContext(state_dir=Path(".cfai/local"), account_id="0" * 32, api_token="t")
    services = {cls.name: cls(ctx) for cls in REGISTRY}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

# Header workerd injects on the per-index external service, so the emulator knows which
# index a binding call is for (the vectorize binding does not send its indexId on the wire).
INDEX_HEADER = "x-cfai-index"
# Header workerd injects on the per-worker AI external service (which Worker called).
WORKER_HEADER = "x-cfai-worker"


@dataclass(frozen=True)
class WorkerdService:
    """An `external` service in the workerd config pointing at the emulator."""

    name: str
    inject_headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class WorkerdBinding:
    """A wrapped binding: workerd's internal module with inner bindings."""

    name: str
    module: str
    # (inner binding name, kind, value): kind is "service", "text" or "json".
    inner: Sequence[tuple[str, str, str]]


@dataclass
class EmulatorContext:
    """What every service is built with. `services` is filled by the emulator app so that
    services can reach each other (the gateway wraps Workers AI, REST reaches all)."""

    state_dir: Path
    account_id: str
    api_token: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    services: dict[str, Service] = field(default_factory=dict)


class Service:
    """Base class of an emulated service. Subclasses set `name` and override what they offer."""

    name: ClassVar[str]
    binding_types: ClassVar[tuple[str, ...]] = ()

    def __init__(self, ctx: EmulatorContext) -> None:
        self.ctx = ctx

    def routes(self) -> list[BaseRoute]:
        return []

    def binding_routes(self) -> dict[str, list[BaseRoute]]:
        return {}

    def workerd_services(
        self, worker: str, bindings: Sequence[Mapping[str, Any]]
    ) -> list[WorkerdService]:
        """External services this worker's bindings of our types need."""
        return []

    def workerd_binding(self, worker: str, binding: Mapping[str, Any]) -> WorkerdBinding:
        raise NotImplementedError(f"{self.name} backs no binding of type {binding.get('type')!r}")

    def reset(self) -> None:
        """Drop all state."""

    def close(self) -> None:
        """Release files and connections."""
