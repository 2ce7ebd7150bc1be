"""The assets upload session of `CloudflareClient` (``client.workers.upload_assets``), as
https://developers.cloudflare.com/workers/static-assets/direct-upload/ describes it and
wrangler (``packages/wrangler/src/assets.ts``) makes it:

1. ``POST /workers/scripts/{name}/assets-upload-session`` with the manifest (served path ->
   ``{hash, size}``): the answer lists the hashes still missing, in buckets, and a session
   token (when nothing is missing, that token is already the completion token);
2. one ``POST /workers/assets/upload?base64=true`` per bucket, authenticated with the
   session token, each file a multipart part named by its hash, base64, with its media
   type: the answer to the last one carries the completion token;
3. the script upload names the completion token in ``metadata.assets.jwt``.

Example::

    jwt = cf.workers.upload_assets("acme-chat", rendered.assets)
    cf.workers.upload("acme-chat", script_upload(rendered, token, assets_jwt=jwt))
"""

from __future__ import annotations

import base64
import secrets

from cfai.errors import CloudflareApiError
from cfai.kinds.assets import AssetSet
from cfai.provision._api import Requester

__all__ = ["upload_assets"]


def _form(assets: AssetSet, bucket: list[str]) -> tuple[bytes, str]:
    mark = f"cfai-{secrets.token_hex(16)}"
    files = assets.by_hash()
    out = bytearray()
    for digest in bucket:
        f = files[digest]
        head = (
            f'--{mark}\r\nContent-Disposition: form-data; name="{digest}"; '
            f'filename="{digest}"\r\nContent-Type: {f.content_type}\r\n\r\n'
        )
        out += head.encode() + base64.b64encode(f.read()) + b"\r\n"
    out += f"--{mark}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={mark}"


def upload_assets(client: Requester, name: str, assets: AssetSet) -> str:
    """Upload what Cloudflare lacks of `assets` for Worker `name`; the completion token."""
    resource = f"worker '{name}' assets"
    session = client.request(
        "POST",
        client.account_path("workers", "scripts", name, "assets-upload-session"),
        action="start the upload of",
        resource=resource,
        json={"manifest": assets.manifest()},
    )
    token = str((session or {}).get("jwt") or "")
    buckets = [list(b) for b in (session or {}).get("buckets") or [] if b]
    if not buckets:
        if not token:
            raise CloudflareApiError(200, None, "no upload token in the answer", "upload", resource)
        return token
    completion = ""
    for bucket in buckets:
        body, kind = _form(assets, bucket)
        result = client.request(
            "POST",
            client.account_path("workers", "assets", "upload"),
            action="upload",
            resource=resource,
            content=body,
            headers={"content-type": kind, "authorization": f"Bearer {token}"},
            params={"base64": "true"},
        )
        completion = str((result or {}).get("jwt") or completion)
    if not completion:
        raise CloudflareApiError(200, None, "the upload did not complete", "upload", resource)
    return completion
