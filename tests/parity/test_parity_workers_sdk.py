"""Cloudflare's official Python SDK (``cloudflare`` 5.9.0, the pinned dev dependency) drives
the local platform's Workers scripts API unmodified: ``base_url`` and ``api_token`` from the
outputs map. An uploaded script runs, versions and percentage deployments split its
traffic, settings never show a secret, and deleting it answers 10007 afterwards.

Two SDK quirks, not the platform's: ``versions.create`` and ``versions.get`` raise a
client-side ``PydanticSchemaGenerationError`` whatever the answer (their ``ResourcesBindings``
model is a bare class), so those calls use ``.with_raw_response`` and read the JSON; and
``deployments.list`` is typed as a paginated ``items`` list while the API answers
``{"deployments": [...]}`` (what wrangler reads), so the page's ``result.deployments`` holds
them.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import cloudflare
import httpx
import pytest

from cfai.local import LocalPlatform

REPO = Path(__file__).resolve().parents[2]
SCRIPT = "parity-sdk"
ACCOUNT = "/accounts/{account_id}/workers"
ONE = ACCOUNT + "/scripts/{script_name}"
SECRET = "sdk-secret-value-123"


def _js(label: str) -> bytes:
    return (
        "export default { async fetch(request, env) {\n"
        f'  return Response.json({{ label: "{label}", greeting: env.GREETING,'
        f' secret: env.TOKEN === "{SECRET}" }});\n'
        "} };\n"
    ).encode()


def _metadata(**extra: Any) -> dict[str, Any]:
    return {
        "main_module": "index.js",
        "compatibility_date": "2025-01-01",
        "bindings": [
            {"type": "plain_text", "name": "GREETING", "text": "hello from the SDK"},
            {"type": "secret_text", "name": "TOKEN", "text": SECRET},
            {"type": "ai", "name": "AI"},
        ],
        **extra,
    }


def _url(local_platform: dict[str, Any]) -> str:
    return LocalPlatform(REPO, local_platform["stack"]).script_urls()[SCRIPT]


@pytest.mark.parity("PUT " + ONE, client="python-sdk")
@pytest.mark.parity("POST " + ONE + "/subdomain", client="python-sdk")
@pytest.mark.parity("GET " + ONE + "/subdomain", client="python-sdk")
@pytest.mark.parity("GET " + ONE, client="python-sdk")
@pytest.mark.parity("GET " + ACCOUNT + "/scripts", client="python-sdk")
@pytest.mark.parity("GET " + ONE + "/settings", client="python-sdk")
@pytest.mark.parity("PATCH " + ONE + "/script-settings", client="python-sdk")
@pytest.mark.parity("GET " + ONE + "/content/v2", client="python-sdk")
@pytest.mark.parity("GET " + ACCOUNT + "/subdomain", client="python-sdk")
def test_sdk_uploads_a_script_that_runs_and_reads_it_back_without_its_secret(
    cf: cloudflare.Cloudflare, account: str, local_platform: dict[str, Any]
) -> None:
    script = cf.workers.scripts.update(
        SCRIPT,
        account_id=account,
        metadata=_metadata(),  # type: ignore[arg-type]
        files=[("index.js", _js("one"), "application/javascript+module")],
    )
    assert script.id == SCRIPT and script.startup_time_ms > 0
    assert cf.workers.scripts.subdomain.get(SCRIPT, account_id=account).enabled is False
    on = cf.workers.scripts.subdomain.create(SCRIPT, account_id=account, enabled=True)
    assert on.enabled is True
    answer = httpx.get(_url(local_platform), timeout=30).json()
    assert answer == {"label": "one", "greeting": "hello from the SDK", "secret": True}

    assert 'label: "one"' in cf.workers.scripts.get(SCRIPT, account_id=account)
    assert SCRIPT in [s.id for s in cf.workers.scripts.list(account_id=account)]
    settings = cf.workers.scripts.script_and_version_settings.get(SCRIPT, account_id=account)
    shown = [b.to_dict() for b in settings.bindings or []]
    assert {"type": "secret_text", "name": "TOKEN"} in shown
    assert SECRET not in json.dumps(shown)
    tagged = cf.workers.scripts.settings.edit(SCRIPT, account_id=account, tags=["parity"])
    assert tagged.tags == ["parity"]
    content = cf.workers.scripts.content.get(SCRIPT, account_id=account)
    assert content.headers["cf-entrypoint"] == "index.js"
    assert b'label: "one"' in content.read()
    subdomain = cf.workers.subdomains.get(account_id=account).subdomain
    assert subdomain


@pytest.mark.parity("POST " + ONE + "/versions", client="python-sdk")
@pytest.mark.parity("GET " + ONE + "/versions", client="python-sdk")
@pytest.mark.parity("GET " + ONE + "/versions/{version_id}", client="python-sdk")
@pytest.mark.parity("POST " + ONE + "/deployments", client="python-sdk")
@pytest.mark.parity("GET " + ONE + "/deployments", client="python-sdk")
@pytest.mark.parity("GET " + ONE + "/deployments/{deployment_id}", client="python-sdk")
@pytest.mark.parity("POST " + ACCOUNT + "/workers/{worker_id}/versions", client="python-sdk")
@pytest.mark.parity(
    "GET " + ACCOUNT + "/workers/{worker_id}/versions/{version_id}", client="python-sdk"
)
def test_sdk_versions_and_a_percentage_deployment_split_the_traffic(
    cf: cloudflare.Cloudflare, account: str, local_platform: dict[str, Any]
) -> None:
    first = [v.id for v in cf.workers.scripts.versions.list(SCRIPT, account_id=account)]
    assert len(first) == 1  # the upload of the test above; the pages end
    raw = cf.workers.scripts.versions.with_raw_response.create(
        SCRIPT,
        account_id=account,
        metadata=_metadata(annotations={"workers/message": "two"}),  # type: ignore[arg-type]
        files=[("index.js", _js("two"), "application/javascript+module")],
    )
    two = json.loads(raw.http_response.text)["result"]
    assert two["number"] == 2 and two["metadata"]["hasPreview"] is False
    read = cf.workers.scripts.versions.with_raw_response.get(
        two["id"], account_id=account, script_name=SCRIPT
    )
    assert json.loads(read.http_response.text)["result"]["annotations"] == {
        "workers/message": "two"
    }
    # The JSON modules API (pulumi-cloudflare's WorkerVersion), read back with its modules.
    three = cf.workers.beta.workers.versions.create(
        SCRIPT,
        account_id=account,
        main_module="index.js",
        compatibility_date="2025-01-01",
        bindings=[{"type": "plain_text", "name": "GREETING", "text": "hi"}],  # type: ignore[list-item]
        modules=[
            {
                "name": "index.js",
                "content_type": "application/javascript+module",
                "content_base64": base64.b64encode(_js("three")).decode(),
            }
        ],
    )
    back = cf.workers.beta.workers.versions.get(
        three.id, account_id=account, worker_id=SCRIPT, include="modules"
    )
    assert base64.b64decode(back.modules[0].content_base64) == _js("three")  # type: ignore[index]
    listed = [v.id for v in cf.workers.scripts.versions.list(SCRIPT, account_id=account)]
    assert listed == [three.id, two["id"], first[0]]  # newest first, every page read

    deployment = cf.workers.scripts.deployments.create(
        SCRIPT,
        account_id=account,
        strategy="percentage",
        versions=[
            {"version_id": first[0], "percentage": 40},
            {"version_id": two["id"], "percentage": 60},
        ],
    )
    labels = [httpx.get(_url(local_platform), timeout=30).json()["label"] for _ in range(100)]
    assert 30 <= labels.count("one") <= 50 and labels.count("two") == 100 - labels.count("one")
    page = cf.workers.scripts.deployments.list(SCRIPT, account_id=account)
    newest = page.result.deployments[0]  # type: ignore[union-attr]
    assert newest["id"] == deployment.id
    got = cf.workers.scripts.deployments.get(deployment.id, account_id=account, script_name=SCRIPT)
    assert {v.version_id: v.percentage for v in got.versions} == {first[0]: 40, two["id"]: 60}


@pytest.mark.parity("GET " + ACCOUNT + "/workers/{worker_id}/versions", client="python-sdk")
def test_sdk_lists_a_workers_versions_through_the_beta_api(
    cf: cloudflare.Cloudflare, account: str
) -> None:
    scripts_api = [v.id for v in cf.workers.scripts.versions.list(SCRIPT, account_id=account)]
    beta = [v.id for v in cf.workers.beta.workers.versions.list(SCRIPT, account_id=account)]
    assert beta == scripts_api and len(beta) == 3  # the same versions, newest first


@pytest.mark.parity("GET " + ONE + "/script-settings", client="python-sdk")
def test_sdk_reads_the_settings_that_are_not_versioned(
    cf: cloudflare.Cloudflare, account: str
) -> None:
    settings = cf.workers.scripts.settings.get(SCRIPT, account_id=account)
    assert settings.tags == ["parity"]  # tagged by the first test; no binding in them
    assert "bindings" not in settings.to_dict()


@pytest.mark.parity("PATCH " + ONE + "/settings", client="python-sdk")
def test_sdk_patches_a_versioned_setting_as_a_new_version_at_100_percent(
    cf: cloudflare.Cloudflare, account: str, local_platform: dict[str, Any]
) -> None:
    edited = cf.workers.scripts.script_and_version_settings.edit(
        SCRIPT, account_id=account, settings={"limits": {"cpu_ms": 50}}
    )
    assert edited.limits is not None and edited.limits.cpu_ms == 50
    assert {"type": "secret_text", "name": "TOKEN"} in [b.to_dict() for b in edited.bindings or []]
    page = cf.workers.scripts.deployments.list(SCRIPT, account_id=account)
    newest = page.result.deployments[0]  # type: ignore[union-attr]
    assert [v["percentage"] for v in newest["versions"]] == [100]
    answer = httpx.get(_url(local_platform), timeout=30).json()
    assert answer["secret"] is True and answer["label"] == "two"  # the serving version's code


@pytest.mark.parity("PUT " + ONE + "/content", client="python-sdk")
def test_sdk_replaces_the_code_and_keeps_the_bindings(
    cf: cloudflare.Cloudflare, account: str, local_platform: dict[str, Any]
) -> None:
    cf.workers.scripts.content.update(
        SCRIPT,
        account_id=account,
        metadata={"main_module": "index.js"},
        files=[("index.js", _js("four"), "application/javascript+module")],
    )
    answer = httpx.get(_url(local_platform), timeout=30).json()
    assert answer == {"label": "four", "greeting": "hello from the SDK", "secret": True}
    assert 'label: "four"' in cf.workers.scripts.get(SCRIPT, account_id=account)


@pytest.mark.parity("DELETE " + ONE + "/deployments/{deployment_id}", client="python-sdk")
def test_sdk_deletes_an_old_deployment_but_not_the_latest(
    cf: cloudflare.Cloudflare, account: str
) -> None:
    def listed() -> list[str]:
        page = cf.workers.scripts.deployments.list(SCRIPT, account_id=account)
        return [d["id"] for d in page.result.deployments]  # type: ignore[union-attr]

    before = listed()
    assert len(before) >= 2
    cf.workers.scripts.deployments.delete(before[-1], account_id=account, script_name=SCRIPT)
    assert listed() == before[:-1]
    with pytest.raises(cloudflare.BadRequestError) as refused:
        cf.workers.scripts.deployments.delete(before[0], account_id=account, script_name=SCRIPT)
    assert refused.value.body["errors"][0]["code"] == 10021  # type: ignore[index]
    assert listed() == before[:-1]


@pytest.mark.parity("DELETE " + ONE + "/subdomain", client="python-sdk")
def test_sdk_turns_workers_dev_off(
    cf: cloudflare.Cloudflare, account: str, local_platform: dict[str, Any]
) -> None:
    url = _url(local_platform)
    cf.workers.scripts.subdomain.delete(SCRIPT, account_id=account)
    assert cf.workers.scripts.subdomain.get(SCRIPT, account_id=account).enabled is False
    assert SCRIPT not in LocalPlatform(REPO, local_platform["stack"]).script_urls()
    with pytest.raises(httpx.TransportError):
        httpx.get(url, timeout=5)  # the router closed its port


@pytest.mark.parity("PUT " + ACCOUNT + "/subdomain", client="python-sdk")
def test_sdk_renames_the_accounts_workers_dev_subdomain(
    cf: cloudflare.Cloudflare, account: str
) -> None:
    before = cf.workers.subdomains.get(account_id=account).subdomain
    try:
        renamed = cf.workers.subdomains.update(account_id=account, subdomain="parity-renamed")
        assert renamed.subdomain == "parity-renamed"
        assert cf.workers.subdomains.get(account_id=account).subdomain == "parity-renamed"
    finally:
        cf.workers.subdomains.update(account_id=account, subdomain=before)


@pytest.mark.parity("PUT " + ONE, client="python-sdk")
@pytest.mark.parity("DELETE " + ONE, client="python-sdk")
def test_sdk_sees_cloudflares_errors_for_a_binding_that_cannot_run_and_a_deleted_script(
    cf: cloudflare.Cloudflare, account: str, local_platform: dict[str, Any]
) -> None:
    kv = _metadata()
    kv["bindings"] = [*kv["bindings"], {"type": "kv_namespace", "name": "KV", "namespace_id": "x"}]
    with pytest.raises(cloudflare.BadRequestError) as refused:
        cf.workers.scripts.update(
            SCRIPT,
            account_id=account,
            metadata=kv,  # type: ignore[arg-type]
            files=[("index.js", _js("kv"), "application/javascript+module")],
        )
    (error,) = refused.value.body["errors"]  # type: ignore[index]
    assert error["code"] == 10021 and "binding KV of type kv_namespace" in error["message"]

    cf.workers.scripts.delete(SCRIPT, account_id=account)
    with pytest.raises(cloudflare.NotFoundError) as gone:
        cf.workers.scripts.get(SCRIPT, account_id=account)
    assert gone.value.body["errors"][0]["code"] == 10007  # type: ignore[index]
    assert SCRIPT not in LocalPlatform(REPO, local_platform["stack"]).script_urls()
