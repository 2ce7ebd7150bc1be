"""The small surface every emulated Cloudflare service exposes.

The emulator app, the supervisor and the workerd config loop over `REGISTRY`
(`cfai.local.services`) and never name a service. A service contributes:

- ``settings_model``: its typed settings (a pydantic model over the emulator's settings
  mapping; each service reads only its own keys);
- ``endpoints()``: every route it serves, REST and binding alike, as front-door
  `Endpoint` declarations (`cfai.local.services.frontdoor`): authentication, body limits,
  parsing and error shapes are declared there and done by the front door;
- ``binding_types`` with ``workerd_services(worker, bindings)`` and
  ``workerd_binding(worker, binding)``: the capnp fragments the workerd config needs for a
  Worker's bindings of those types, each external service with the `BindingScope` its
  binding token grants (class methods: no state is needed to write a config);
- ``reset()``: drop all state (the admin route), ``close()``: release files and connections.

Services reach each other through typed handles: ``ctx.service(WorkersAIService)`` is the
running Workers AI service, typed as such.

Example::

    ctx = EmulatorContext(state_dir=Path(".cfai/local"), account_id="0" * 32, api_token="t")
    services = [cls(ctx) for cls in REGISTRY]
    ctx.register(*services)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict

from cfai.local.services.frontdoor import BindingScope, Endpoint

__all__ = [
    "EmulatorContext",
    "Service",
    "ServiceSettings",
    "WorkerdBinding",
    "WorkerdService",
]


@dataclass(frozen=True)
class WorkerdService:
    """An `external` service in the workerd config pointing at the emulator; its requests
    carry a binding token granting `scope`."""

    name: str
    scope: BindingScope


@dataclass(frozen=True)
class WorkerdBinding:
    """A wrapped binding: workerd's internal module with inner bindings."""

    name: str
    module: str
    # (inner binding name, kind, value): kind is "service", "text" or "json".
    inner: Sequence[tuple[str, str, str]]


class ServiceSettings(BaseModel):
    """Base of a service's settings: frozen; keys of other services are ignored here (the
    emulator refuses a key no service declares)."""

    model_config = ConfigDict(frozen=True, extra="ignore")


S = TypeVar("S", bound="Service")


@dataclass
class EmulatorContext:
    """What every service is built with: where state lives, the account and API token the
    REST surface answers for, and the raw settings each service reads its own model from."""

    state_dir: Path
    account_id: str
    api_token: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    _services: list[Service] = field(default_factory=list, init=False, repr=False)

    def register(self, *services: Service) -> None:
        """Make `services` reachable through `service`."""
        self._services.extend(services)

    def binding_types(self) -> frozenset[str]:
        """The binding types the registered services back (``ai``, ``vectorize``)."""
        return frozenset(t for svc in self._services for t in svc.binding_types)

    def service(self, cls: type[S]) -> S:
        """The registered service of type `cls` (or a subclass), typed as `cls`."""
        for svc in self._services:
            if isinstance(svc, cls):
                return svc
        raise LookupError(f"no {cls.__name__} is registered with this emulator")


class Service:
    """Base class of an emulated service. Subclasses set `name` and override what they offer."""

    name: ClassVar[str]
    binding_types: ClassVar[tuple[str, ...]] = ()
    settings_model: ClassVar[type[ServiceSettings]] = ServiceSettings

    def __init__(self, ctx: EmulatorContext) -> None:
        self.ctx = ctx

    def endpoints(self) -> list[Endpoint]:
        """Every route of this service."""
        return []

    @classmethod
    def workerd_services(
        cls, worker: str, bindings: Sequence[Mapping[str, Any]]
    ) -> list[WorkerdService]:
        """External services this worker's bindings of our types need."""
        return []

    @classmethod
    def workerd_binding(cls, worker: str, binding: Mapping[str, Any]) -> WorkerdBinding:
        raise NotImplementedError(f"{cls.name} backs no binding of type {binding.get('type')!r}")

    def reset(self) -> None:
        """Drop all state."""

    def close(self) -> None:
        """Release files and connections."""
