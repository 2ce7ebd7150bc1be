"""`CloudDriver`: canary rollouts on a Pulumi stack (`cfai deploy --stack NAME`).

Who owns what. The platform stack (``Pulumi.<stack>.yaml``, ``__main__.py``) creates each
Worker: its ``WorkersScript`` (first version, deployed), workers.dev subdomain, bindings,
gateways and indexes; it declares the script's version inputs ``ignore_changes``
(`cfai.provision.worker.CANARIED_INPUTS`), so no ``pulumi up`` of it ever uploads an existing
Worker again (an upload would serve at 100% at once:
https://developers.cloudflare.com/workers/configuration/versions-and-deployments/). New
versions go through the **rollout stack** ``<stack>-rollout`` (same Pulumi project ``cfai``,
inline program `cfai.deploy._cloud_program.rollout_program`), which adds ``WorkerVersion``s
to those same Workers and moves traffic with a percentage ``WorkersDeployment``. It declares
no ``WorkersScript`` and no Worker, so no physical name collides with the platform stack.
`cfai.deploy.cloud_target.CloudTarget` runs both: the platform stack's ``up`` first, then
this driver. A Worker the rollout stack has not seen yet is adopted: its live deployment's
version (id and module hash, read from the Cloudflare API) becomes the "current" version,
referenced by id only. A record an interrupted deploy left split between two versions is
settled on loading (`_recover`): the one at the higher percentage takes all traffic again.

The rollout stack remembers each Worker's versions (their full upload spec, so an earlier
version is re-declared unchanged) and split in its ``rollout`` output; every `Driver` call
that changes something is one ``up``. The Automation API (`cfai.deploy._automation`) needs
the Pulumi CLI: `open_cloud_driver` calls `require_cli` first, which stops at once
(`ToolMissingError`, exit 2) when it is missing.

Example::

    driver = open_cloud_driver(Path("."), "staging")      # ToolMissingError without the CLI
    report = deploy(rendered, stack="staging", workers_dir=Path("workers"), driver=driver,
                    gate=contract_gate(Path("."), live=True))
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from cfai.deploy._cloud_program import Plan, VersionSpec, rollout_program
from cfai.deploy.driver import Version, worker_outputs
from cfai.deploy.record import DeployRecord
from cfai.errors import DeployUserError
from cfai.outputs import Outputs, WorkerOutput
from cfai.provision.pulumi_cli import require_pulumi
from cfai.render import RenderedWorker

__all__ = [
    "CloudDriver",
    "Plan",
    "StackOps",
    "VersionSpec",
    "open_cloud_driver",
    "read_last_deploy",
    "require_cli",
    "rollout_program",
    "rollout_stack_name",
]

AUTH_TOKEN_KEY = "cfai:authToken"


class StackOps(Protocol):
    """The few Automation API operations the driver needs, on the rollout stack."""

    def set_config(self, key: str, value: str, *, secret: bool = False) -> None:
        """Set one stack config value (``cfai:authToken`` as a secret)."""

    def up(self, program: Callable[[], None]) -> dict[str, Any]:
        """Run `program` on the stack (``pulumi up``) and return its outputs as plain values."""

    def outputs(self) -> dict[str, Any]:
        """The stack's last outputs as plain values (empty for a new stack)."""


#: The version deployed at the highest percentage on a script (its Cloudflare id and the
#: template hash of its main module, read back), or None.
LiveVersion = Callable[[str], Version | None]


def rollout_stack_name(stack: str) -> str:
    """The rollout stack beside platform stack `stack`.

    >>> rollout_stack_name("staging")
    'staging-rollout'
    """
    return f"{stack}-rollout"


def require_cli() -> None:
    """Stop with the install hint (`ToolMissingError`, exit 2) when the Pulumi CLI is missing."""
    require_pulumi()


