"""The rollout stack's inline Pulumi program: `WorkerVersion`s and a percentage `WorkersDeployment`.

Per Worker, one ``WorkerVersion`` per version cfai uploaded (never deployed by itself,
``deploy=False``) and, when a split is set, one ``WorkersDeployment`` (``strategy=
"percentage"``, 1 or 2 versions summing to 100). A version cfai did not upload (the one the
platform stack's ``WorkersScript`` deployed, adopted on the first rollout) is referenced by
its id only: it is no resource here, so this stack never replaces or deletes it.

Bindings are built as `cfai.provision.worker.AiWorker` builds them for ``WorkersScript``
(same order; vectorize by physical index name, plain_text as rendered, secret_text from
``cfai:authToken`` as a secret); a test holds the two equal.

Example::

    spec = VersionSpec.of(rendered)
    plan = Plan("acme-prod-chat", {spec.sha256: spec}, split={spec.sha256: 100})
    program = rollout_program(account_id, {"assistant": plan})
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_cloudflare as cloudflare

from cfai.provision.worker import auth_token, missing_auth_token
from cfai.render import Binding, RenderedWorker

__all__ = ["Plan", "VersionSpec", "rollout_program"]

# AiWorker's upload order (cfai.provision.worker): keeps version diffs quiet.
_TYPE_ORDER = {"ai": 0, "vectorize": 1, "plain_text": 2, "secret_text": 3}


@dataclass(frozen=True)
class VersionSpec:
    """What one `WorkerVersion` uploads; round-trips through the stack's outputs as JSON,
    so an earlier version is re-declared unchanged after its render is gone."""

    sha256: str
    main_module: str
    source: str
    compatibility_date: str
    compatibility_flags: tuple[str, ...]
    bindings: tuple[Binding, ...]

    @classmethod
    def of(cls, r: RenderedWorker) -> VersionSpec:
        return cls(
            r.sha256,
            r.main_module,
            r.source,
            r.compatibility_date,
            tuple(r.compatibility_flags),
            tuple(r.bindings),
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "sha256": self.sha256,
            "main_module": self.main_module,
            "source": self.source,
            "compatibility_date": self.compatibility_date,
            "compatibility_flags": list(self.compatibility_flags),
            "bindings": [b.as_dict() for b in self.bindings],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> VersionSpec:
        return cls(
            str(data["sha256"]),
            str(data["main_module"]),
            str(data["source"]),
            str(data["compatibility_date"]),
            tuple(data["compatibility_flags"]),
            tuple(Binding(**b) for b in data["bindings"]),
        )


@dataclass(frozen=True)
class Plan:
    """One Worker in the rollout stack.

    ``modules``: the versions cfai uploaded (version key -> spec; the key is
    `RenderedWorker.version_sha256`, code and settings); ``adopted``: versions referenced
    by id only (their template hash -> Cloudflare version id); ``split``: key -> percentage
    (empty: no deployment declared).
    """

    script_name: str
    modules: Mapping[str, VersionSpec]
    split: Mapping[str, int] = field(default_factory=dict)
    adopted: Mapping[str, str] = field(default_factory=dict)
    #: The template hash of each adopted version (key -> hash) when its key is not one.
    adopted_sha256: Mapping[str, str] = field(default_factory=dict)


def rollout_program(
    account_id: str, plans: Mapping[str, Plan], *, last_deploy: Mapping[str, Any] | None = None
) -> Callable[[], None]:
    """The inline program for `plans`. Exports ``rollout``: per Worker its ``script_name``,
    ``split`` and ``versions`` {hash: {"id", "spec" (None when adopted)}}; and
    ``last_deploy`` (`cfai.deploy.record.DeployRecord` as JSON) when given."""
    for key, plan in plans.items():
        _check(key, plan)

    def program() -> None:
        token = auth_token()
        exported: dict[str, Any] = {}
        for key, plan in sorted(plans.items()):
            ids: dict[str, pulumi.Input[str]] = dict(plan.adopted)
            versions: dict[str, Any] = {
                k: {"id": vid, "spec": None, "sha256": plan.adopted_sha256.get(k, k)}
                for k, vid in ids.items()
            }
            for sha, spec in sorted(plan.modules.items()):
                version = _version(f"{key}-{sha[:12]}", account_id, plan.script_name, spec, token)
                ids[sha] = version.id
                versions[sha] = {"id": version.id, "spec": spec.as_json()}
            if plan.split:
                cloudflare.WorkersDeployment(
                    f"{key}-deployment",
                    account_id=account_id,
                    script_name=plan.script_name,
                    strategy="percentage",
                    versions=[
                        cloudflare.WorkersDeploymentVersionArgs(
                            version_id=ids[sha], percentage=float(pct)
                        )
                        for sha, pct in sorted(plan.split.items())
                    ],
                )
            exported[key] = {
                "script_name": plan.script_name,
                "split": dict(plan.split),
                "versions": versions,
            }
        pulumi.export("rollout", exported)
        if last_deploy is not None:
            pulumi.export("last_deploy", dict(last_deploy))

    return program


def _check(key: str, plan: Plan) -> None:
    both = set(plan.modules) & set(plan.adopted)
    if both:
        raise ValueError(f"{key}: version {sorted(both)} is both uploaded and adopted")
    if plan.split and (sum(plan.split.values()) != 100 or not 1 <= len(plan.split) <= 2):
        raise ValueError(f"{key}: a deployment has 1 or 2 versions summing to 100%")
    unknown = set(plan.split) - set(plan.modules) - set(plan.adopted)
    if unknown:
        raise ValueError(f"{key}: the split names unknown versions {sorted(unknown)}")


def _version(
    name: str,
    account_id: str,
    script: str,
    spec: VersionSpec,
    token: pulumi.Output[str] | None,
) -> cloudflare.WorkerVersion:
    return cloudflare.WorkerVersion(
        name,
        account_id=account_id,
        worker_id=script,
        main_module=spec.main_module,
        compatibility_date=spec.compatibility_date,
        compatibility_flags=list(spec.compatibility_flags),
        modules=[
            cloudflare.WorkerVersionModuleArgs(
                name=spec.main_module,
                content_type="application/javascript+module",
                content_base64=base64.b64encode(spec.source.encode()).decode(),
            )
        ],
        bindings=[
            _binding(b, script, token)
            for b in sorted(spec.bindings, key=lambda b: (_TYPE_ORDER[b.type], b.name))
        ],
        deploy=False,
    )


def _binding(
    b: Binding, script: str, token: pulumi.Output[str] | None
) -> cloudflare.WorkerVersionBindingArgs:
    if b.type == "vectorize":
        return cloudflare.WorkerVersionBindingArgs(
            type="vectorize", name=b.name, index_name=b.index_name or ""
        )
    if b.type == "secret_text":
        if token is None:
            raise missing_auth_token(script)
        return cloudflare.WorkerVersionBindingArgs(
            type="secret_text", name=b.name, text=pulumi.Output.secret(token)
        )
    if b.type == "plain_text":
        return cloudflare.WorkerVersionBindingArgs(
            type="plain_text", name=b.name, text=b.text or ""
        )
    return cloudflare.WorkerVersionBindingArgs(type=b.type, name=b.name)
