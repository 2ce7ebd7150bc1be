"""`CloudTarget`: ``cfai deploy --stack NAME`` on Cloudflare, both parts.

1. **apply** is one ``pulumi up`` of the platform stack itself (the project's program,
   ``__main__.py``): gateways, indexes and their metadata indexes, finetunes, and new
   Workers' first version with workers.dev. The program declares every existing Worker's
   version inputs ``ignore_changes`` (`cfai.provision.worker.CANARIED_INPUTS`), so this ``up``
   — or anyone's bare ``pulumi up`` — never uploads an existing Worker's code, bindings or
   settings, which would serve at 100% at once;
2. **canary** is `cfai.deploy.cloud.CloudDriver` on the rollout stack ``<stack>-rollout``
   (``WorkerVersion`` + percentage ``WorkersDeployment``), whose ``last_deploy`` output keeps
   the `DeployRecord`.

`PlatformOps` is what the target needs of the platform stack; `cfai.deploy._automation.
PlatformStack` is the Automation API one. `change_of` turns one step of Pulumi's plan into
the `Change` ``cfai deploy`` prints (the same words as the local target's).

Example::

    target = open_cloud_target(Path("."), "staging")      # ToolMissingError without the CLI
    report = apply_and_canary(rendered, target, stack="staging", workers_dir=Path("workers"),
                              gate=contract_gate(Path("."), live=True))
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from cfai.deploy.cloud import CloudDriver, LiveVersion, StackOps
from cfai.deploy.record import DeployRecord
from cfai.outputs import Outputs
from cfai.provision.changes import Change, change_of

__all__ = ["CloudTarget", "PlatformOps", "change_of", "open_cloud_target"]  # change_of: re-export


class PlatformOps(Protocol):
    """The platform stack's operations: a preview and an ``up`` of the project's program,
    each returning the steps that change something, and the stack's outputs."""

    def preview(self) -> list[Change]:
        """``pulumi preview --stack NAME``: what an ``up`` would change."""

    def up(self) -> list[Change]:
        """``pulumi up --stack NAME``: what changed."""

    def outputs(self) -> Outputs:
        """The stack's outputs map (``pulumi stack output --show-secrets``)."""


class CloudTarget:
    """The `cfai.deploy.stack.Target` of Pulumi stack `stack`."""

    def __init__(
        self,
        platform: PlatformOps,
        rollout: StackOps,
        *,
        stack: str,
        account_id: str,
        live_version: LiveVersion,
    ) -> None:
        self.platform = platform
        self.rollout = rollout
        self.stack = stack
        self.account_id = account_id
        self.live_version = live_version
        self._driver: CloudDriver | None = None

    def planned(self) -> list[Change]:
        return self.platform.preview()

    def apply(self, progress: Callable[[str], None]) -> list[Change]:
        progress(f"pulumi up --stack {self.stack} (everything but existing Workers' versions)")
        self._driver = None  # new Workers: the outputs change
        return self.platform.up()

    def driver(self) -> CloudDriver:
        if self._driver is None:
            self._driver = CloudDriver(
                self.rollout,
                stack=self.stack,
                account_id=self.account_id,
                platform_outputs=self.platform.outputs(),
                live_version=self.live_version,
            )
        return self._driver

    def save_record(self, record: DeployRecord) -> None:
        self.driver().save_record(record)

    def settle(self) -> None:
        """Nothing: the platform stack's outputs already name every Worker."""


def open_cloud_target(
    project: Path, stack: str, *, on_output: Callable[[str], None] = lambda line: None
) -> CloudTarget:
    """The `CloudTarget` of `stack` in `project` on the real Pulumi CLI and Cloudflare API.
    Checks for the Pulumi CLI before anything else (`ToolMissingError`, exit 2)."""
    from cfai.deploy.cloud import require_cli, rollout_stack_name

    require_cli()
    from cfai.config import load_stack
    from cfai.deploy._automation import AutomationStack, PlatformStack, cloudflare_live_version

    account_id = load_stack(stack, project).account_id
    return CloudTarget(
        PlatformStack(stack, project, on_output=on_output),
        AutomationStack(rollout_stack_name(stack), project, on_output=on_output),
        stack=stack,
        account_id=account_id,
        live_version=cloudflare_live_version(account_id),
    )