class CloudDriver:
    """The `Driver` of a Pulumi stack, over `StackOps` on its rollout stack.

    ``platform_outputs`` are the platform stack's outputs (what the contract suite reads:
    workers.dev URLs, the secret ``auth_token``); ``live_version`` finds a Worker's
    deployed version when the rollout stack has no record of it yet.
    """

    def __init__(
        self,
        ops: StackOps,
        *,
        stack: str,
        account_id: str,
        platform_outputs: Outputs,
        live_version: LiveVersion,
    ) -> None:
        self.ops = ops
        self.stack = stack
        self.account_id = account_id
        self.platform_outputs = platform_outputs
        self.live_version = live_version
        self._state: dict[str, dict[str, Any]] | None = None
        self._configured = False
        self._last: dict[str, Any] | None = None

    # -- Driver -------------------------------------------------------------------------

    # Versions are recorded by key: an uploaded one's `RenderedWorker.version_sha256` (code and
    # settings: a settings-only change is a new version with the same template hash), an
    # adopted one's settings digest read back from Cloudflare (`read_version_sha256`), or its
    # template hash when the read gave none.

    def current(self, worker: RenderedWorker) -> Version | None:
        record = self._record(worker)
        if record is None or not record["split"]:
            return None
        key = max(record["split"], key=lambda s: (record["split"][s], s))
        entry = record["versions"][key]
        if entry["spec"] is None:
            # Adopted: keyed by its settings digest when Cloudflare's read gave one.
            sha = str(entry.get("sha256") or key)
            return Version(str(entry["id"]), sha, key if key != sha else "")
        return Version(str(entry["id"]), str(entry["spec"]["sha256"]), key)

    def upload(self, worker: RenderedWorker) -> Version:
        record = self._record(worker) or self._new_record(worker)
        key = worker.version_sha256
        record["versions"][key] = {"id": None, "spec": VersionSpec.of(worker).as_json()}
        self._up()
        return Version(str(self._state_for(worker)["versions"][key]["id"]), worker.sha256, key)

    def split(self, worker: RenderedWorker, weights: Mapping[str, int]) -> None:
        if sum(weights.values()) != 100 or not 1 <= len(weights) <= 2:
            raise ValueError(f"a deployment has 1 or 2 versions summing to 100%: {weights}")
        record = self._state_for(worker)
        by_id = {str(v["id"]): sha for sha, v in record["versions"].items()}
        unknown = set(weights) - set(by_id)
        if unknown:
            raise ValueError(f"{worker.key}: no version {sorted(unknown)}")
        record["split"] = {by_id[vid]: int(pct) for vid, pct in weights.items()}
        self._up()

    def outputs_for(self, worker: RenderedWorker, version: Version) -> Outputs:
        return worker_outputs(self.platform_outputs, worker, version)

    def remove(self, worker: RenderedWorker, version: Version) -> None:
        record = self._state_for(worker)
        key = version.version_sha256 or version.sha256
        if record["split"].get(key):
            raise ValueError(f"{worker.key}: version {version.id} still serves traffic")
        if record["versions"].pop(key, None) is None:
            return
        record["split"].pop(key, None)
        self._up()

    # -- state ----------------------------------------------------------------------------

    def _load(self) -> dict[str, dict[str, Any]]:
        if self._state is None:
            self._state = copy.deepcopy(dict(self.ops.outputs().get("rollout") or {}))
            for record in self._state.values():
                _recover(record)
        return self._state

    def _platform_entry(self, worker: RenderedWorker) -> WorkerOutput:
        entry = self.platform_outputs.workers.get(worker.key)
        if entry is None:
            raise DeployUserError(
                f"Worker {worker.key!r} is not in stack {self.stack!r}'s outputs (new since its "
                f"last `pulumi up`); create it with `pulumi up --stack {self.stack}` first"
            )
        return entry

    def _record(self, worker: RenderedWorker) -> dict[str, Any] | None:
        """The rollout stack's record of `worker`, adopting its live version on first sight
        (a Worker the platform stack created: its id and module hash read from Cloudflare)."""
        state = self._load()
        if worker.key in state:
            return state[worker.key]
        self._platform_entry(worker)
        live = self.live_version(worker.script_name)
        if live is None:
            return None
        key = live.version_sha256 or live.sha256
        state[worker.key] = {
            "script_name": worker.script_name,
            "split": {key: 100},
            "versions": {key: {"id": live.id, "spec": None, "sha256": live.sha256}},
        }
        return state[worker.key]

    def _new_record(self, worker: RenderedWorker) -> dict[str, Any]:
        record: dict[str, Any] = {"script_name": worker.script_name, "split": {}, "versions": {}}
        self._load()[worker.key] = record
        return record

    def _state_for(self, worker: RenderedWorker) -> dict[str, Any]:
        record = self._load().get(worker.key)
        if record is None:
            raise ValueError(f"{worker.key}: no version uploaded")
        return record

    def _plans(self) -> dict[str, Plan]:
        plans = {}
        for key, record in self._load().items():
            versions = record["versions"]
            plans[key] = Plan(
                str(record["script_name"]),
                {
                    sha: VersionSpec.from_json(v["spec"])
                    for sha, v in versions.items()
                    if v["spec"] is not None
                },
                split=dict(record["split"]),
                adopted={sha: str(v["id"]) for sha, v in versions.items() if v["spec"] is None},
                adopted_sha256={
                    k: str(v.get("sha256") or k) for k, v in versions.items() if v["spec"] is None
                },
            )
        return plans

    def save_record(self, record: DeployRecord) -> None:
        """Keep `record` as the rollout stack's ``last_deploy`` output (one ``up``, which
        also declares whatever `_recover` settled)."""
        self._last = record.as_json()
        self._load()
        self._up()

    def last_record(self) -> DeployRecord | None:
        """The ``last_deploy`` output of the rollout stack's last ``up``."""
        data = self.ops.outputs().get("last_deploy")
        return DeployRecord.from_json(data) if data else None

    def _up(self) -> None:
        if not self._configured:
            token = self.platform_outputs.auth_token
            if token:
                self.ops.set_config(AUTH_TOKEN_KEY, token, secret=True)
            self._configured = True
        if self._last is None:
            self._last = self.ops.outputs().get("last_deploy")
        program = rollout_program(self.account_id, self._plans(), last_deploy=self._last)
        outputs = self.ops.up(program)
        self._state = copy.deepcopy(dict(outputs.get("rollout") or {}))


