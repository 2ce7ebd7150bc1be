"""Static assets of an `AiWorker` under pulumi mocks: the WorkersScript's ``assets`` names
the folder the provider uploads through Cloudflare's assets upload session (the declared
one; for a playground page, the one `cfai render` writes beside the module) and how they
serve; the assets binding is uploaded last; a Worker without assets has none."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
import pytest

from cfai.config import load_platform
from cfai.provision.worker import AiWorker, AiWorkerArgs, assets_directory, auth_token
from cfai.render import RenderedWorker, render_platform, write_rendered

ACCOUNT = "0123456789abcdef0123456789abcdef"
SCRIPT = "cloudflare:index/workersScript:WorkersScript"


class _Mocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.registered: list[pulumi.runtime.MockResourceArgs] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.registered.append(args)
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        return {}

    def script(self) -> dict[str, Any]:
        (found,) = [r for r in self.registered if r.typ == SCRIPT]
        return dict(found.inputs)


@pytest.fixture
def mocks() -> _Mocks:
    m = _Mocks()
    pulumi.runtime.set_mocks(m, project="cfai", stack="staging", preview=False)
    pulumi.runtime.set_all_config({"cfai:authToken": "s3cret"}, secret_keys=["cfai:authToken"])
    return m


def _rendered(project: Path, key: str) -> RenderedWorker:
    (project / "src").mkdir(exist_ok=True)
    (project / "src" / "app.js").write_text("export default { fetch: () => new Response('') };")
    (project / "public").mkdir(exist_ok=True)
    (project / "public" / "index.html").write_text("<h1>app</h1>")
    platform = load_platform(
        {
            "account_id": ACCOUNT,
            "name_prefix": "cfai-staging",
            "compatibility_date": "2025-09-01",
            "workers": {
                "app": {
                    "kind": "custom",
                    "main": "src/app.js",
                    "assets": {
                        "directory": "public",
                        "binding": "ASSETS",
                        "not_found_handling": "single-page-application",
                        "run_worker_first": ["/api/*"],
                    },
                },
                "chat": {"kind": "chat", "playground": True},
                "plain": {"kind": "chat"},
            },
        },
        base_dir=project,
    )
    return next(r for r in render_platform(platform, base_dir=project) if r.key == key)


def _declare(rendered: RenderedWorker) -> None:
    @pulumi.runtime.test
    def program() -> Any:
        worker = AiWorker(rendered.key, AiWorkerArgs(ACCOUNT, rendered, "acme", auth_token()))
        return worker.url.future()

    program()


def test_declared_assets_are_uploaded_from_their_folder(mocks: _Mocks, tmp_path: Path) -> None:
    _declare(_rendered(tmp_path, "app"))
    script = mocks.script()
    assert script["assets"] == {
        "directory": "public",
        "config": {
            "htmlHandling": "auto-trailing-slash",
            "notFoundHandling": "single-page-application",
            "runWorkerFirst": ["/api/*"],
        },
    }
    assert script["bindings"][-1] == {"type": "assets", "name": "ASSETS"}


def test_a_playground_is_uploaded_from_the_rendered_folder(mocks: _Mocks, tmp_path: Path) -> None:
    rendered = _rendered(tmp_path, "chat")
    _declare(rendered)
    directory = mocks.script()["assets"]["directory"]
    assert directory == "workers/chat/playground" == assets_directory(rendered)
    # `cfai render` wrote that folder: the page the provider uploads is the reviewed one.
    write_rendered({"staging": [rendered]}, tmp_path / "workers")
    written = sorted(p.name for p in (tmp_path / directory).iterdir())
    assert written == ["chat.js", "index.html", "playground.css", "playground.js"]
    bindings = mocks.script()["bindings"]
    bindings = bindings.get("value", bindings) if isinstance(bindings, dict) else bindings
    assert [b["type"] for b in bindings if b["type"] == "assets"] == []


def test_a_worker_without_assets_uploads_none(mocks: _Mocks, tmp_path: Path) -> None:
    _declare(_rendered(tmp_path, "plain"))
    assert "assets" not in mocks.script()
