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

from cfai.deploy.driver import Version
from cfai.errors import DeployUserError, PulumiError
from cfai.outputs import Outputs
from cfai.provision.changes import Change, change_of, ordered

__all__ = ["AutomationStack", "PlatformStack", "cloudflare_live_version"]


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


class PlatformStack:
    """`cfai.deploy.cloud_target.PlatformOps` over the project's own program
    (``__main__.py``, the project root as work dir) and platform stack `stack`."""

    def __init__(
        self, stack: str, project: Path, *, on_output: Callable[[str], None] = lambda line: None
    ) -> None:
        self.stack_name = stack
        self.project = project.resolve()
        self.on_output = on_output

    def _stack(self) -> auto.Stack:
        return auto.select_stack(stack_name=self.stack_name, work_dir=str(self.project))

    def preview(self) -> list[Change]:
        events: list[auto.EngineEvent] = []
        with _translated(self.stack_name, "pulumi preview"):
            self._stack().preview(on_output=self.on_output, on_event=events.append)
        return _changes(events)

    def up(self) -> list[Change]:
        events: list[auto.EngineEvent] = []
        with _translated(self.stack_name, "pulumi up"):
            self._stack().up(on_output=self.on_output, on_event=events.append)
        return _changes(events)

    def outputs(self) -> Outputs:
        from cfai.provision.pulumi_cli import stack_outputs

        return stack_outputs(self.stack_name, self.project)


def _changes(events: list[auto.EngineEvent]) -> list[Change]:
    found = []
    for event in events:
        step = event.resource_pre_event.metadata if event.resource_pre_event else None
        if step is None:
            continue
        state = step.new or step.old
        inputs = state.inputs if state is not None else {}
        change = change_of(
            step.op.value, step.type, step.urn.rsplit("::", 1)[-1], inputs or {}, step.diffs
        )
        if change is not None:
            found.append(change)
    return ordered(found)


@contextlib.contextmanager
def _translated(stack: str, what: str) -> Iterator[None]:
    """Pulumi's CommandError as a cfai error (system fault: Pulumi's own message follows)."""
    try:
        yield
    except auto.CommandError as err:
        raise PulumiError(f"`{what}` of stack {stack} failed: {err}", user_fault=False) from None


def _noop() -> None:
    """The program of a stack opened only to read outputs or set config (never run)."""


def cloudflare_live_version(account_id: str) -> Callable[[str], Version | None]:
    """Looks up a script's deployed version: ``GET .../workers/scripts/<script>/deployments``
    (the newest deployment; its version at the highest percentage), then that version with
    its modules (``GET .../workers/workers/<script>/versions/<id>?include=modules``), whose
    main module's template hash is what the version runs."""

    def live_version(script: str) -> Version | None:
        from cfai.provision.rest import CloudflareClient
        from cfai.provision.scripts import modules_of
        from cfai.provision.settings import read_version_sha256
        from cfai.render import module_sha256

        token = os.environ.get("CLOUDFLARE_API_TOKEN")
        if not token:
            raise DeployUserError(
                f"CLOUDFLARE_API_TOKEN is not set; it is needed to read the deployment of "
                f"{script!r} before its first canary"
            )
        with CloudflareClient(token=token, account_id=account_id) as cf:
            # The same calls `cfai deploy --local` makes of the local platform.
            current = cf.workers.current(script)
            if current is None:
                return None
            vid = str(current["version_id"])
            version = cf.workers.version(script, vid, modules=True)
        main = modules_of(version).get(str(version.get("main_module")), b"")
        sha = module_sha256(main.decode("utf-8", errors="replace"))
        return Version(vid, sha, read_version_sha256(version, sha))

    return live_version
