"""A custom Worker's `main` stays inside the project, symbolic links followed.

Reproduction from issue 11, "custom main escapes the project through a symlink":
``src/legacy.js -> /outside/secret.js`` (mode 600) validated, and render copied the secret
into ``workers/`` with mode 644.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cfai.config import load_platform
from cfai.errors import ConfigError
from cfai.render import render_worker

ACCOUNT = "0" * 32


def _declaration(main: str) -> dict[str, Any]:
    return {
        "account_id": ACCOUNT,
        "compatibility_date": "2025-09-01",
        "workers": {"legacy": {"kind": "custom", "main": main}},
    }


@pytest.fixture
def project(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.js"
    secret.write_text("export default { token: 'SECRET-VALUE' };")
    secret.chmod(0o600)
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "src" / "legacy.js").symlink_to(secret)
    (project / "src" / "real.js").write_text("export default {};")
    (project / "src" / "alias.js").symlink_to(project / "src" / "real.js")
    return project


def test_a_main_linked_outside_the_project_is_refused_at_load(project: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_platform(_declaration("src/legacy.js"), base_dir=project)
    assert [str(p) for p in err.value.problems] == [
        "workers.legacy.main: 'src/legacy.js' resolves outside the project (a symbolic link?); "
        "use a file inside it"
    ]


def test_render_refuses_it_too_and_copies_nothing(project: Path) -> None:
    # Loaded without the project at hand (as `cfai render` of a declaration built in Python).
    platform = load_platform(_declaration("src/legacy.js"))
    with pytest.raises(ConfigError, match="resolves outside the project"):
        render_worker(platform, "legacy", base_dir=project)


def test_a_link_that_stays_inside_the_project_is_fine(project: Path) -> None:
    platform = load_platform(_declaration("src/alias.js"), base_dir=project)
    assert render_worker(platform, "legacy", base_dir=project).source == "export default {};"
