"""The real `StackOps` (Pulumi Automation API) and the live-version lookup (Cloudflare API).

Neither runs in this repository's tests: they need the Pulumi CLI, a backend and Cloudflare.
`cfai.deploy.cloud.CloudDriver` is tested over doubles of both.

The rollout stack's workspace is ``<project>/.cfai/rollout`` (gitignored), not the project
root: ``pulumi stack init`` writes ``Pulumi.<stack>-rollout.yaml`` into the workspace, and in
the root `cfai.config.discover_stacks` would take it for a platform stack. Its state lives in
whatever backend the user is logged in to (``PULUMI_BACKEND_URL`` / ``pulumi login``), like
the platform stack's.

Example::

    ops = AutomationStack("staging-rollout", Path("."))
    print(ops.outputs().get("rollout"))
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pulumi.automation as auto

from cfai.errors import DeployUserError, PulumiError

__all__ = ["AutomationStack", "cloudflare_live_version"]


class AutomationStack:
    """`StackOps` over an inline-program stack of project ``cfai``; `on_output` gets each
    line ``pulumi up`` prints."""

    def __init__(
        self,
        stack_name: str,
        project: Path,
        *,
        on_output: Callable[[str], None] = lambda line: None,
    ) -> None:
        self.stack_name = stack_name
        self.work_dir = project.resolve() / ".cfai" / "rollout"
        self.on_output = on_output

    def _stack(self, program: Callable[[], None]) -> auto.Stack:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        opts = auto.LocalWorkspaceOptions(
            work_dir=str(self.work_dir),
            project_settings=auto.ProjectSettings(name="cfai", runtime="python"),
        )
        return auto.create_or_select_stack(
            stack_name=self.stack_name, project_name="cfai", program=program, opts=opts
        )

    def set_config(self, key: str, value: str, *, secret: bool = False) -> None:
        with self._translated("pulumi config set"):
            self._stack(_noop).set_config(key, auto.ConfigValue(value, secret=secret))

    def up(self, program: Callable[[], None]) -> dict[str, Any]:
        with self._translated("pulumi up"):
            result = self._stack(program).up(on_output=self.on_output)
        return {k: v.value for k, v in result.outputs.items()}

    def outputs(self) -> dict[str, Any]:
        with self._translated("pulumi stack output"):
            return {k: v.value for k, v in self._stack(_noop).outputs().items()}

    @contextlib.contextmanager
    def _translated(self, what: str) -> Iterator[None]:
        """The one boundary where Pulumi's CommandError becomes a cfai error (system fault:
        the stack, backend or Cloudflare refused; Pulumi's own message follows)."""
        try:
            yield
        except auto.CommandError as err:
            raise PulumiError(
                f"`{what}` of stack {self.stack_name} failed: {err}", user_fault=False
            ) from None


def _noop() -> None:
    """The program of a stack opened only to read outputs or set config (never run)."""


def cloudflare_live_version(account_id: str) -> Callable[[str], str | None]:
    """Looks up a script's deployed version: ``GET .../workers/scripts/<script>/deployments``
    (the newest deployment; its version at the highest percentage)."""

    def live_version(script: str) -> str | None:
        from cfai.provision.rest import CloudflareClient

        token = os.environ.get("CLOUDFLARE_API_TOKEN")
        if not token:
            raise DeployUserError(
                f"CLOUDFLARE_API_TOKEN is not set; it is needed to read the deployment of "
                f"{script!r} before its first canary"
            )
        with CloudflareClient(token=token, account_id=account_id) as cf:
            # The same call `cfai deploy --local` makes of the local platform.
            current = cf.workers.current(script)
        return None if current is None else str(current["version_id"])

    return live_version
