"""The platform under test as the checks see it, built from the typed outputs map.

The map (`cfai.outputs.Outputs`) is what `cfai local up` writes to
``.cfai/<stack>/outputs.json`` and what ``pulumi stack output --json --show-secrets`` prints
for a cloud stack. What it does not carry (a chat Worker's response schema, a Worker's
contract files) is read from the declaration, ``Pulumi.<stack>.yaml`` in the project, when
it exists.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cfai.errors import OutputsError
from cfai.outputs import ApiOutput, GatewayOutput, Outputs, TargetKind, WorkerOutput

__all__ = [
    "OutputsError",
    "Target",
    "WorkerTarget",
    "load_outputs",
    "parse_outputs",
    "parse_target",
    "read_outputs",
]


class WorkerTarget(WorkerOutput):
    """One deployed Worker: its entry in the outputs map under its key `name`."""

    name: str

    @property
    def id(self) -> str:
        """The test id of checks on this Worker: ``chat[assistant]``."""
        return f"{self.kind}[{self.name}]"


@dataclass(frozen=True)
class Target:
    """Everything the checks know about the platform under test."""

    outputs: Outputs
    workers: Mapping[str, WorkerTarget]

    @property
    def stack(self) -> str:
        return self.outputs.stack

    @property
    def local(self) -> bool:
        return self.outputs.local

    @property
    def gateways(self) -> Mapping[str, GatewayOutput]:
        return self.outputs.gateways

    @property
    def auth_token(self) -> str | None:
        return self.outputs.auth_token

    @property
    def api(self) -> ApiOutput | None:
        return self.outputs.api

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in a response."""
        return self.outputs.secrets

    def by_kind(self, *kinds: str) -> list[WorkerTarget]:
        return [w for _, w in sorted(self.workers.items()) if w.kind in kinds]

    def gateway_by_id(self, gateway_id: str) -> GatewayOutput | None:
        return next((g for g in self.gateways.values() if g.id == gateway_id), None)


def parse_outputs(data: Any, source: str = "outputs map") -> Outputs:
    """`Outputs.parse`, reading a map without `target` as a Cloudflare stack's: the stack
    outputs of earlier Pulumi programs, and maps users pass with ``--outputs``, lack it."""
    if isinstance(data, Mapping) and "target" not in data:
        data = {**data, "target": TargetKind.CLOUDFLARE.value}
    return Outputs.parse(data, source)


def load_outputs(path: Path) -> Outputs:
    """The outputs map in the JSON file `path` (see `parse_outputs`)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise OutputsError(f"outputs map {path} does not exist") from None
    except (OSError, ValueError) as err:
        raise OutputsError(f"outputs map {path} is not readable JSON: {err}") from None
    return parse_outputs(data, str(path))


def read_outputs(path: Path) -> dict[str, Any]:
    """The outputs map in `path`, validated, as JSON data (`load_outputs` for the model)."""
    return load_outputs(path).to_json()


def _declared(stack: str, project: Path | None) -> Mapping[str, dict[str, Any]]:
    """What the declaration of `stack` adds to each Worker's entry, or {} when the stack is
    not in this project."""
    if project is None or not (project / f"Pulumi.{stack}.yaml").is_file():
        return {}
    from cfai.config import load_stack
    from cfai.kinds import kind_for

    return {
        key: {"contract": w.contract, **kind_for(w.kind).output_fields(w)}
        for key, w in load_stack(stack, project).workers.items()
    }


def parse_target(outputs: Outputs | Mapping[str, Any], project: Path | None = None) -> Target:
    """The `Target` of an outputs map; `OutputsError` names a missing or mistyped field."""
    if not isinstance(outputs, Outputs):
        outputs = parse_outputs(outputs)
    declared = _declared(outputs.stack, project) if outputs.stack else {}
    workers = {}
    for name, w in outputs.workers.items():
        # The map wins; the declaration fills what the map's writer left out.
        given = w.model_dump(exclude_defaults=True)
        workers[name] = WorkerTarget.model_validate(
            {**declared.get(name, {}), **given, "name": name}
        )
    return Target(outputs=outputs, workers=workers)
