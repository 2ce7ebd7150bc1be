"""Provision the local platform's gateways, indexes and finetunes through the emulator's
REST API, with the same client (`cfai.provision.rest`) and settings mapping
(`cfai.provision.settings`) the cloud path uses, so `cfai local up` exercises the real
provisioning code. Finetunes go through `FinetunesApi.ensure`, as the `Finetune` resource's
create does: adopted when present (they cannot change), else created, both assets uploaded.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cfai.config import PlatformConfig
from cfai.finetunes import FILE_NAMES
from cfai.provision.rest import CloudflareApiError, CloudflareClient
from cfai.provision.settings import gateway_fields, index_fields

__all__ = ["provision"]


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
