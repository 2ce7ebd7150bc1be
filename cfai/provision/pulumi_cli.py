"""The Pulumi CLI, which `cfai test --stack`, `cfai drift` and deploys drive as a subprocess:
finding it (only on disk, never running it, so it cannot hang), running it without a
terminal, and reading a stack's outputs map.

A missing CLI is `ToolMissingError`; a CLI that runs and fails or does not finish is
`PulumiError` (the stack, the login or the backend needs the user's attention).

Example::

    pulumi = require_pulumi()     # Path, or ToolMissingError saying how to install it
    outputs = stack_outputs("staging", Path("."))   # cfai.outputs.Outputs
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from cfai.errors import OutputsError, PulumiError, ToolMissingError
from cfai.outputs import ApiOutput, Outputs, TargetKind

__all__ = ["INSTALL_HINT", "find_pulumi", "require_pulumi", "run_pulumi", "stack_outputs"]

CLOUDFLARE_API = "https://api.cloudflare.com/client/v4"

INSTALL_HINT = (
    "the Pulumi CLI is not installed; install it from the Pulumi docs "
    "(curl -fsSL https://get.pulumi.com | sh) and `pulumi login`"
)


def find_pulumi() -> Path | None:
    """The `pulumi` executable: on PATH, else where the installer puts it
    (``$PULUMI_HOME/bin`` or ``~/.pulumi/bin``, which a fresh shell may not have on PATH)."""
    found = shutil.which("pulumi")
    if found:
        return Path(found)
    home = os.environ.get("PULUMI_HOME") or str(Path.home() / ".pulumi")
    candidate = Path(home) / "bin" / "pulumi"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return candidate
    return None


def require_pulumi() -> Path:
    """The `pulumi` executable, or `ToolMissingError` with the install instructions."""
    found = find_pulumi()
    if found is None:
        raise ToolMissingError(INSTALL_HINT)
    return found


def run_pulumi(
    pulumi: Path, args: list[str], project: Path, timeout: float
) -> subprocess.CompletedProcess[str] | None:
    """Run ``pulumi ARGS`` in `project` without a terminal (stdin closed, output captured);
    None when it did not finish within `timeout` seconds (it is killed then)."""
    try:
        return subprocess.run(
            [str(pulumi), *args],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None


def stack_outputs(stack: str, project: Path, *, timeout: float = 120.0) -> Outputs:
    """``pulumi stack output --json --show-secrets --stack STACK`` as an outputs map.

    The platform stack's outputs carry no ``api``: when ``CLOUDFLARE_API_TOKEN`` is set and
    the stack is declared in `project`, the map gets Cloudflare's, so the contract suite can
    read gateway logs with the deployer's token.
    """
    pulumi = find_pulumi()
    if pulumi is None:
        raise ToolMissingError(
            "the Pulumi CLI is not installed (needed to read stack outputs); install it from "
            "https://www.pulumi.com/docs/install/ or pass the outputs with --outputs FILE"
        )
    what = f"`pulumi stack output --stack {stack}`"
    args = ["stack", "output", "--json", "--show-secrets", "--stack", stack]
    done = run_pulumi(pulumi, args, project, timeout)
    if done is None:
        raise PulumiError(
            f"{what} did not answer within {timeout:.0f}s (is the backend reachable and logged in?)"
        )
    if done.returncode != 0:
        raise PulumiError(f"{what} failed: {done.stderr.strip()[:500]}")
    try:
        data = json.loads(done.stdout)
    except ValueError:
        raise PulumiError(f"{what} did not print JSON") from None
    if not isinstance(data, dict):
        raise OutputsError(f"{what} printed {type(data).__name__}, not an outputs map")
    data.setdefault("stack", stack)
    data.setdefault("target", TargetKind.CLOUDFLARE.value)
    outputs = Outputs.parse(data, source=what)
    token = os.environ.get("CLOUDFLARE_API_TOKEN")
    if outputs.api is None and token and (project / f"Pulumi.{stack}.yaml").is_file():
        from cfai.config import load_stack

        api = ApiOutput(
            base_url=CLOUDFLARE_API, account_id=load_stack(stack, project).account_id, token=token
        )
        outputs = outputs.model_copy(update={"api": api})
    return outputs
