"""Finding the Pulumi CLI, which `cfai test --stack` and deploys drive as a subprocess.

Only looks on disk (never runs the binary), so it cannot hang.

Example::

    pulumi = require_pulumi()     # Path, or ToolMissingError saying how to install it
    subprocess.run([pulumi, "stack", "output", "--json", "--stack", "staging"], timeout=60)
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from cfai.errors import ToolMissingError

__all__ = ["INSTALL_HINT", "find_pulumi", "require_pulumi", "run_pulumi"]

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
