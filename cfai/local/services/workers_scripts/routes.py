"""Routes of the emulated Workers scripts API, under ``/client/v4/accounts/{account_id}/
workers`` with the API token, answers in the v4 envelope unless noted:

==============================================  =============================================
``GET /scripts``                                every script
``PUT /scripts/{name}``                         upload (multipart) and deploy at 100%
``GET /scripts/{name}``                         the main module's text (not JSON)
``DELETE /scripts/{name}``                      the script, its versions and deployments
``PUT /scripts/{name}/content``                 new modules, same bindings, deployed at 100%
``GET /scripts/{name}/content/v2``              the serving version's modules (multipart)
``GET|PATCH /scripts/{name}/settings``          bindings and settings (PATCH: multipart)
``GET|PATCH /scripts/{name}/script-settings``   the settings that are not versioned
``GET|POST|DELETE /scripts/{name}/subdomain``   workers.dev on or off
``GET|POST /scripts/{name}/versions``           versions, newest first / upload one
``GET /scripts/{name}/versions/{id}``           one version
``GET|POST /scripts/{name}/deployments``        deployments, newest first / deploy
``GET|DELETE /scripts/{name}/deployments/{id}`` one deployment
``GET /services/{name}``                        the script as its production environment
``GET|PUT /subdomain``                          the account's workers.dev subdomain
``GET|POST /workers/{id}/versions``             versions as JSON with base64 modules
``GET /workers/{id}/versions/{id}``             one (``?include=modules``: with content)
``POST /scripts/{name}/assets-upload-session``  start an assets upload (`_assets`)
``POST /assets/upload``                         asset files (session token, not API token)
==============================================  =============================================

Paging follows the Python SDK (``pagination.py``): it asks for ``page=N+1`` until a page
comes back empty, so every list honours ``page`` and ends.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from cfai.local.services.frontdoor import (
    ApiError,
    ApiToken,
    Call,
    Endpoint,
    JsonBody,
    MultipartBody,
    Open,
    Part,
    build_multipart,
    envelope,
    loads,
)
from cfai.local.services.workers_scripts import _errors as E
from cfai.local.services.workers_scripts import _wire as W
from cfai.local.services.workers_scripts._assets import (
    BUCKET,
    check_manifest,
    expired_token,
    store_upload,
)
from cfai.local.services.workers_scripts._ops import Scripts
from cfai.local.services.workers_scripts._upload import SCRIPT_SETTINGS, read_form, read_json

__all__ = ["endpoints"]

UPLOAD = MultipartBody(E.invalid, limit=E.MAX_UPLOAD_BODY)
SETTINGS = MultipartBody(E.invalid)
# One bucket of asset files, base64 (wrangler sends up to 50 files of up to 25 MiB).
ASSETS = MultipartBody(E.invalid, limit=E.MAX_UPLOAD_BODY)
JSON_BODY = JsonBody(lambda why: E.invalid(why), object_only=True)
JSON_UPLOAD = JsonBody(lambda why: E.invalid(why), limit=E.MAX_UPLOAD_BODY, object_only=True)
_VERSIONED = ("bindings", "compatibility_date", "compatibility_flags", "usage_model", "limits")


def source(call: Call) -> str:
    """Which client made the change, as Cloudflare's ``source`` fields name them."""
    agent = call.headers.get("user-agent", "").lower()
    if agent.startswith("wrangler"):
        return "wrangler"
    if "terraform" in agent or "pulumi" in agent:
        return "terraform"
    return "api"


def _page(call: Call, default: int) -> tuple[int, int]:
    def number(key: str, fallback: int, top: int) -> int:
        raw = call.query.get(key) or str(fallback)
        if not raw.isdigit() or not 1 <= int(raw) <= top:
            raise E.invalid(f"{key}: expected an integer from 1 to {top}")
        return int(raw)

    return number("page", 1, 1_000_000), number("per_page", default, E.MAX_PER_PAGE)


