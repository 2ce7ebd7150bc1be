"""`cfai stack new`: review stacks from another stack, with their own name prefix."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from cfai.config import load_stack
from cfai.errors import ConfigError
from cfai.gitops.stacks import new_stack
from cfai.local import LocalPlatform

REPO = Path(__file__).resolve().parents[2]


def cfai(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cfai", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    proj = tmp_path / "proj"
    proj.mkdir()
    for name in ("Pulumi.yaml", "Pulumi.staging.yaml", "Pulumi.local.yaml"):
        shutil.copy(REPO / name, proj / name)
    shutil.copytree(REPO / "src", proj / "src")  # staging's custom Worker module
    return proj


def test_stack_new_copies_platform_with_own_prefix_and_lists_secrets(project: Path) -> None:
    r = cfai("stack", "new", "pr-42", "--from", "staging", cwd=project)
    assert r.returncode == 0, r.stderr
    assert 'pulumi config set --secret cfai:authToken "..." --stack pr-42' in r.stdout
    data = yaml.safe_load((project / "Pulumi.pr-42.yaml").read_text())
    assert "cfai:authToken" not in data["config"]  # encrypted for staging: cannot be copied
    assert data["config"]["cfai:workersSubdomain"] == "acme-staging"
    review, staging = load_stack("pr-42", project), load_stack("staging", project)
    assert review.name_prefix == "cfai-pr-42"
    assert review.model_dump(exclude={"name_prefix"}) == staging.model_dump(exclude={"name_prefix"})
    assert review.physical_name("kb") == "cfai-pr-42-kb" != staging.physical_name("kb")
    assert "cfai:authToken" in (project / "Pulumi.pr-42.yaml").read_text()  # the header says how


def test_stack_new_keeps_the_source_comments_and_flow_style(project: Path) -> None:
    # Reviewers diff the review stack against its source: comments, flow mappings and
    # quoting stay as written; only the secrets and the prefix differ.
    staging = (project / "Pulumi.staging.yaml").read_text()
    assert cfai("stack", "new", "pr-42", "--from", "staging", cwd=project).returncode == 0
    review = (project / "Pulumi.pr-42.yaml").read_text()
    for line in staging.splitlines():
        if "secure:" in line or "cfai:authToken:" in line:
            assert line not in review.splitlines() or line.startswith("#")
        elif "name_prefix:" in line:
            assert "    name_prefix: cfai-pr-42" in review
        else:
            assert line in review.splitlines(), line
    assert "        rate_limit: {limit: 100, interval: 60, technique: sliding}" in review
    assert '    account_id: "0123456789abcdef0123456789abcdef"' in review


def test_stack_new_with_prefix_and_drops_stack_bound_keys(project: Path) -> None:
    staging = project / "Pulumi.staging.yaml"
    staging.write_text("encryptionsalt: v1:abc:def\n" + staging.read_text())
    made = new_stack("review", "staging", project=project, prefix="pr-7")
    assert made.name_prefix == "pr-7" and made.dropped == ("encryptionsalt",)
    assert made.secrets_to_set == ("cfai:authToken",)
    assert "encryptionsalt" not in yaml.safe_load(made.path.read_text())


def test_stack_new_refuses_to_overwrite(project: Path) -> None:
    before = (project / "Pulumi.local.yaml").read_text()
    r = cfai("stack", "new", "local", "--from", "staging", cwd=project)
    assert r.returncode == 2
    assert "Pulumi.local.yaml exists" in r.stderr
    assert (project / "Pulumi.local.yaml").read_text() == before


@pytest.mark.parametrize("name", ["acme/proj/pr-1", "pr 1", "pr:1", "x" * 101])
def test_stack_new_rejects_names_pulumi_rejects(project: Path, name: str) -> None:
    with pytest.raises(ConfigError) as err:
        new_stack(name, "staging", project=project)
    assert err.value.problems[0].path == "stack"
    assert not list(project.glob("Pulumi.pr*"))


def test_stack_new_default_prefix_must_be_a_valid_name_prefix(project: Path) -> None:
    with pytest.raises(ConfigError) as err:
        new_stack("PR_42", "staging", project=project)
    (problem,) = err.value.problems
    # The prefix was derived from the name the user typed: the error blames that name.
    assert problem.path == "stack" and "--prefix" in problem.message
    assert "'PR_42'" in problem.message and "'pr-42'" in problem.message
    assert not (project / "Pulumi.PR_42.yaml").exists()
    assert new_stack("PR_42", "staging", project=project, prefix="pr-42").path.is_file()


def test_stack_new_with_an_unusable_name_blames_the_name_in_words(project: Path) -> None:
    r = cfai("stack", "new", "PR_43", "--from", "staging", cwd=project)
    assert r.returncode == 2
    assert "stack: 'PR_43' cannot prefix Cloudflare resource names ('cfai-PR_43')" in r.stderr
    assert "lowercase letters, digits and '-', starting with a letter or digit" in r.stderr
    assert "name_prefix" not in r.stderr and "Traceback" not in r.stderr
    assert not (project / "Pulumi.PR_43.yaml").exists()


def test_stack_new_physical_name_length_limits_are_checked_before_writing(project: Path) -> None:
    source = yaml.safe_load((project / "Pulumi.local.yaml").read_text())
    workers = source["config"]["cfai:platform"]["workers"]
    workers["a" * 30] = workers.pop("assistant")
    (project / "Pulumi.long.yaml").write_text(yaml.safe_dump(source))
    with pytest.raises(ConfigError) as err:
        new_stack("review", "long", project=project, prefix="p" * 40)
    assert any(
        p.path == f"workers.{'a' * 30}" and "Cloudflare allows 63" in p.message
        for p in err.value.problems
    )
    assert not (project / "Pulumi.review.yaml").exists()


def test_stack_new_from_unknown_stack_lists_the_known(project: Path) -> None:
    with pytest.raises(ConfigError, match=r"no stack 'nope'.*stacks: local, staging"):
        new_stack("pr-1", "nope", project=project)


def test_review_stack_runs_locally_and_is_drift_free_once_rendered(project: Path) -> None:
    (project / "node_modules").symlink_to(REPO / "node_modules")
    made = new_stack("pr-9", "local", project=project)
    rendered = cfai("render", "--stack", "pr-9", cwd=project)
    assert rendered.returncode == 0, rendered.stderr
    platform = LocalPlatform(project, "pr-9")
    try:
        outputs = platform.up(timeout=60)
        assert platform.state_dir == project / ".cfai" / "pr-9"
        assert outputs.workers["assistant"].script_name == f"{made.name_prefix}-assistant"
        assert outputs.indexes["docs"].name == "cfai-pr-9-docs"
        health = httpx.get(f"{outputs.endpoints['assistant']}/health", timeout=10)
        assert health.json()["worker"] == "assistant"
        drift = cfai("drift", "--local", "--stack", "pr-9", cwd=project)
        assert drift.returncode == 0, drift.stdout + drift.stderr
    finally:
        platform.down()
