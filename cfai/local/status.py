"""What `cfai local status`, `reset` and `up` report about a local platform: its processes,
its outputs without secrets, and ready-to-paste curl examples.

Secrets never reach the terminal: outputs printed with ``--json`` carry a placeholder for
the Worker auth token and the API token, and curl examples read the token with
``$(cfai local token)``.

Example::

    report = process_report(LocalPlatform(Path(".")))
    report["running"], report["processes"]["workerd"]["alive"]
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
from collections.abc import Mapping
from typing import Any

from cfai.kinds import example_for
from cfai.local.processes import alive
from cfai.local.supervisor import LocalPlatform

__all__ = ["SECRET", "curl_examples", "process_report", "public_outputs", "reset"]

SECRET = "<secret: cfai local token>"


def public_outputs(outputs: Mapping[str, Any]) -> dict[str, Any]:
    """The outputs map with `auth_token` and `api.token` replaced by `SECRET`."""
    shown = json.loads(json.dumps(dict(outputs)))
    if "auth_token" in shown:
        shown["auth_token"] = SECRET
    if isinstance(shown.get("api"), dict) and "token" in shown["api"]:
        shown["api"]["token"] = SECRET
    return dict(shown)


def command_name() -> str:
    """How the user invoked cfai (``.venv/bin/cfai`` from `make local`, ``cfai`` on PATH),
    so printed commands paste as they are."""
    argv0 = sys.argv[0] if sys.argv else ""
    return shlex.quote(argv0) if os.path.basename(argv0) == "cfai" else "cfai"


def curl_examples(outputs: Mapping[str, Any], stack: str = "local") -> list[str]:
    """One curl command per Worker, token read from ``cfai local token`` at paste time."""
    token_cmd = f"{command_name()} local token" + (f" --stack {stack}" if stack != "local" else "")
    lines = []
    for key, worker in sorted(outputs["workers"].items()):
        # Each kind's example request (`cfai.kinds.Kind.example`).
        example = example_for(worker["kind"])
        parts = [f"curl -sS -X {example.method} {worker['url']}{example.path}"]
        if worker.get("auth") and example.body is not None:
            parts.append(f'-H "authorization: Bearer $({token_cmd})"')
        if example.body is not None:
            parts.append("-H 'content-type: application/json'")
            parts.append(f"-d '{json.dumps(example.body)}'")
        lines.append(f"# {key} ({worker['kind']})\n" + " ".join(parts) + example.curl_extra)
    return lines


def process_report(platform: LocalPlatform) -> dict[str, Any]:
    """``{"running", "processes": {name: {"pid", "alive"}}, "dead": [names], "endpoints"}``.
    `running` is True only when a run is recorded and every one of its processes is alive."""
    run_path = platform.state_dir / "run.json"
    if not run_path.is_file():
        return {
            "stack": platform.stack,
            "running": False,
            "processes": {},
            "dead": [],
            "endpoints": {},
        }
    run = json.loads(run_path.read_text())
    processes = {
        name: {"pid": int(pid), "alive": alive(int(pid))} for name, pid in run["pids"].items()
    }
    dead = [name for name, p in processes.items() if not p["alive"]]
    endpoints: dict[str, str] = {}
    if platform.outputs_path.is_file():
        endpoints = dict(json.loads(platform.outputs_path.read_text()).get("endpoints", {}))
    return {
        "stack": platform.stack,
        "running": not dead,
        "processes": processes,
        "dead": dead,
        "endpoints": endpoints,
    }


def reset(platform: LocalPlatform) -> bool:
    """Stop the platform if it runs and delete its state directory. True when it ran."""
    was = platform.down()
    shutil.rmtree(platform.state_dir, ignore_errors=True)
    return was