def _info(page: int, per_page: int, count: int, total: int) -> dict[str, int]:
    return {
        "page": page,
        "per_page": per_page,
        "count": count,
        "total_count": total,
        "total_pages": max(1, -(-total // per_page)),
    }


def endpoints(svc: Scripts) -> list[Endpoint]:
    def name(call: Call) -> str:
        return str(call.params.get("script_name") or call.params.get("worker_id"))

    async def list_scripts(call: Call) -> Any:
        return [W.script_object(s, svc.serving(s.name)) for s in svc.store.scripts()]

    async def upload(call: Call) -> Any:
        metadata, modules = read_form(call.body)
        version, ms = await svc.upload(
            name(call),
            metadata,
            modules,
            deploy=True,
            source=source(call),
            strict_inherit=call.query.get("bindings_inherit") == "strict",
        )
        return W.script_object(svc.script(name(call)), version, startup_ms=ms)

    async def get_script(call: Call) -> Any:
        version = svc.serving(svc.script(name(call)).name)
        if version is None:
            raise E.script_not_found()
        entry = version.metadata.get("main_module") or version.metadata.get("body_part")
        text = next((m.content for m in svc.loaded_modules(version) if m.name == entry), b"")
        return Response(text, media_type="application/javascript")

    async def delete(call: Call) -> Any:
        await svc.delete(name(call))
        return {"id": name(call)}

    async def put_content(call: Call) -> Any:
        meta, modules = read_form(call.body)
        current = svc.serving(svc.script(name(call)).name)
        base = dict(current.metadata) if current else {}
        base.pop("main_module", None), base.pop("body_part", None)
        entry = {k: meta[k] for k in ("main_module", "body_part") if meta.get(k)}
        version, ms = await svc.upload(
            name(call),
            {**base, **entry},
            modules,
            deploy=True,
            source=source(call),
            must_exist=True,
        )
        return W.script_object(svc.script(name(call)), version, startup_ms=ms)

    async def get_content(call: Call) -> Any:
        version = svc.serving(svc.script(name(call)).name)
        if version is None:
            raise E.script_not_found()
        modules = svc.loaded_modules(version)
        entry = str(version.metadata.get("main_module") or version.metadata.get("body_part"))
        if version.metadata.get("body_part"):
            text = next((m.content for m in modules if m.name == entry), b"")
            return Response(text, media_type="application/javascript")
        ordered = sorted(modules, key=lambda m: m.name != entry)  # the entry point first
        body, kind = build_multipart(
            [Part(m.name, m.content, m.name, m.content_type) for m in ordered]
        )
        return Response(body, headers={"content-type": kind, "cf-entrypoint": entry})

    async def get_settings(call: Call) -> Any:
        script = svc.script(name(call))
        return W.settings_object(script, svc.serving(script.name))

    async def patch_settings(call: Call) -> Any:
        script = svc.script(name(call))
        found = [p for p in call.body if p.name == "settings"]
        try:
            patch = loads(found[0].data) if found else None
        except ValueError as exc:
            raise E.invalid(f"settings: {exc}") from None
        if not isinstance(patch, dict):
            raise E.invalid("the body has no `settings` part holding a JSON object")
        current = svc.serving(script.name)
        if current is not None and any(k in patch for k in _VERSIONED):
            metadata = {**current.metadata, **{k: patch[k] for k in _VERSIONED if k in patch}}
            await svc.upload(
                script.name,
                metadata,
                svc.store.modules(current.id),
                deploy=True,
                source=source(call),
                must_exist=True,
            )
        _script_settings(script.name, patch)
        return W.settings_object(svc.script(script.name), svc.serving(script.name))

    def _script_settings(script: str, patch: dict[str, Any]) -> None:
        changes = {k: patch[k] for k in SCRIPT_SETTINGS if k in patch}
        if changes:
            svc.store.patch_settings(script, changes)

    async def get_script_settings(call: Call) -> Any:
        return W.script_settings(svc.script(name(call)))

    async def patch_script_settings(call: Call) -> Any:
        script = svc.script(name(call))
        _script_settings(script.name, call.body)
        return W.script_settings(svc.script(script.name))

    async def get_subdomain(call: Call) -> Any:
        return W.subdomain_object(svc.script(name(call)))

    async def post_subdomain(call: Call) -> Any:
        enabled, previews = call.body.get("enabled"), call.body.get("previews_enabled")
        if not isinstance(enabled, bool) or not isinstance(previews, bool | None):
            raise E.invalid("enabled: expected a boolean (previews_enabled: optional boolean)")
        return W.subdomain_object(await svc.set_subdomain(name(call), enabled, previews))

    async def delete_subdomain(call: Call) -> Any:
        return W.subdomain_object(await svc.set_subdomain(name(call), False, False))

    async def list_versions(call: Call) -> Any:
        script = svc.script(name(call))
        page, per_page = _page(call, 10)
        total = svc.store.count_versions(script.name)
        if call.query.get("deployable") == "true":
            total = min(total, E.DEPLOYABLE_VERSIONS)
        start = (page - 1) * per_page
        found = svc.store.versions(
            script.name, offset=start, limit=max(0, min(per_page, total - start))
        )
        items = [W.version_summary(v) for v in found]
        result: dict[str, Any] = {"items": items}
        if page == 1 and items:
            result["latest"] = W.version_object(found[0])
        return envelope(result, result_info=_info(page, per_page, len(items), total))

    async def post_version(call: Call) -> Any:
        metadata, modules = read_form(call.body)
        version, _ = await svc.upload(
            name(call),
            metadata,
            modules,
            deploy=False,
            source=source(call),
            strict_inherit=call.query.get("bindings_inherit") == "strict",
            must_exist=True,
        )
        return W.version_object(version, with_startup=True)

    async def get_version(call: Call) -> Any:
        script = svc.script(name(call))
        vid = str(call.params["version_id"])
        version = svc.store.version(script.name, vid)
        if version is None:
            raise E.no_version(script.name, vid)
        return W.version_object(version)

    async def list_deployments(call: Call) -> Any:
        script = svc.script(name(call))
        return {"deployments": [W.deployment(d) for d in svc.store.deployments(script.name)]}

    async def post_deployment(call: Call) -> Any:
        body = call.body
        if body.get("strategy") != "percentage":
            raise E.invalid('strategy: expected "percentage"')
        raw = body.get("versions")
        if not isinstance(raw, list) or not all(
            isinstance(v, dict)
            and isinstance(v.get("version_id"), str)
            and isinstance(v.get("percentage"), int | float)
            and not isinstance(v.get("percentage"), bool)
            for v in raw
        ):
            raise E.invalid("versions: expected [{version_id, percentage}]")
        annotations = body.get("annotations") or {}
        if not isinstance(annotations, dict):
            raise E.invalid("annotations: expected an object")
        d = await svc.deploy(
            name(call),
            [(v["version_id"], float(v["percentage"])) for v in raw],
            source=source(call),
            annotations=annotations,
        )
        return W.deployment(d)

    async def get_deployment(call: Call) -> Any:
        script = svc.script(name(call))
        did = str(call.params["deployment_id"])
        found = svc.store.deployment(script.name, did)
        if found is None:
            raise E.no_deployment(script.name, did)
        return W.deployment(found)

    async def delete_deployment(call: Call) -> Any:
        await svc.delete_deployment(name(call), str(call.params["deployment_id"]))
        return None

    async def get_service(call: Call) -> Any:
        script = svc.script(name(call))
        return W.service_object(script, svc.serving(script.name))

    async def get_account_subdomain(call: Call) -> Any:
        stored = svc.store.account_value("subdomain")
        return {"subdomain": stored or svc.subdomain}

    async def put_account_subdomain(call: Call) -> Any:
        value = call.body.get("subdomain")
        if not isinstance(value, str) or not value:
            raise E.invalid("subdomain: expected a string")
        svc.store.set_account_value("subdomain", value)
        return {"subdomain": value}

    async def list_worker_versions(call: Call) -> Any:
        script = svc.script(name(call))
        page, per_page = _page(call, 20)
        found = svc.store.versions(script.name, offset=(page - 1) * per_page, limit=per_page)
        total = svc.store.count_versions(script.name)
        return envelope(
            [W.worker_version(v, None) for v in found],
            result_info=_info(page, per_page, len(found), total),
        )

    async def post_worker_version(call: Call) -> Any:
        metadata, modules = read_json(call.body)
        deploy = call.query.get("deploy") == "true"
        version, _ = await svc.upload(
            name(call), metadata, modules, deploy=deploy, source=source(call), must_exist=True
        )
        return W.worker_version(version, None)

    async def get_worker_version(call: Call) -> Any:
        script = svc.script(name(call))
        vid = str(call.params["version_id"])
        version = svc.store.version(script.name, vid)
        if version is None:
            raise E.no_version(script.name, vid)
        include = call.query.get("include") == "modules"
        return W.worker_version(version, svc.loaded_modules(version) if include else None)

    async def assets_session(call: Call) -> Any:
        manifest = check_manifest(call.body)
        script = name(call)
        missing = svc.assets.missing([e["hash"] for e in manifest.values()])
        if not missing:
            return {"jwt": svc.assets.session("completion", script, manifest), "buckets": []}
        buckets = [missing[i : i + BUCKET] for i in range(0, len(missing), BUCKET)]
        return {"jwt": svc.assets.session("upload", script, manifest), "buckets": buckets}

    async def assets_upload(call: Call) -> Any:
        # Authenticated by the session's token, not the API token (the direct-upload docs).
        if call.params.get("account_id") != svc.ctx.account_id:
            raise ApiError(403, 9109, "Unauthorized to access requested resource")
        header = call.headers.get("authorization", "")
        if not header.lower().startswith("bearer "):
            raise expired_token()
        b64 = call.query.get("base64") == "true"
        done = store_upload(svc.assets, header[7:].strip(), call.body, b64)
        if done is None:
            return envelope({}, status=202)
        return envelope({"jwt": done}, status=201)

    base = "/client/v4/accounts/{account_id}/workers"
    one = base + "/scripts/{script_name}"
    worker = base + "/workers/{worker_id}"
    auth = ApiToken()
    return [
        Endpoint("GET", base + "/scripts", list_scripts, auth),
        Endpoint("PUT", one, upload, auth, body=UPLOAD),
        Endpoint("GET", one, get_script, auth),
        Endpoint("DELETE", one, delete, auth),
        Endpoint("PUT", one + "/content", put_content, auth, body=UPLOAD),
        Endpoint("GET", one + "/content/v2", get_content, auth),
        Endpoint("GET", one + "/settings", get_settings, auth),
        Endpoint("PATCH", one + "/settings", patch_settings, auth, body=SETTINGS),
        Endpoint("GET", one + "/script-settings", get_script_settings, auth),
        Endpoint("PATCH", one + "/script-settings", patch_script_settings, auth, body=JSON_BODY),
        Endpoint("GET", one + "/subdomain", get_subdomain, auth),
        Endpoint("POST", one + "/subdomain", post_subdomain, auth, body=JSON_BODY),
        Endpoint("DELETE", one + "/subdomain", delete_subdomain, auth),
        Endpoint("GET", one + "/versions", list_versions, auth),
        Endpoint("POST", one + "/versions", post_version, auth, body=UPLOAD),
        Endpoint("GET", one + "/versions/{version_id}", get_version, auth),
        Endpoint("GET", one + "/deployments", list_deployments, auth),
        Endpoint("POST", one + "/deployments", post_deployment, auth, body=JSON_BODY),
        Endpoint("GET", one + "/deployments/{deployment_id}", get_deployment, auth),
        Endpoint("DELETE", one + "/deployments/{deployment_id}", delete_deployment, auth),
        Endpoint("GET", base + "/services/{script_name}", get_service, auth),
        Endpoint("GET", base + "/subdomain", get_account_subdomain, auth),
        Endpoint("PUT", base + "/subdomain", put_account_subdomain, auth, body=JSON_BODY),
        Endpoint("GET", worker + "/versions", list_worker_versions, auth),
        Endpoint("POST", worker + "/versions", post_worker_version, auth, body=JSON_UPLOAD),
        Endpoint("GET", worker + "/versions/{version_id}", get_worker_version, auth),
        Endpoint("POST", one + "/assets-upload-session", assets_session, auth, body=JSON_BODY),
        Endpoint("POST", base + "/assets/upload", assets_upload, Open(), body=ASSETS),
    ]
