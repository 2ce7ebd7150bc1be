"""The Workers AI finetunes REST API, as Cloudflare's clients call it.

Routes (under ``/client/v4/accounts/{account_id}/ai``, API token, v4 envelope; the public
reference is https://developers.cloudflare.com/api/resources/ai/subresources/finetunes/,
which has no get-one, update or delete):

- ``POST /finetunes`` ``{model, name, description?, public?}`` -> ``{id, name, model,
  description, public, created_at, modified_at}``. wrangler sends the JSON without a
  content type (undici makes it ``text/plain;charset=UTF-8``): the body is JSON whatever
  its content type.
- ``GET /finetunes`` -> an array of ``{id, name, model, description, created_at,
  modified_at}`` (wrangler asks ``/finetunes?``).
- ``POST /finetunes/{id or name}/finetune-assets``, multipart ``file_name`` +
  ``file`` -> ``success: true``. Checked as Cloudflare documents: the two file names, each
  under 300 MB, ``adapter_config.json`` with ``model_type`` and rank ``r`` <= 32, a valid
  safetensors file; an asset cannot be uploaded twice.
- ``GET /finetunes/public?limit&offset&orderBy`` -> the public finetunes (note the
  camelCase ``orderBy`` the Python SDK sends).

Cloudflare's docs call the collection and the upload route with a trailing slash
(``.../finetunes/``): both spellings are served.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool

from cfai.finetunes import MAX_ADAPTER_BYTES, lora_base, upload_problems
from cfai.local.services.finetunes import _errors as E
from cfai.local.services.finetunes.state import (
    ORDER_COLUMNS,
    AssetExists,
    FinetuneExists,
    FinetuneStore,
    TooManyFinetunes,
)
from cfai.local.services.frontdoor import (
    ApiToken,
    Call,
    Endpoint,
    Handler,
    JsonBody,
    MultipartBody,
    Part,
)

__all__ = ["BASE", "MAX_UPLOAD_BODY", "endpoints"]

BASE = "/client/v4/accounts/{account_id}/ai/finetunes"
# One asset under Cloudflare's 300 MB limit, plus room for the multipart framing.
MAX_UPLOAD_BODY = MAX_ADAPTER_BYTES + 64 * 1024
_NAME_MAX = 256


def _text(body: dict[str, Any], key: str, *, required: bool) -> str:
    value = body.get(key)
    if value is None:
        if required:
            raise E.incomplete(f"{key}: required")
        return ""
    if not isinstance(value, str):
        raise E.incomplete(f"{key}: must be a string")
    return value


def _form(parts: list[Part]) -> tuple[str, bytes]:
    fields = {p.name: p for p in reversed(parts)}  # the first of a repeated field wins
    if "file_name" not in fields:
        raise E.incomplete("file_name: required (adapter_config.json or adapter_model.safetensors)")
    if "file" not in fields:
        raise E.incomplete("file: required")
    try:
        file_name = fields["file_name"].text().strip()
    except ValueError as exc:
        raise E.incomplete(str(exc)) from None
    return file_name, fields["file"].data


def _count(call: Call, key: str, default: int | None) -> int | None:
    raw = call.query.get(key)
    if raw in (None, ""):
        return default
    try:
        value = float(raw)  # the SDK types limit and offset as numbers: 10.0 is fine
    except ValueError:
        raise E.incomplete(f"{key}: must be a number") from None
    if value < 0 or not value.is_integer():
        raise E.incomplete(f"{key}: must be a whole number >= 0")
    return int(value)


def endpoints(store: FinetuneStore) -> list[Endpoint]:
    """Every finetunes route, over `store`."""

    async def create(call: Call) -> Any:
        body = call.body
        model = _text(body, "model", required=True)
        name = _text(body, "name", required=True).strip()
        description = _text(body, "description", required=False)
        public = body.get("public", False)
        if not isinstance(public, bool):
            raise E.incomplete("public: must be a boolean")
        if not name or len(name) > _NAME_MAX or "/" in name:
            raise E.incomplete(f"name: 1-{_NAME_MAX} characters without '/'")
        if lora_base(model) is None:
            raise E.no_lora(model)
        try:
            return store.create(name, model, description=description, public=public).created()
        except FinetuneExists:
            raise E.exists(name) from None
        except TooManyFinetunes:
            raise E.over_limit() from None

    async def listing(call: Call) -> Any:
        return [ft.listed() for ft in store.every()]

    async def public(call: Call) -> Any:
        order_by = call.query.get("orderBy") or "created_at"
        if order_by not in ORDER_COLUMNS:
            raise E.incomplete(f"orderBy: one of {', '.join(ORDER_COLUMNS)}")
        limit, offset = _count(call, "limit", None), _count(call, "offset", 0) or 0
        return [ft.created() for ft in store.public(limit=limit, offset=offset, order_by=order_by)]

    async def upload(call: Call) -> Any:
        ref = str(call.params["finetune"])
        finetune = store.find(ref)
        if finetune is None:
            raise E.not_found(ref)
        file_name, data = _form(call.body)
        problems = await run_in_threadpool(upload_problems, file_name, data)
        if problems:
            raise E.bad_asset(file_name, "; ".join(problems))
        try:
            await run_in_threadpool(store.add_asset, finetune.id, file_name, data)
        except AssetExists:
            raise E.asset_exists(ref, file_name) from None
        return None

    rest = ApiToken()
    create_body = JsonBody(E.incomplete, object_only=True)
    upload_body = MultipartBody(E.incomplete, limit=MAX_UPLOAD_BODY, too_large=E.too_large)
    routes: list[tuple[str, str, Handler, Any]] = [
        ("POST", BASE, create, create_body),
        ("GET", BASE, listing, None),
        ("GET", f"{BASE}/public", public, None),
        ("POST", f"{BASE}/{{finetune}}/finetune-assets", upload, upload_body),
    ]
    out = []
    for method, path, handler, body in routes:
        for spelling in (path, f"{path}/"):
            if body is None:
                out.append(Endpoint(method, spelling, handler, rest))
            else:
                out.append(Endpoint(method, spelling, handler, rest, body=body))
    return out