def read_last_deploy(stack: str, project: Path) -> DeployRecord | None:
    """The `DeployRecord` the last ``cfai deploy --stack STACK`` left (the rollout stack's
    ``last_deploy`` output, through the Automation API: needs the Pulumi CLI)."""
    from cfai.deploy._automation import AutomationStack

    data = AutomationStack(rollout_stack_name(stack), project).outputs().get("last_deploy")
    return DeployRecord.from_json(data) if data else None


def _recover(record: dict[str, Any]) -> None:
    """Settle a record an interrupted deploy left split between two versions: the one at
    the higher percentage (the version that passed its canary, or the old one mid-canary)
    takes all traffic again, and versions serving nothing are dropped, so the next
    deploy starts from one promoted version."""
    split = record.get("split") or {}
    if not split:
        return
    keep = max(split, key=lambda k: (split[k], k))
    record["split"] = {keep: 100}
    record["versions"] = {keep: record["versions"][keep]}


def open_cloud_driver(
    project: Path, stack: str, *, on_output: Callable[[str], None] = lambda line: None
) -> CloudDriver:
    """The `CloudDriver` of `stack` in `project`, on the real Pulumi CLI and Cloudflare API;
    `on_output` gets each line ``pulumi up`` of the rollout stack prints.

    Checks for the Pulumi CLI before anything else (`ToolMissingError`, exit 2).
    """
    require_cli()
    from cfai.config import load_stack
    from cfai.deploy._automation import AutomationStack, cloudflare_live_version
    from cfai.provision.pulumi_cli import stack_outputs

    account_id = load_stack(stack, project).account_id
    return CloudDriver(
        AutomationStack(rollout_stack_name(stack), project, on_output=on_output),
        stack=stack,
        account_id=account_id,
        platform_outputs=stack_outputs(stack, project),
        live_version=cloudflare_live_version(account_id),
    )
