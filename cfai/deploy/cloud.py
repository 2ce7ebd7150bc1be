"""Cloud side of `cfai deploy --stack`: Worker versions and percentage deployments in Pulumi.

`rollout_program` declares, per Worker, one `WorkerVersion` per listed version (never
deployed by itself, ``deploy=False``) and one `WorkersDeployment` with the split
(``strategy="percentage"``, 1 or 2 versions summing to 100). `CloudDriver` runs it through
the Automation API, which needs the Pulumi CLI: without it, `require_pulumi` stops at once
with how to install it.

Example::

    program = rollout_program(account_id, {"assistant": Plan(rendered, {sha_old: 90, sha_new: 10})})
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_cloudflare as cloudflare

from cfai.provision.pulumi_cli import require_pulumi
from cfai.render import RenderedWorker

__all__ = ["Plan", "require_cli", "rollout_program"]


@dataclass(frozen=True)
class Plan:
    """One Worker's versions (by template hash -> its rendered module) and split (hash -> %)."""

    script_name: str
    modules: Mapping[str, RenderedWorker]
    split: Mapping[str, int] = field(default_factory=dict)


def rollout_program(account_id: str, plans: Mapping[str, Plan]) -> Callable[[], None]:
    """The inline Pulumi program for `plans`; exports ``versions`` {worker: {sha: id}}."""

    def program() -> None:
        exported: dict[str, dict[str, pulumi.Output[str]]] = {}
        for key, plan in sorted(plans.items()):
            if sum(plan.split.values()) != 100 or not 1 <= len(plan.split) <= 2:
                raise ValueError(f"{key}: a deployment has 1 or 2 versions summing to 100%")
            versions = {}
            for sha, r in sorted(plan.modules.items()):
                versions[sha] = cloudflare.WorkerVersion(
                    f"{key}-{sha[:12]}",
                    account_id=account_id,
                    worker_id=plan.script_name,
                    main_module=r.main_module,
                    compatibility_date=r.compatibility_date,
                    compatibility_flags=list(r.compatibility_flags),
                    modules=[
                        cloudflare.WorkerVersionModuleArgs(
                            name=r.main_module,
                            content_type="application/javascript+module",
                            content_base64=base64.b64encode(r.source.encode()).decode(),
                        )
                    ],
                    deploy=False,
                )
            cloudflare.WorkersDeployment(
                f"{key}-deployment",
                account_id=account_id,
                script_name=plan.script_name,
                strategy="percentage",
                versions=[
                    cloudflare.WorkersDeploymentVersionArgs(
                        version_id=versions[sha].id, percentage=float(pct)
                    )
                    for sha, pct in sorted(plan.split.items())
                ],
            )
            exported[key] = {sha: v.id for sha, v in versions.items()}
        pulumi.export("versions", exported)

    return program


def require_cli() -> None:
    """Stop with the install hint (`ToolMissingError`, exit 2) when the Pulumi CLI is missing."""
    require_pulumi()
