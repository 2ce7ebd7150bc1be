"""Every error cfai raises, in one tree.

::

    CfaiError                     base; `.user_fault` says who must act
    ├── ConfigError               the platform declaration is invalid (user) — lists every Problem
    ├── RenderError               a template failed to render (system: a cfai bug)
    ├── StaleRenderError          committed workers/ differ from a fresh render (user)
    ├── ToolMissingError          a required program (pulumi, node, workerd) is not installed (user)
    ├── LocalPlatformError        the local platform could not start or answer (system)
    │   └── PortInUseError        a port asked for with `--port` is taken (user)
    ├── OutputsError              an outputs map is missing, unreadable or malformed (user)
    ├── DeployUserError           a deploy cannot start: not running, bad --steps, Worker not
    │                             created yet (user) — raised by cfai.deploy
    └── CloudflareError           a call to Cloudflare (or the emulator) failed — in cfai.provision.rest
        ├── CloudflareApiError    Cloudflare refused it (user for 4xx, system for 5xx)
        └── CloudflareUnreachableError  no answer after retries (system)

Foreign exceptions are translated at exactly one boundary each: pydantic in
`cfai.config.loader`, jinja2 in `cfai.render`, httpx in `cfai.provision.rest`,
pulumi.automation in `cfai.deploy._automation`.
Messages never contain secrets.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "CfaiError",
    "ConfigError",
    "DeployUserError",
    "LocalPlatformError",
    "OutputsError",
    "PortInUseError",
    "Problem",
    "RenderError",
    "StaleRenderError",
    "ToolMissingError",
]


class CfaiError(Exception):
    """Base of every cfai error. `user_fault` is True when the user must change something."""

    user_fault: bool = False


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a declaration: where (`workers.qa.index`) and what, with the fix."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ConfigError(CfaiError):
    """The platform declaration is invalid. Carries every problem found, not just the first.

    >>> str(ConfigError([Problem("workers.qa.index", "unknown index 'docz' (defined: docs)")]))
    "invalid platform config (1 problem):\\n  workers.qa.index: unknown index 'docz' (defined: docs)"
    """

    user_fault = True

    def __init__(self, problems: Iterable[Problem], source: str | None = None) -> None:
        self.problems: Sequence[Problem] = tuple(problems)
        self.source = source
        n = len(self.problems)
        where = f" in {source}" if source else ""
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(
            f"invalid platform config{where} ({n} problem{'s' if n != 1 else ''}):\n{lines}"
        )


class RenderError(CfaiError):
    """A template failed to render. A cfai bug, not the user's: config is validated first."""


class StaleRenderError(CfaiError):
    """The committed rendered Workers differ from what the config renders to."""

    user_fault = True

    def __init__(self, stale: Sequence[str]) -> None:
        self.stale = tuple(stale)
        listing = "\n".join(f"  {p}" for p in self.stale)
        super().__init__(f"rendered Workers are out of date; run `cfai render`:\n{listing}")


class ToolMissingError(CfaiError):
    """A program cfai drives is not installed; the message says how to install it."""

    user_fault = True


class LocalPlatformError(CfaiError):
    """The local platform (workerd + emulator) could not start or stopped answering."""


class PortInUseError(LocalPlatformError):
    """A port the user asked for (`cfai local up --port N`) is already taken."""

    user_fault = True


class DeployUserError(CfaiError):
    """A deploy cannot start for a reason the user must fix (not running, bad steps)."""

    user_fault = True


class OutputsError(CfaiError):
    """An outputs map is missing, unreadable or lacks a field its reader needs."""

    user_fault = True
