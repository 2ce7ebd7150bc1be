"""`AiWorker`: one rendered Worker as a `pulumi_cloudflare.WorkersScript` on workers.dev.

The script's ``content`` is `RenderedWorker.source`, the exact bytes `cfai render` writes to
``workers/<key>/index.js`` (`cfai.render.module_path`; the same module in every stack), so
what is deployed is what was reviewed. Bindings come from the render (the stack's settings
are plain_text vars among them, as in that stack's env of ``workers/<key>/wrangler.jsonc``)
and are uploaded in a stable order (ai, vectorize, plain_text, secret_text; by name within a
type) to keep diffs quiet, with two substitutions that make dependencies real:

- a ``vectorize`` binding's ``index_name`` is the `VectorizeIndex` resource's output, so the
  index exists before the script that binds it;
- a ``plain_text`` binding holding a gateway id is the `Gateway`'s output, likewise;
- a ``plain_text`` binding holding a finetune name (``LORA``) is the `Finetune`'s output,
  so the adapter is uploaded before the Worker that applies it.

Only the first version comes from here. The script's version inputs (`CANARIED_INPUTS`:
module, bindings, compatibility settings) are ``ignore_changes``: uploading a script deploys
it to all traffic at once, so after creation a bare ``pulumi up`` never changes what an
existing Worker runs; its new versions go through ``cfai deploy``'s canary
(`cfai.deploy.cloud`). A new Worker has nothing to protect and is created as rendered.

The ``secret_text`` binding carries the ``cfai:authToken`` secret as an Output. The Pulumi
SDK marks a list or dict secret when one element is (``pulumi/runtime/rpc.py``,
``_unwrap_rpc_secret_struct_properties``), so the *whole* ``bindings`` input and output of the script is
secret: `pulumi preview --diff` shows ``[secret]`` for any binding change. The token itself
never appears in plain text in state or in diffs.

Static assets (a custom Worker's ``assets:``, a playground page) are the script's ``assets``:
the provider uploads them through Cloudflare's assets upload session from the folder, the
declared one or ``workers/<key>/playground`` that `cfai render` writes.

The URL is ``https://<script>.<cfai:workersSubdomain>.workers.dev``: Cloudflare has no
resource or output for the account's workers.dev subdomain, so it is stack config.

Example::

    kb = AiWorker("kb", AiWorkerArgs(account_id=account, rendered=rendered,
                                     workers_subdomain=workers_subdomain(),
                                     auth_token=auth_token(),
                                     index_names={"acme-prod-docs": docs.index_name}))
    pulumi.export("kb", kb.url)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_cloudflare as cloudflare

from cfai.errors import ConfigError, Problem
from cfai.render import PLAYGROUND_DIR, Binding, RenderedWorker

__all__ = [
    "CANARIED_INPUTS",
    "AiWorker",
    "AiWorkerArgs",
    "assets_directory",
    "auth_token",
    "check_subdomain",
    "missing_auth_token",
    "workers_subdomain",
]

AUTH_TOKEN_KEY = "cfai:authToken"
SUBDOMAIN_KEY = "cfai:workersSubdomain"
_SUBDOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_TYPE_ORDER = {"ai": 0, "vectorize": 1, "plain_text": 2, "secret_text": 3, "assets": 4}
#: The `WorkersScript` inputs that make a new version: set when the script is created, then
#: left to `cfai deploy` (https://developers.cloudflare.com/workers/configuration/versions-and-
#: deployments/: uploading a script creates a version and deploys it to all traffic).
CANARIED_INPUTS = (
    "content",
    "main_module",
    "compatibility_date",
    "compatibility_flags",
    "bindings",
)


def workers_subdomain() -> str:
    """The account's workers.dev subdomain from stack config ``cfai:workersSubdomain``.

    Raises `ConfigError` naming the key and the command that sets it.
    """
    value = pulumi.Config("cfai").get("workersSubdomain")
    if not value:
        raise ConfigError(
            [
                Problem(
                    SUBDOMAIN_KEY,
                    "not set: the account's workers.dev subdomain (dashboard: Workers & Pages -> "
                    "Account details -> Subdomain); set it with "
                    "`pulumi config set cfai:workersSubdomain <name>`",
                )
            ]
        )
    return check_subdomain(value)


def check_subdomain(value: str) -> str:
    """`value` if it is a workers.dev subdomain label, else `ConfigError`."""
    if not _SUBDOMAIN.fullmatch(value):
        hint = (
            f" (only the first label: {value.split('.')[0]!r})"
            if value.endswith(".workers.dev")
            else ""
        )
        raise ConfigError(
            [
                Problem(
                    SUBDOMAIN_KEY,
                    f"{value!r} is not a workers.dev subdomain: lowercase letters, digits and "
                    f"'-', at most 63{hint}",
                )
            ]
        )
    return value


def auth_token() -> pulumi.Output[str] | None:
    """The Workers' bearer token, stack secret ``cfai:authToken``, as a secret Output (or None)."""
    return pulumi.Config("cfai").get_secret("authToken")


