"""`Platform`: a whole declared platform on Cloudflare, as one Pulumi component.

Children (all ``parent=self``, logical names ``<name>-<key>``):

- one `Gateway` per ``gateways`` entry (an ``AiGateway``);
- one `Finetune` per ``finetunes`` entry (a dynamic resource: the adapter uploaded as a
  Workers AI finetune), its name bound to the chat Workers that apply it;
- one `VectorizeIndex` per ``indexes`` entry, used directly: it is a single resource, so a
  component around it would add a URN level and nothing else; config maps onto it through
  `cfai.provision.settings.index_fields`, as for the local platform;
- one `AiWorker` per rendered Worker (a ``WorkersScript`` + ``WorkersScriptSubdomain``),
  bound to the index and gateway resources' outputs so they are created first.

Physical names are `cfai.config.PlatformConfig.physical_name` (``<project>-<stack>-<key>`` unless
``name_prefix`` says otherwise), so stacks sharing an account never collide.

The outputs are the map `cfai local up` writes to ``.cfai/local/outputs.json`` (the only thing
the contract suite reads), built as the same `cfai.outputs.Outputs` once the resources'
outputs are known, minus the local-only ``api``: ``target``, ``stack``, ``endpoints``,
``workers``, ``gateways``, ``indexes`` and the secret ``auth_token`` (`OUTPUT_KEYS`).

The declaration comes from Pulumi's config (``cfai:platform``, `cfai.provision.stack_config`),
and every Cloudflare resource uses the default pulumi-cloudflare provider, configured as
Pulumi users expect by ``cloudflare:apiToken`` / ``cloudflare:baseUrl`` (or
``CLOUDFLARE_API_TOKEN`` / ``CLOUDFLARE_BASE_URL``); the indexes (a dynamic provider) and
the gateways' log URLs get the same base URL from `PlatformArgs.base_url`.

Example (what ``__main__.py`` does)::

    args = PlatformArgs.from_pulumi(Path.cwd())         # ConfigError if unset or invalid
    platform = Platform(pulumi.get_project(), args)
    for key, value in platform.outputs.items():
        pulumi.export(key, value)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pulumi

from cfai.config import load_stack
from cfai.config import models as config
from cfai.finetunes import CONFIG_FILE, MODEL_FILE, digest_folder
from cfai.kinds import kind_for
from cfai.outputs import GatewayOutput, IndexOutput, Outputs, TargetKind
from cfai.provision.finetune import Finetune, FinetuneArgs
from cfai.provision.gateway import Gateway, GatewayArgs
from cfai.provision.settings import index_fields
from cfai.provision.stack_config import cloudflare_base_url, declaration
from cfai.provision.vectorize_index import VectorizeIndex, VectorizeIndexArgs
from cfai.provision.worker import (
    AiWorker,
    AiWorkerArgs,
    auth_token,
    missing_auth_token,
    workers_subdomain,
)
from cfai.render import RenderedWorker, render_platform

__all__ = ["OUTPUT_KEYS", "Platform", "PlatformArgs"]

#: The stack outputs: every key of the outputs map but the local-only ``api``.
OUTPUT_KEYS = tuple(key for key in Outputs.model_fields if key != "api")


@dataclass(frozen=True)
class PlatformArgs:
    """A validated platform, its rendered Workers and the stack config they need.

    Build it with `from_pulumi` / `from_stack` / `from_config`, which do every check that can
    fail before a single resource is declared, raising `cfai.errors.CfaiError` subclasses
    only. ``base_url``: the Cloudflare API root (None: Cloudflare's own).
    """

    platform: config.PlatformConfig
    rendered: Sequence[RenderedWorker]
    workers_subdomain: str | None = None
    auth_token: pulumi.Input[str] | None = None
    #: The project directory: finetune paths are relative to it (and Pulumi runs there).
    base_dir: Path = Path()
    base_url: str | None = None

    @classmethod
    def from_pulumi(cls, base_dir: Path) -> PlatformArgs:
        """The stack's declaration from Pulumi's config (``cfai:platform``), as the Pulumi
        program reads it; `base_dir` is the project directory."""
        return cls.from_config(declaration(base_dir), base_dir=base_dir)

    @classmethod
    def from_stack(cls, stack: str, project_dir: Path) -> PlatformArgs:
        """Load ``Pulumi.<stack>.yaml`` from `project_dir` (without Pulumi's config, e.g.
        for a program of your own) and read the rest of the stack config."""
        return cls.from_config(load_stack(stack, project_dir), base_dir=project_dir)

    @classmethod
    def from_config(cls, platform: config.PlatformConfig, *, base_dir: Path) -> PlatformArgs:
        """Render `platform` and read ``cfai:workersSubdomain`` / ``cfai:authToken``
        (each required only when some Worker needs it) and the Cloudflare base URL."""
        rendered = render_platform(platform, base_dir=base_dir)
        subdomain = workers_subdomain() if rendered else None
        token = auth_token()
        if token is None and any(b.type == "secret_text" for r in rendered for b in r.bindings):
            # The error AiWorker would raise, before any resource is declared.
            needing = next(r for r in rendered if any(b.type == "secret_text" for b in r.bindings))
            raise missing_auth_token(needing.script_name)
        return cls(platform, tuple(rendered), subdomain, token, base_dir, cloudflare_base_url())


class Platform(pulumi.ComponentResource):
    """Every gateway, index and Worker of a declared platform; outputs as `cfai local up`."""

    endpoints: pulumi.Output[dict[str, str]]
    workers: pulumi.Output[dict[str, dict[str, Any]]]
    gateways: pulumi.Output[dict[str, dict[str, str]]]
    indexes: pulumi.Output[dict[str, dict[str, Any]]]
    auth_token: pulumi.Output[str | None]

    def __init__(
        self, name: str, args: PlatformArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cfai:index:Platform", name, None, opts)
        p = args.platform
        child = pulumi.ResourceOptions(parent=self)
        self.gateway_resources = {
            key: Gateway(
                f"{name}-{key}",
                GatewayArgs(
                    account_id=p.account_id,
                    gateway_id=p.physical_name(key),
                    gateway=gw,
                    base_url=args.base_url,
                ),
                child,
            )
            for key, gw in p.gateways.items()
        }
        self.index_resources = {
            key: VectorizeIndex(f"{name}-{key}", _index_args(p, key, idx, args.base_url), child)
            for key, idx in p.indexes.items()
        }
        self.finetune_resources = {
            key: Finetune(f"{name}-{key}", _finetune_args(p, key, args), child)
            for key in p.finetunes
        }
        finetune_names = {
            p.finetune_name(k, args.base_dir): ft.finetune_name
            for k, ft in self.finetune_resources.items()
        }
        index_names = {
            p.physical_name(k): idx.index_name for k, idx in self.index_resources.items()
        }
        gateway_ids = {
            p.physical_name(k): gw.gateway_id for k, gw in self.gateway_resources.items()
        }
        if args.rendered and args.workers_subdomain is None:
            raise ValueError("PlatformArgs.workers_subdomain is required to deploy Workers")
        self.worker_resources = {
            r.key: AiWorker(
                f"{name}-{r.key}",
                AiWorkerArgs(
                    account_id=p.account_id,
                    rendered=r,
                    workers_subdomain=args.workers_subdomain or "",
                    auth_token=args.auth_token,
                    index_names=index_names,
                    gateway_ids=gateway_ids,
                    finetune_names=finetune_names,
                ),
                child,
            )
            for r in args.rendered
        }

        # The resources' outputs (physical names, URLs) resolved, then one `Outputs` built
        # from them as `cfai local up` builds its own; the token stays a secret of its own.
        resolved = pulumi.Output.all(
            workers={
                key: {"url": w.url, "script_name": w.script_name}
                for key, w in self.worker_resources.items()
            },
            gateways={
                key: {"id": gw.gateway_id, "logs_url": gw.logs_url}
                for key, gw in self.gateway_resources.items()
            },
            indexes={
                key: {"name": i.index_name, "dimensions": i.dimensions, "metric": i.metric}
                for key, i in self.index_resources.items()
            },
        )
        stack = pulumi.get_stack()
        built = resolved.apply(lambda found: _outputs(p, args.rendered, stack, found).to_json())
        self.endpoints = built.apply(lambda o: o["endpoints"])
        self.workers = built.apply(lambda o: o["workers"])
        self.gateways = built.apply(lambda o: o["gateways"])
        self.indexes = built.apply(lambda o: o["indexes"])
        self.auth_token = pulumi.Output.secret(args.auth_token)
        self.register_outputs(self.outputs)

    @property
    def outputs(self) -> dict[str, Any]:
        """The stack outputs, keyed as in ``.cfai/local/outputs.json`` (`OUTPUT_KEYS`)."""
        return {
            "target": TargetKind.CLOUDFLARE.value,
            "stack": pulumi.get_stack(),
            "endpoints": self.endpoints,
            "workers": self.workers,
            "gateways": self.gateways,
            "indexes": self.indexes,
            "auth_token": self.auth_token,
        }


def _outputs(
    p: config.PlatformConfig, rendered: Sequence[RenderedWorker], stack: str, found: Any
) -> Outputs:
    """The outputs map from the resolved resource outputs `found` (see `Platform`)."""
    workers = found["workers"]
    return Outputs(
        target=TargetKind.CLOUDFLARE,
        stack=stack,
        workers={
            r.key: r.output(
                url=workers[r.key]["url"],
                script_name=workers[r.key]["script_name"],
                contract=p.workers[r.key].contract,
                fields=kind_for(r.kind).output_fields(p.workers[r.key]),
            )
            for r in rendered
        },
        gateways={key: GatewayOutput(**gw) for key, gw in found["gateways"].items()},
        indexes={key: IndexOutput(**idx) for key, idx in found["indexes"].items()},
    )


def _finetune_args(p: config.PlatformConfig, key: str, args: PlatformArgs) -> FinetuneArgs:
    base_dir = args.base_dir
    finetune = p.finetunes[key]
    folder = PurePosixPath(finetune.path)
    digest = digest_folder(base_dir / finetune.path)
    return FinetuneArgs(
        account_id=p.account_id,
        finetune_name=p.finetune_name(key, base_dir),
        model=finetune.base_model,
        description=finetune.description,
        config_path=str(folder / CONFIG_FILE),
        config_sha256=digest.config_sha256,
        model_path=str(folder / MODEL_FILE),
        model_sha256=digest.model_sha256,
        base_url=args.base_url,
    )


def _index_args(
    p: config.PlatformConfig, key: str, index: config.IndexConfig, base_url: str | None
) -> VectorizeIndexArgs:
    f = index_fields(p.physical_name(key), index)
    return VectorizeIndexArgs(
        account_id=p.account_id,
        index_name=f["name"],
        dimensions=f["dimensions"],
        metric=f["metric"],
        description=f["description"] or None,
        metadata_indexes=f["metadata_indexes"],
        base_url=base_url,
    )
