"""What applying a declaration would change on an account, read through the REST API: the
part of a deploy that is not an existing Worker's new version.

`planned_changes` compares the declaration with what the account holds — gateways (every
setting `gateway_fields` sends), Vectorize indexes (dimensions and metric: a difference
replaces the index), their metadata indexes, finetunes, and Workers that have no deployment
yet (their first version serves at once: there is nothing to protect) — and returns one
`Change` per difference. `cfai deploy --local` prints them before it applies them
(`cfai.local.provisioning.provision` and `deploy_workers` are the apply); a cloud stack's
apply part is Pulumi's own plan of the platform stack instead, each step turned into the
same words by `change_of` and listed in the same order by `ordered`.

An existing Worker never appears here: its new version (code, bindings, vars or
compatibility settings) goes through the canary.

Example::

    with CloudflareClient(base_url, token=token, account_id=platform.account_id) as cf:
        for change in planned_changes(platform, rendered, cf, base_dir=Path(".")):
            print(change.line())     # "create gateway local-audit", "update gateway ..."
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from cfai.config import PlatformConfig
from cfai.errors import CloudflareApiError
from cfai.provision.rest import CloudflareClient
from cfai.provision.settings import gateway_fields, index_fields
from cfai.render import RenderedWorker

__all__ = ["RESOURCE_WORDS", "Change", "change_of", "ordered", "planned_changes"]

Action = Literal["create", "update", "replace", "delete"]


#: Pulumi resource types as ``cfai deploy`` names them; other types (components, the
#: workers.dev switch, the stack) are not listed.
RESOURCE_WORDS = {
    "cloudflare:index/aiGateway:AiGateway": "gateway",
    "pulumi-python:dynamic/cloudflare:VectorizeIndex": "vectorize_index",
    "pulumi-python:dynamic/cloudflare:Finetune": "finetune",
    "cloudflare:index/workersScript:WorkersScript": "worker",
}
_ACTIONS: dict[str, Action] = {
    "create": "create",
    "update": "update",
    "replace": "replace",
    "delete": "delete",
}


@dataclass(frozen=True)
class Change:
    """One resource the apply creates, updates or replaces; `detail` says what differs."""

    resource: str
    name: str
    action: Action
    detail: str = ""

    def line(self) -> str:
        """``create gateway local-audit`` / ``update gateway local-main: rate_limiting_limit
        120 -> 30``."""
        return f"{self.action} {self.resource} {self.name}" + (
            f": {self.detail}" if self.detail else ""
        )

    def as_json(self) -> dict[str, str]:
        return {
            "resource": self.resource,
            "name": self.name,
            "action": self.action,
            "detail": self.detail,
        }


def planned_changes(
    platform: PlatformConfig,
    rendered: Sequence[RenderedWorker],
    cf: CloudflareClient,
    *,
    base_dir: Path = Path(),
) -> list[Change]:
    """Every difference between `platform` and the account behind `cf`, in apply order."""
    changes: list[Change] = []
    for key, gw in sorted(platform.gateways.items()):
        want = gateway_fields(platform.physical_name(key), gw)
        have = _found(cf.ai_gateway.get, want["id"])
        if have is None:
            changes.append(Change("gateway", want["id"], "create"))
            continue
        differs = [
            f"{field} {have.get(field)!r} -> {value!r}"
            for field, value in want.items()
            if field != "id" and have.get(field) != value
        ]
        if differs:
            changes.append(Change("gateway", want["id"], "update", "; ".join(differs)))
    for key, index in sorted(platform.indexes.items()):
        f = index_fields(platform.physical_name(key), index)
        existing = _found(cf.vectorize.get_index, f["name"])
        have_meta: set[str] = set()
        if existing is None:
            changes.append(Change("vectorize_index", f["name"], "create", _shape(f)))
        else:
            cfg = existing.get("config") or {}
            if (cfg.get("dimensions"), cfg.get("metric")) != (f["dimensions"], f["metric"]):
                was = f"{cfg.get('dimensions')} dims, {cfg.get('metric')}"
                changes.append(
                    Change("vectorize_index", f["name"], "replace", f"{was} -> {_shape(f)}")
                )
            else:
                have_meta = {
                    str(m["propertyName"]) for m in cf.vectorize.list_metadata_indexes(f["name"])
                }
        for prop, kind in sorted(f["metadata_indexes"].items()):
            if prop not in have_meta:
                changes.append(Change("metadata_index", f"{f['name']}.{prop}", "create", kind))
    for key, finetune in sorted(platform.finetunes.items()):
        name = platform.finetune_name(key, base_dir)
        if cf.finetunes.find(name) is None:
            changes.append(Change("finetune", name, "create", finetune.base_model))
    for r in rendered:
        if cf.workers.current(r.script_name) is None:
            changes.append(
                Change("worker", r.script_name, "create", f"first version {r.sha256[:12]}")
            )
    return changes


# The input holding the physical name, per resource (the resource's own, camelCase for a
# provider resource, as declared for a dynamic one).
_NAME_INPUTS = (
    "scriptName",
    "aiGatewayId",
    "indexName",
    "index_name",
    "finetuneName",
    "finetune_name",
)
_ORDER = {"gateway": 0, "vectorize_index": 1, "metadata_index": 2, "finetune": 3, "worker": 4}


def change_of(
    op: str, typ: str, name: str, inputs: Mapping[str, Any], diffs: list[str] | None = None
) -> Change | None:
    """One step of Pulumi's plan as a `Change`, or None (no change, or a type not listed)."""
    action = _ACTIONS.get(op)
    resource = RESOURCE_WORDS.get(typ)
    if action is None or resource is None:
        return None
    label = next((str(inputs[k]) for k in _NAME_INPUTS if inputs.get(k)), name)
    return Change(resource, label, action, ", ".join(diffs or []))


def ordered(changes: list[Change]) -> list[Change]:
    """`changes` in apply order (gateways, indexes, metadata indexes, finetunes, Workers;
    by name within each), as `planned_changes` lists them."""
    return sorted(changes, key=lambda c: (_ORDER.get(c.resource, 9), c.name))


def _found(read: Callable[[str], dict[str, Any]], name: str) -> dict[str, Any] | None:
    try:
        result = read(name)
    except CloudflareApiError as err:
        if err.not_found:
            return None
        raise
    return result


def _shape(f: dict[str, Any]) -> str:
    return f"{f['dimensions']} dims, {f['metric']}"
