"""The physical name of a declared finetune: ``<physical name>-<8 hex digits>``.

Cloudflare cannot change a finetune once made: its assets "can't be edited after upload"
and the REST API has no update or delete
(https://developers.cloudflare.com/api/resources/ai/subresources/finetunes/: create, list,
upload an asset, list public ones). So a new adapter, base model or description needs a new
finetune, and a new finetune needs a new name. The suffix is a digest of everything that
cannot change, so the name changes exactly when a new finetune is needed, an existing
finetune of that name is the declared one (adoption is safe), and the Worker that names it
is re-rendered with it (the change shows in the reviewed ``workers/`` diff).
"""

from __future__ import annotations

import hashlib
import json

from cfai.finetunes.adapter import AdapterDigest

__all__ = ["SUFFIX_HEX", "finetune_name"]

SUFFIX_HEX = 8


def finetune_name(base_name: str, *, model: str, description: str, digest: AdapterDigest) -> str:
    """`base_name` (the declaration's physical name of the finetune key) with the digest
    suffix.

    >>> d = AdapterDigest("0" * 64, "1" * 64)
    >>> finetune_name("acme-tone", model="@cf/google/gemma-3-12b-it", description="", digest=d)
    'acme-tone-a73a67bf'
    """
    fields = [model, description, digest.config_sha256, digest.model_sha256]
    suffix = hashlib.sha256(json.dumps(fields).encode()).hexdigest()[:SUFFIX_HEX]
    return f"{base_name}-{suffix}"
