"""Every error cfai raises, in one tree.

::

    CfaiError                     base; `.user_fault` says who must act
    ├── ConfigError               the platform declaration is invalid (user) — lists every Problem
    ├── ProjectNotFoundError      no Pulumi.yaml in the folder or any folder above it (user)
    ├── RenderError               a template failed to render (system: a cfai bug)
    ├── StaleRenderError          committed workers/ differ from a fresh render (user)
    ├── ToolMissingError          a required program (pulumi, workerd) is not installed (user)
    ├── PulumiError               the Pulumi CLI or engine ran and failed or did not finish
    │                             (user for `pulumi stack output`: stack, login, backend;
    │                             system for a failed `pulumi up` of the rollout stack)
    ├── LocalPlatformError        the local platform could not start or answer (system)
    │   └── PortInUseError        a port asked for with `--port` is taken (user)
    ├── OutputsError              an outputs map is missing, unreadable or malformed (user)
    ├── DeployUserError           a deploy cannot start: not running, bad --steps, Worker not
    │                             created yet (user)
    └── CloudflareError           a call to the Cloudflare REST API (or the emulator's) failed
        ├── CloudflareApiError    Cloudflare refused it (user for 4xx, system for 429 and 5xx)
        └── CloudflareUnreachableError  no answer after the retries (system)

Foreign exceptions are translated at exactly one boundary each: pydantic in
`cfai.config.loader` (declarations), `cfai.outputs` (outputs maps), `cfai.local.state`
(the local platform's state files) and `cfai.catalog` (a project's catalog.json), jinja2 in
`cfai.render`, httpx in `cfai.provision.rest` (`send`, `fetch`: every HTTP call cfai makes
outside the contract suite's own test client), the Pulumi CLI in
`cfai.provision.pulumi_cli`, pulumi.automation in `cfai.deploy._automation`.
Messages never contain secrets.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CfaiError",
    "CloudflareApiError",
    "CloudflareError",
    "CloudflareUnreachableError",
    "ConfigError",
    "DeployUserError",
    "LocalPlatformError",
    "OutputsError",
    "PortInUseError",
    "Problem",
    "ProjectNotFoundError",
    "PulumiError",
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


class ProjectNotFoundError(CfaiError):
    """No cfai project (a folder holding ``Pulumi.yaml``) at or above the folder cfai ran in."""

    user_fault = True

    def __init__(self, start: str) -> None:
        super().__init__(
            f"no cfai project found in {start} or any folder above it (a project is the "
            "folder holding Pulumi.yaml); run cfai inside the project or give --project DIR"
        )
        self.start = start


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


class PulumiError(CfaiError):
    """The Pulumi CLI (or the Automation API) ran and failed, or did not finish in time.

    Not a missing tool (that is `ToolMissingError`): the stack, the login or the backend
    must be fixed, so it is the user's to act on unless the caller says otherwise (a
    failed ``pulumi up`` of the rollout stack is reported as the system's).
    """

    def __init__(self, message: str, *, user_fault: bool = True) -> None:
        super().__init__(message)
        self.user_fault = user_fault


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


class CloudflareError(CfaiError):
    """A call to the Cloudflare REST API (or the local emulator's) failed."""


class CloudflareApiError(CloudflareError):
    """Cloudflare answered an error.

    ``status`` is the HTTP status, ``code`` Cloudflare's error code (None when the body
    carried none), ``action`` what was attempted (``create``) and ``resource`` what on
    (``vectorize_index 'docs'``). 4xx other than 429 are the user's to fix (config, token,
    permissions); 429 and 5xx are Cloudflare's side.

    >>> str(CloudflareApiError(404, 3000, "vectorize.index.not_found", "get", "vectorize_index 'docs'"))
    "404 get vectorize_index 'docs': vectorize.index.not_found (code 3000)"
    """

    def __init__(
        self,
        status: int,
        code: int | None,
        message: str,
        action: str,
        resource: str,
        *,
        attempts: int = 1,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.action = action
        self.resource = resource
        self.attempts = attempts
        self.user_fault = 400 <= status < 500 and status != 429
        super().__init__(str(self))

    def __str__(self) -> str:
        text = f"{self.status} {self.action} {self.resource}: {self.message}"
        if self.code is not None:
            text += f" (code {self.code})"
        if self.attempts > 1:
            text += f"; gave up after {self.attempts} attempts"
        return text

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild_api_error,
            (self.status, self.code, self.message, self.action, self.resource, self.attempts),
        )

    @property
    def not_found(self) -> bool:
        """The resource does not exist (404, or 410 which Cloudflare uses for deleted ones)."""
        return self.status in (404, 410)


def _rebuild_api_error(*args: Any) -> CloudflareApiError:
    *head, attempts = args
    return CloudflareApiError(*head, attempts=attempts)


class CloudflareUnreachableError(CloudflareError):
    """No answer from the API (connect error or timeout), after retrying."""

    def __init__(self, action: str, resource: str, detail: str, attempts: int) -> None:
        self.action = action
        self.resource = resource
        self.detail = detail
        self.attempts = attempts
        super().__init__(
            f"{action} {resource}: no answer from the Cloudflare API after {attempts} attempt(s): {detail}"
        )
