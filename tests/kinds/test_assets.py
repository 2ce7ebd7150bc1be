"""A custom Worker's `assets:` declaration: checked as Cloudflare would take it (a folder
inside the project, at most 20,000 files of at most 25 MiB each), every problem named by its
path; and the files it uploads: served paths, hashes and media types."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cfai.config import load_platform
from cfai.errors import ConfigError
from cfai.kinds import assets as assets_module
from cfai.render import render_worker

ACCOUNT = "0" * 32


def _declaration(**assets: Any) -> dict[str, Any]:
    return {
        "account_id": ACCOUNT,
        "compatibility_date": "2025-09-01",
        "workers": {
            "app": {
                "kind": "custom",
                "main": "src/app.js",
                "bindings": {"ai": "AI"},
                "assets": {"directory": "public", **assets},
            }
        },
    }


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.js").write_text("export default {};")
    public = tmp_path / "public"
    (public / "css").mkdir(parents=True)
    (public / "index.html").write_text("<h1>hi</h1>")
    (public / "css" / "site.css").write_text("body{}")
    (public / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (public / "notes.md").write_text("draft")
    (public / ".assetsignore").write_text("*.md\n")
    (public / "_headers").write_text("/*\n  X-Frame-Options: DENY\n")
    return tmp_path


def _problems(project: Path, **assets: Any) -> list[str]:
    with pytest.raises(ConfigError) as err:
        load_platform(_declaration(**assets), base_dir=project)
    return [f"{p.path}: {p.message}" for p in err.value.problems]


def test_assets_render_with_their_manifest_and_binding(project: Path) -> None:
    platform = load_platform(_declaration(binding="ASSETS"), base_dir=project)
    rendered = render_worker(platform, "app", base_dir=project)
    assert rendered.assets is not None
    files = {f.path: f for f in rendered.assets.files}
    # .assetsignore'd files and wrangler's config files are not assets.
    assert sorted(files) == ["/css/site.css", "/index.html", "/logo.png"]
    assert files["/index.html"].content_type == "text/html; charset=utf-8"
    assert files["/logo.png"].content_type == "image/png"
    assert rendered.assets.manifest()["/css/site.css"]["size"] == 6
    assert all(len(f.hash) == 32 for f in files.values())
    assert ("assets", "ASSETS") in {(b.type, b.name) for b in rendered.bindings}


def test_a_changed_file_changes_the_digest(project: Path) -> None:
    platform = load_platform(_declaration(), base_dir=project)
    before = render_worker(platform, "app", base_dir=project).assets
    (project / "public" / "index.html").write_text("<h1>bye</h1>")
    after = render_worker(platform, "app", base_dir=project).assets
    assert before is not None and after is not None and before.digest != after.digest


def test_assets_folder_must_be_inside_the_project(project: Path, tmp_path: Path) -> None:
    assert _problems(project, directory="../elsewhere") == [
        "workers.app.assets.directory: '../elsewhere' must be a folder inside the project"
    ]
    (project / "linked").symlink_to(tmp_path.parent)
    assert "resolves outside the project" in _problems(project, directory="linked")[0]
    assert _problems(project, directory="missing")[0].startswith(
        "workers.app.assets.directory: folder 'missing' not found in"
    )


def test_a_file_over_25_mib_is_refused(project: Path) -> None:
    with open(project / "public" / "video.mp4", "wb") as f:
        f.truncate(25 * 1024 * 1024 + 1)  # sparse: no 25 MiB written
    assert _problems(project) == [
        "workers.app.assets.directory: /video.mp4 is 25.0 MiB; Cloudflare serves asset "
        "files of at most 25 MiB"
    ]


def test_more_files_than_cloudflare_takes_are_refused(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(assets_module, "MAX_FILES", 2)
    (problem,) = _problems(project)
    assert problem.startswith("workers.app.assets.directory: 3 files; Cloudflare takes at most 2")


def test_binding_name_clash_and_bad_settings_are_named(project: Path) -> None:
    assert _problems(project, binding="AI") == [
        "workers.app.assets.binding: 'AI' is already the name of another binding"
    ]
    (problem,) = _problems(project, not_found_handling="spa")
    assert problem.startswith("workers.app.assets.not_found_handling:")
