"""Workers AI finetune calls of `CloudflareClient` (``client.finetunes``).

Cloudflare's finetunes API has four calls
(https://developers.cloudflare.com/api/resources/ai/subresources/finetunes/): create, list,
upload an asset (multipart ``file_name`` + ``file``, once per file) and list the public
ones; no get-one, no update, no delete. `ensure` is what both `cfai local up` and the
`Finetune` resource do with them: adopt the finetune of that name when it is the declared
one, else create it, then upload both assets.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from cfai.errors import CloudflareApiError
from cfai.provision._api import Requester

__all__ = ["FinetunesApi", "multipart"]


def _resource(name: str) -> str:
    return f"finetune '{name}'"


def multipart(
    fields: Mapping[str, str], file_field: str, filename: str, data: bytes
) -> tuple[bytes, str]:
    """A ``multipart/form-data`` body (RFC 7578) and its content type: the text `fields`,
    then the file part."""
    boundary = f"cfai-{uuid.uuid4().hex}"
    out = bytearray()
    for name, value in fields.items():
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        out += value.encode() + b"\r\n"
    out += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; '
        f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()
    out += data + f"\r\n--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


class FinetunesApi:
    """The finetunes of one account."""

    def __init__(self, client: Requester) -> None:
        self._client = client

    def _path(self, *tail: str) -> str:
        return self._client.account_path("ai", "finetunes", *tail)

    def create(self, name: str, *, model: str, description: str = "") -> dict[str, Any]:
        """``{id, name, model, description, public, created_at, modified_at}``."""
        body = {"model": model, "name": name, "description": description}
        result: dict[str, Any] = self._client.request(
            "POST", self._path(), action="create", resource=_resource(name), json=body
        )
        return result

    def list_finetunes(self) -> list[dict[str, Any]]:
        """Every finetune of the account: ``[{id, name, model, description, ...}]``."""
        result = self._client.request("GET", self._path(), action="list", resource="finetunes")
        # The docs' example nests the array once more ([[...]]); accept both.
        if isinstance(result, list) and len(result) == 1 and isinstance(result[0], list):
            result = result[0]
        return [r for r in result or [] if isinstance(r, dict)]

    def find(self, name_or_id: str) -> dict[str, Any] | None:
        """The finetune with that name or id, or None (there is no get-one call)."""
        found = [f for f in self.list_finetunes() if name_or_id in (f.get("name"), f.get("id"))]
        return found[0] if found else None

    def upload(self, finetune: str, file_name: str, data: bytes) -> None:
        """Upload one asset (`file_name` is ``adapter_config.json`` or
        ``adapter_model.safetensors``) to the finetune with that id or name."""
        body, content_type = multipart({"file_name": file_name}, "file", file_name, data)
        self._client.request(
            "POST",
            self._path(finetune, "finetune-assets"),
            action=f"upload {file_name} to",
            resource=_resource(finetune),
            content=body,
            headers={"content-type": content_type},
        )

    def ensure(
        self, name: str, *, model: str, description: str, files: Mapping[str, bytes]
    ) -> dict[str, Any]:
        """The finetune `name` with `files` uploaded: an existing one of that name is adopted
        when its model and description are the declared ones (its name's digest then says
        its assets are too), else created. An asset already there is taken as uploaded
        (assets are immutable: a 409, or a retried upload that had landed)."""
        existing = self.find(name)
        if existing is None:
            try:
                existing = self.create(name, model=model, description=description)
            except CloudflareApiError as err:
                existing = self.find(name) if err.status == 409 else None
                if existing is None:
                    raise
        have = (existing.get("model"), existing.get("description") or "")
        if have != (model, description):
            raise CloudflareApiError(
                409,
                None,
                f"a finetune of this name exists for model {have[0]!r} with description "
                f"{have[1]!r}; declared {model!r} and {description!r}. Finetunes cannot "
                "change: rename the key, or remove the existing finetune",
                "create",
                _resource(name),
            )
        for file_name, data in files.items():
            try:
                self.upload(str(existing["id"]), file_name, data)
            except CloudflareApiError as err:
                if err.status != 409:
                    raise
        # As listed now (an upload moves modified_at), so a refresh sees no drift.
        return self.find(str(existing["id"])) or existing
