"""`cfai deploy`: a stack's whole declaration applied, Worker versions through canary
rollouts gated by the contract suite, with automatic rollback.

`cfai.deploy.stack.apply_and_canary` applies everything but existing Workers' new versions
through a `Target` (`cfai.deploy.local.LocalTarget`, `cfai.deploy.cloud_target.CloudTarget`),
then canaries the rest. One orchestrator (`deploy`) drives any `Driver`: `cfai.deploy.local.LocalDriver` (the local
platform's router and workerd versions) or `cfai.deploy.cloud.CloudDriver` (Pulumi
`WorkerVersion` + `WorkersDeployment`).

Example::

    from cfai.deploy import contract_gate, deploy
    report = deploy(rendered, stack="local", workers_dir=Path("workers"), driver=driver,
                    gate=contract_gate(Path(".")), steps=(10, 50, 100))
"""

from cfai.deploy.driver import (
    OVERRIDE_HEADER,
    DeployUserError,
    Driver,
    Failure,
    Gate,
    Version,
    contract_gate,
    override_header,
    worker_outputs,
)
from cfai.deploy.orchestrator import DEFAULT_STEPS, DeployReport, Rollout, deploy, parse_steps

__all__ = [
    "DEFAULT_STEPS",
    "OVERRIDE_HEADER",
    "DeployReport",
    "DeployUserError",
    "Driver",
    "Failure",
    "Gate",
    "Rollout",
    "Version",
    "contract_gate",
    "deploy",
    "override_header",
    "parse_steps",
    "worker_outputs",
]
