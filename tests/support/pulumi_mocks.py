"""Pulumi's engine, mocked once for every test of a program or component.

`Mocks` answers each registration as Cloudflare would for these tests (outputs echo the
inputs, plus what `extra` adds) and records it; `RecordingMonitor` also keeps what the mock
API hides, each registration's parent and property dependencies; `use_mocks` installs them
with the stack's config as the engine would pass it.

Example::

    mocks = use_mocks(project="cfai", stack="staging", config={"cfai:workersSubdomain": "acme"})
    ...  # declare resources under @pulumi.runtime.test
    mocks.one("cloudflare:index/aiGateway:AiGateway")["aiGatewayId"]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pulumi
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockMonitor

__all__ = ["Mocks", "RecordingMonitor", "unwrap_secrets", "use_mocks"]


class Mocks(pulumi.runtime.Mocks):
    """Records every resource the program declares, with its inputs as the engine gets them.

    `ids(args)` names a resource's id (default ``<name>-id``); `extra(args)` adds outputs a
    provider computes (e.g. timestamps)."""

    def __init__(
        self,
        *,
        ids: Callable[[pulumi.runtime.MockResourceArgs], str] | None = None,
        extra: Callable[[pulumi.runtime.MockResourceArgs], Mapping[str, Any]] | None = None,
    ) -> None:
        self.ids = ids or (lambda args: f"{args.name}-id")
        self.extra = extra or (lambda args: {})
        self.registered: list[pulumi.runtime.MockResourceArgs] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.registered.append(args)
        return self.ids(args), {**args.inputs, **self.extra(args)}

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        return {}

    def of(self, typ: str) -> list[pulumi.runtime.MockResourceArgs]:
        """Every registration of type `typ`, in order."""
        return [r for r in self.registered if r.typ == typ]

    def one(self, typ: str, name: str | None = None) -> dict[str, Any]:
        """The inputs of the one registration of `typ` (named `name`, when given)."""
        (found,) = [r for r in self.of(typ) if name is None or r.name == name]
        return found.inputs


class RecordingMonitor(MockMonitor):
    """Records what the mock API hides: each registration's parent and dependencies."""

    def __init__(self, mocks: Mocks) -> None:
        super().__init__(mocks)
        self.parents: dict[str, str] = {}
        self.property_deps: dict[str, dict[str, set[str]]] = {}

    def RegisterResource(self, request: Any) -> Any:  # the gRPC method name
        response = super().RegisterResource(request)
        self.parents[response.urn] = request.parent
        self.property_deps[response.urn] = {
            k: set(v.urns) for k, v in request.propertyDependencies.items()
        }
        return response


def use_mocks(
    mocks: Mocks | None = None,
    *,
    project: str = "cfai",
    stack: str = "staging",
    config: Mapping[str, str] | None = None,
    secret_keys: Iterable[str] = (),
    monitor: MockMonitor | None = None,
) -> Mocks:
    """Install `mocks` (a new `Mocks` when None) as Pulumi's engine for `project`/`stack`,
    with `config` as the stack's config (values as the engine passes them: text, objects as
    JSON). Returns the mocks."""
    mocks = mocks or Mocks()
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=False, monitor=monitor)
    pulumi.runtime.set_all_config(dict(config or {}), secret_keys=list(secret_keys))
    return mocks


def unwrap_secrets(value: Any) -> Any:
    """`value` with every secret marker (``{<sig>: <secret sig>, "value": v}``) replaced by v."""
    if isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig:
        return unwrap_secrets(value["value"])
    if isinstance(value, dict):
        return {k: unwrap_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap_secrets(v) for v in value]
    return value