def missing_auth_token(script: str) -> ConfigError:
    """The error for a Worker with a secret_text binding when ``cfai:authToken`` is unset."""
    return ConfigError(
        [
            Problem(
                AUTH_TOKEN_KEY,
                f"not set, and Worker {script!r} has a secret_text binding for it; set it with "
                '`pulumi config set --secret cfai:authToken "$(openssl rand -hex 24)"`',
            )
        ]
    )


@dataclass(frozen=True)
class AiWorkerArgs:
    """What an `AiWorker` deploys.

    ``index_names`` maps each physical index name the render binds to the `VectorizeIndex`
    output carrying it; ``gateway_ids`` likewise for gateways and ``finetune_names`` for
    finetunes (the ``LORA`` var of a chat Worker). ``auth_token`` is required
    when the render has a ``secret_text`` binding.
    """

    account_id: pulumi.Input[str]
    rendered: RenderedWorker
    workers_subdomain: str
    auth_token: pulumi.Input[str] | None = None
    index_names: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    gateway_ids: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    finetune_names: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)


class AiWorker(pulumi.ComponentResource):
    """A rendered Worker uploaded as an ES module and enabled on workers.dev."""

    script_name: pulumi.Output[str]
    url: pulumi.Output[str]
    template_sha256: pulumi.Output[str]

    def __init__(
        self, name: str, args: AiWorkerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cfai:index:AiWorker", name, None, opts)
        rendered = args.rendered
        subdomain = check_subdomain(args.workers_subdomain)
        bindings = [
            _binding(b, args)
            for b in sorted(rendered.bindings, key=lambda b: (_TYPE_ORDER[b.type], b.name))
        ]
        self.script = cloudflare.WorkersScript(
            name,
            account_id=args.account_id,
            script_name=rendered.script_name,
            content=rendered.source,
            main_module=rendered.main_module,
            compatibility_date=rendered.compatibility_date,
            compatibility_flags=list(rendered.compatibility_flags),
            bindings=bindings,
            assets=_assets(rendered),
            # Created with the rendered version; never updated by this program afterwards:
            # an update re-uploads the script, which serves at 100% at once, so a new version
            # of an existing Worker (code, bindings, vars, compatibility) goes only through
            # `cfai deploy`'s canary (`WorkerVersion` + `WorkersDeployment`, the rollout stack).
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=list(CANARIED_INPUTS)),
        )
        self.subdomain = cloudflare.WorkersScriptSubdomain(
            f"{name}-subdomain",
            account_id=args.account_id,
            script_name=self.script.script_name,
            enabled=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.script_name = self.script.script_name
        # From the subdomain resource, so the URL is known only once the Worker is reachable.
        self.url = self.subdomain.script_name.apply(
            lambda script: f"https://{script}.{subdomain}.workers.dev"
        )
        self.template_sha256 = pulumi.Output.from_input(rendered.sha256)
        self.register_outputs(
            {"script_name": self.script_name, "url": self.url, "template_sha256": rendered.sha256}
        )


def assets_directory(rendered: RenderedWorker) -> str | None:
    """The project-relative folder `WorkersScript` uploads a Worker's static assets from:
    the declared one, or the playground page `cfai render` writes beside the module."""
    if rendered.assets is None:
        return None
    if rendered.assets.packaged:
        return f"workers/{rendered.key}/{PLAYGROUND_DIR}"
    return rendered.assets.directory


def _assets(rendered: RenderedWorker) -> cloudflare.WorkersScriptAssetsArgs | None:
    # The provider runs Cloudflare's assets upload session from `directory` and hashes its
    # manifest into `asset_manifest_sha256` at plan time, so an edited file is a diff
    # (terraform-provider-cloudflare internal/services/workers_script/assets.go).
    directory = assets_directory(rendered)
    if directory is None or rendered.assets is None:
        return None
    config = rendered.assets.settings.config()
    return cloudflare.WorkersScriptAssetsArgs(
        directory=directory,
        config=cloudflare.WorkersScriptAssetsConfigArgs(
            html_handling=config["html_handling"],
            not_found_handling=config["not_found_handling"],
            run_worker_first=config.get("run_worker_first"),
        ),
    )


def _binding(b: Binding, args: AiWorkerArgs) -> cloudflare.WorkersScriptBindingArgs:
    script = args.rendered.script_name
    if b.type == "vectorize":
        index = b.index_name or ""
        if index not in args.index_names:
            have = ", ".join(sorted(args.index_names)) or "none"
            raise ValueError(
                f"worker '{script}': binding {b.name} needs index {index!r}, "
                f"which has no resource (have: {have})"
            )
        return cloudflare.WorkersScriptBindingArgs(
            type="vectorize", name=b.name, index_name=args.index_names[index]
        )
    if b.type == "secret_text":
        if args.auth_token is None:
            raise missing_auth_token(script)
        return cloudflare.WorkersScriptBindingArgs(
            type="secret_text", name=b.name, text=pulumi.Output.secret(args.auth_token)
        )
    if b.type == "plain_text":
        text = b.text or ""
        outputs = {**args.finetune_names, **args.gateway_ids}
        return cloudflare.WorkersScriptBindingArgs(
            type="plain_text", name=b.name, text=outputs.get(text, text)
        )
    return cloudflare.WorkersScriptBindingArgs(type=b.type, name=b.name)
