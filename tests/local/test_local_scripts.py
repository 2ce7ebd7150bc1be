"""Scripts uploaded through the local platform's Workers scripts API run: their bindings
resolved locally, refused when they cannot run, their versions split as deployed, restored
after a crash of the emulator, and stopped by `down`.

One platform for the module, on a copy of the project (its own ``.cfai/local``); the calls
go through cfai's own REST client, the one the cloud path uses (Cloudflare's clients are
judged in tests/parity/).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cfai.errors import CloudflareApiError, LocalPlatformError
from cfai.local import LocalPlatform
from cfai.local.router import VERSION_HEADER
from cfai.provision.rest import CloudflareClient
from cfai.provision.scripts import JS_MODULE, ScriptModule, ScriptUpload
from cfai.render import render_platform

REPO = Path(__file__).resolve().parents[2]

ECHO_JS = """
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/embed") {
      const out = await env.AI.run("@cf/baai/bge-base-en-v1.5", { text: ["hello"] });
      return Response.json({ dims: out.data[0].length });
    }
    if (url.pathname === "/index") return Response.json(await env.VECTORIZE.describe());
    return Response.json({
      label: LABEL, greeting: env.GREETING, conf: env.CONF, secret: env.SECRET === "s3cr3t-v4lue",
    });
  },
};
"""


def _upload(
    label: str, *, bindings: list[dict[str, Any]] | None = None, prelude: str = ""
) -> ScriptUpload:
    source = f"{prelude}const LABEL = {json.dumps(label)};\n{ECHO_JS}"
    return ScriptUpload(
        "index.js",
        (ScriptModule("index.js", JS_MODULE, source.encode()),),
        bindings=tuple(bindings if bindings is not None else _bindings()),
        compatibility_date="2025-01-01",
    )


def _bindings(index: str = "local-docs") -> list[dict[str, Any]]:
    return [
        {"type": "ai", "name": "AI"},
        {"type": "vectorize", "name": "VECTORIZE", "index_name": index},
        {"type": "plain_text", "name": "GREETING", "text": "hi"},
        {"type": "json", "name": "CONF", "json": {"a": [1, 2]}},
        {"type": "secret_text", "name": "SECRET", "text": "s3cr3t-v4lue"},
    ]


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPlatform]:
    project = tmp_path_factory.mktemp("scripts") / "proj"
    project.mkdir()
    for name in ("Pulumi.yaml", "Pulumi.local.yaml"):
        shutil.copy(REPO / name, project / name)
    shutil.copytree(REPO / "src" / "adapters", project / "src" / "adapters")  # the tone finetune
    (project / "node_modules").symlink_to(REPO / "node_modules")
    lp = LocalPlatform(project, "local")
    try:
        lp.up(timeout=60)
        yield lp
    finally:
        lp.down()


def _client(lp: LocalPlatform) -> CloudflareClient:
    outputs = lp.outputs()
    assert outputs is not None and outputs.api is not None
    return CloudflareClient(
        outputs.api.base_url, token=outputs.api.token, account_id=outputs.api.account_id
    )


def _public(cf: CloudflareClient, lp: LocalPlatform, name: str, upload: ScriptUpload) -> str:
    cf.workers.upload(name, upload)
    cf.workers.set_subdomain(name, True)
    return lp.script_urls()[name]


def test_an_uploaded_script_runs_with_its_bindings_and_never_shows_its_secret(
    platform: LocalPlatform,
) -> None:
    with _client(platform) as cf:
        url = _public(cf, platform, "echo", _upload("one"))
        settings = cf.workers.settings("echo")
        version = cf.workers.version("echo", cf.workers.current("echo")["version_id"])  # type: ignore[index]
    assert httpx.get(url, timeout=30).json() == {
        "label": "one",
        "greeting": "hi",
        "conf": {"a": [1, 2]},
        "secret": True,
    }
    assert httpx.get(f"{url}/embed", timeout=30).json() == {"dims": 768}
    assert httpx.get(f"{url}/index", timeout=30).json()["dimensions"] == 768
    for shown in (settings["bindings"], version["bindings"]):
        assert {"type": "secret_text", "name": "SECRET"} in shown
        assert "s3cr3t-v4lue" not in json.dumps(shown)
    for log in platform.state_dir.glob("*.log"):
        assert "s3cr3t-v4lue" not in log.read_text(errors="replace"), log.name


def test_a_service_worker_uploaded_as_terraform_frames_it_runs(platform: LocalPlatform) -> None:
    """terraform-provider-cloudflare's framing of a script without ``main_module``: the
    metadata part with ``filename=""`` and ``body_part`` naming a part called ``script``."""
    outputs = platform.outputs()
    assert outputs is not None and outputs.api is not None
    api, mark = outputs.api, "tf-boundary"
    meta = {
        "body_part": "script",
        "compatibility_date": "2025-01-01",
        "bindings": [
            {"type": "plain_text", "name": "GREETING", "text": "hi from a service worker"}
        ],
    }
    script = b'addEventListener("fetch", (e) => e.respondWith(new Response(GREETING)));'
    body = (
        (
            f'--{mark}\r\nContent-Disposition: form-data; name="metadata"; filename=""\r\n'
            f"Content-Type: application/json\r\n\r\n{json.dumps(meta)}\r\n"
            f'--{mark}\r\nContent-Disposition: form-data; name="script"\r\n'
            "Content-Type: application/javascript\r\n\r\n"
        ).encode()
        + script
        + f"\r\n--{mark}--\r\n".encode()
    )
    headers = {
        "authorization": f"Bearer {api.token}",
        "content-type": f"multipart/form-data; boundary={mark}",
    }
    r = httpx.put(api.account_url("/workers/scripts/sw"), content=body, headers=headers)
    assert r.status_code == 200, r.text
    with _client(platform) as cf:
        cf.workers.set_subdomain("sw", True)
        assert cf.workers.content("sw").main == script
    answer = httpx.get(platform.script_urls()["sw"], timeout=30)
    assert answer.text == "hi from a service worker"


def test_bindings_and_workers_that_cannot_run_are_refused_naming_them(
    platform: LocalPlatform,
) -> None:
    kv = [*_bindings(), {"type": "kv_namespace", "name": "CACHE", "namespace_id": "x"}]
    cases = [
        (_upload("kv", bindings=kv), "binding CACHE of type kv_namespace is not supported"),
        (
            _upload("vec", bindings=_bindings("no-such-index")),
            "binding VECTORIZE of type vectorize must have a valid `index_name`",
        ),
        (
            _upload("throws", prelude='throw new Error("boom at startup");\n'),
            "Uncaught Error: boom at startup",
        ),
    ]
    with _client(platform) as cf:
        for upload, words in cases:
            with pytest.raises(CloudflareApiError) as refused:
                cf.workers.upload("refused", upload)
            assert refused.value.status == 400 and refused.value.code == 10021
            assert words in str(refused.value)
            # Nothing was stored.
            with pytest.raises(CloudflareApiError) as missing:
                cf.workers.settings("refused")
            assert missing.value.code == 10007


def test_versions_split_traffic_and_the_override_pins_one(platform: LocalPlatform) -> None:
    with _client(platform) as cf:
        url = _public(cf, platform, "split", _upload("a"))
        a = cf.workers.current("split")["version_id"]  # type: ignore[index]
        b = cf.workers.upload_version("split", _upload("b"))["id"]
        assert {httpx.get(url, timeout=30).json()["label"] for _ in range(10)} == {"a"}
        cf.workers.deploy("split", {a: 30, b: 70})
    labels = [httpx.get(url, timeout=30).json()["label"] for _ in range(100)]
    assert 20 <= labels.count("a") <= 40 and labels.count("a") + labels.count("b") == 100
    pinned = {
        httpx.get(
            url, headers={"Cloudflare-Workers-Version-Overrides": f'split="{a}"'}, timeout=30
        ).json()["label"]
        for _ in range(20)
    }
    assert pinned == {"a"}


def test_worker_versions_of_the_stack_through_the_platform(platform: LocalPlatform) -> None:
    """`LocalPlatform`'s versions (what `cfai deploy --local` drives): a new version serves
    nothing until a split names it, a serving one cannot be retired, a retired one stops."""
    rendered = render_platform(platform_declaration(platform), base_dir=platform.project_dir)
    chat = next(r for r in rendered if r.key == "assistant")
    (old,) = platform.routes().workers["assistant"].split
    new = platform.start_version(chat)
    url = platform.script_urls()[chat.script_name]
    assert {httpx.get(f"{url}/health", timeout=10).headers[VERSION_HEADER] for _ in range(5)} == {
        old
    }
    platform.set_split("assistant", {old: 50, new: 50})
    assert platform.routes().workers["assistant"].split == {old: 50, new: 50}
    with pytest.raises(ValueError, match=r"no version \['zzz'\]"):
        platform.set_split("assistant", {"zzz": 100})
    with pytest.raises(ValueError, match="still serves traffic"):
        platform.stop_version("assistant", old)
    with pytest.raises(LocalPlatformError, match="'nope' is not behind the local router"):
        platform.set_split("nope", {old: 100})
    platform.set_split("assistant", {old: 100})
    platform.stop_version("assistant", new)
    assert set(platform.routes().workers["assistant"].versions) == {old}
    run = platform.running()
    assert run is not None and f"workerd-{new[:8]}" not in run.pids


def platform_declaration(lp: LocalPlatform) -> Any:
    from cfai.config import load_stack

    return load_stack("local", lp.project_dir)


def test_scripts_come_back_after_a_crash_and_down_stops_every_process(
    platform: LocalPlatform,
) -> None:
    with _client(platform) as cf:
        _public(cf, platform, "durable", _upload("kept"))
    os.kill(platform.status().processes["emulator"].pid, signal.SIGKILL)
    platform.up(timeout=60)  # restarts everything; the stored deployment is restored
    deadline = time.monotonic() + 30
    while "durable" not in platform.script_urls() and time.monotonic() < deadline:
        time.sleep(0.1)
    url = platform.script_urls()["durable"]
    assert httpx.get(url, timeout=30).json()["label"] == "kept"
    pids = [p.pid for p in platform.status().processes.values()]
    assert sum(name.startswith("workerd-") for name in platform.status().processes) >= 4
    platform.down()
    assert not any(_running(pid) for pid in pids)
    assert platform.status().processes == {}


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return False
