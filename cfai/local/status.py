"""What `cfai local status` and `up` report about a local platform: its processes, and
ready-to-paste curl examples.

Secrets never reach the terminal: outputs printed with ``--json`` carry `SECRET` in place of
the Worker auth token and the API token (`cfai.outputs.Outputs.redacted`), and curl examples
read the token with ``$(cfai local token)``.

Example::

    status = LocalPlatform(Path(".")).status()
    status.running, status.processes["workerd"].alive
    for line in curl_examples(outputs, "local"):
        print(line)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cfai.kinds import examples_for
from cfai.outputs import Outputs

__all__ = ["SECRET", "LocalStatus", "ProcessStatus", "curl_examples"]

SECRET = "<secret: cfai local token>"


@dataclass(frozen=True)
class ProcessStatus:
    """One recorded process of the run."""

    pid: int
    alive: bool


@dataclass(frozen=True)
class LocalStatus:
    """The processes of a local platform's run (none when it was not started) and its
    endpoints. `running` only when a run is recorded and every process of it is alive."""

    stack: str
    processes: Mapping[str, ProcessStatus] = field(default_factory=dict)
    endpoints: Mapping[str, str] = field(default_factory=dict)

    @property
    def dead(self) -> list[str]:
        return [name for name, p in self.processes.items() if not p.alive]

    @property
    def running(self) -> bool:
        return bool(self.processes) and not self.dead

    def to_json(self) -> dict[str, Any]:
        """``{"stack", "running", "processes": {name: {"pid", "alive"}}, "dead", "endpoints"}``."""
        return {
            "stack": self.stack,
            "running": self.running,
            "processes": {
                name: {"pid": p.pid, "alive": p.alive} for name, p in self.processes.items()
            },
            "dead": self.dead,
            "endpoints": dict(self.endpoints),
        }


def curl_examples(outputs: Outputs, stack: str = "local", command: str = "cfai") -> list[str]:
    """One curl command per Worker, its token read from ``<command> local token`` when the
    command is pasted (`command`: how the user invokes cfai)."""
    token_cmd = f"{command} local token" + (f" --stack {stack}" if stack != "local" else "")
    lines = []
    for key, worker in sorted(outputs.workers.items()):
        # Each kind's example requests (`cfai.kinds.Kind.examples`), one per route.
        for example in examples_for(worker.kind):
            parts = [f"curl -sS -X {example.method} {worker.url}{example.path}"]
            if worker.auth and example.authenticated:
                parts.append(f'-H "authorization: Bearer $({token_cmd})"')
            if example.body is not None:
                parts.append("-H 'content-type: application/json'")
                parts.append(f"-d '{json.dumps(example.body)}'")
            if example.data:
                parts.append(example.data)
            line = " ".join(parts) + example.curl_extra
            lines.append(f"# {key} ({worker.kind}) {example.method} {example.path}\n{line}")
    return lines
