"""Provision the local platform through the emulator's REST API, with the same client
(`cfai.provision.rest`) and settings mapping (`cfai.provision.settings`) the cloud path uses,
so `cfai local up` exercises the real provisioning code: gateways, indexes and finetunes,
then every Worker as a script upload (``PUT /workers/scripts/{name}``, what
pulumi-cloudflare's ``WorkersScript`` sends) with workers.dev enabled
(``WorkersScriptSubdomain``). Finetunes go through `FinetunesApi.ensure`, as the `Finetune`
resource's create does: adopted when present (they cannot change), else created, both assets
uploaded.

A Worker whose deployed version already runs the same module, bindings and compatibility
settings is left alone, as a Pulumi update leaves an unchanged resource: restarting the
platform then re-uploads nothing (the emulator restores what was deployed); if it shares
its traffic with another version, it gets all of it back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from cfai.config import PlatformConfig
from cfai.finetunes import FILE_NAMES
from cfai.provision.rest import CloudflareApiError, CloudflareClient
from cfai.provision.scripts import same_version
from cfai.provision.settings import gateway_fields, index_fields, script_upload
from cfai.render import RenderedWorker

__all__ = ["deploy_workers", "provision"]


def provision(
    platform: PlatformConfig,
    base_url: str,
    token: str,
    progress: Callable[[str], None],
    *,
    base_dir: Path = Path(),
) -> None:
    """Create or update every gateway and index of `platform`, and their metadata indexes;
    create (or adopt) every finetune from its files under `base_dir`."""
    with CloudflareClient(
        base_url, token=token, account_id=platform.account_id, max_retries=2
    ) as cf:
        for key, gw in platform.gateways.items():
            body = gateway_fields(platform.physical_name(key), gw)
            progress(f"gateway {body['id']}")
            try:
                cf.ai_gateway.update(body["id"], body)
            except CloudflareApiError as err:
                if not err.not_found:
                    raise
                cf.ai_gateway.create(body)
        for key, index in platform.indexes.items():
            f = index_fields(platform.physical_name(key), index)
            progress(f"vectorize_index {f['name']} ({f['dimensions']} dims, {f['metric']})")
            create = {
                "dimensions": f["dimensions"],
                "metric": f["metric"],
                "description": f["description"],
            }
            try:
                existing = cf.vectorize.get_index(f["name"])
            except CloudflareApiError as err:
                if not err.not_found:
                    raise
                cf.vectorize.create_index(f["name"], **create)
            else:
                cfg = existing.get("config", {})
                if (cfg.get("dimensions"), cfg.get("metric")) != (f["dimensions"], f["metric"]):
                    # Local state is disposable: replace, as `pulumi up` would.
                    cf.vectorize.delete_index(f["name"])
                    cf.vectorize.create_index(f["name"], **create)
            have = {m["propertyName"] for m in cf.vectorize.list_metadata_indexes(f["name"])}
            for prop, kind in f["metadata_indexes"].items():
                if prop not in have:
                    cf.vectorize.create_metadata_index(f["name"], prop, kind)
        for key, finetune in platform.finetunes.items():
            name = platform.finetune_name(key, base_dir)
            folder = base_dir / finetune.path
            progress(f"finetune {name} ({finetune.base_model})")
            cf.finetunes.ensure(
                name,
                model=finetune.base_model,
                description=finetune.description,
                files={f: (folder / f).read_bytes() for f in FILE_NAMES},
            )


def deploy_workers(
    platform: PlatformConfig,
    rendered: Sequence[RenderedWorker],
    base_url: str,
    token: str,
    auth_token: str,
    progress: Callable[[str], None],
) -> list[str]:
    """Upload every rendered Worker that does not already run as rendered, and enable it on
    workers.dev. Returns the script names uploaded."""
    uploaded = []
    with CloudflareClient(
        base_url, token=token, account_id=platform.account_id, max_retries=2
    ) as cf:
        for r in rendered:
            # Its message names the assets too (version_sha256); files go up only when needed.
            upload = script_upload(r, auth_token, assets_jwt="" if r.assets else None)
            live = cf.workers.current(r.script_name)
            version = (
                cf.workers.version(r.script_name, str(live["version_id"]), modules=True)
                if live is not None
                else None
            )
            if version is None or not same_version(version, upload):
                progress(f"worker {r.script_name} ({r.sha256[:12]})")
                if r.assets is not None:
                    progress(f"assets of {r.script_name} ({len(r.assets.files)} files)")
                    jwt = cf.workers.upload_assets(r.script_name, r.assets)
                    upload = script_upload(r, auth_token, assets_jwt=jwt)
                cf.workers.upload(r.script_name, upload)
                uploaded.append(r.script_name)
            elif live is not None and float(live.get("percentage", 0)) < 100:
                # Left split by an interrupted rollout: the declared version takes it all,
                # as an upload would.
                cf.workers.deploy(r.script_name, {str(live["version_id"]): 100})
            if not cf.workers.subdomain(r.script_name).get("enabled"):
                cf.workers.set_subdomain(r.script_name, True)
    return uploaded
