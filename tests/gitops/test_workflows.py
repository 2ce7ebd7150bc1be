"""The GitHub Actions workflows: parsed and held to the project's rules (secrets only from
the secret store, pinned actions, least privilege, concurrency, every command a make, cfai
or pulumi call), and linted by actionlint when it is installed."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"
SECRETS = {
    "CLOUDFLARE_API_TOKEN",
    "PULUMI_ACCESS_TOKEN",
    "PULUMI_CONFIG_PASSPHRASE",
    "GITHUB_TOKEN",
}
CLOUD_STACKS = ["staging", "prod"]
_SECRET_REF = re.compile(r"\$\{\{\s*secrets\.([A-Za-z0-9_]+)\s*\}\}")
_PINNED = re.compile(r"^[\w.-]+/[\w./-]+@(v\d+(\.\d+){0,2}|[0-9a-f]{40})$")


def load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the key `on` as True.
    data["on"] = data.pop(True, data.get("on"))
    return dict(data)


def all_workflows() -> list[str]:
    return sorted(p.name for p in WORKFLOWS.glob("*.yml"))


def steps(wf: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for job_name, job in wf["jobs"].items():
        for step in job.get("steps", []):
            yield job_name, step


def runs(job: dict[str, Any]) -> list[str]:
    return [s["run"] for s in job.get("steps", []) if "run" in s]


def test_the_three_workflows_exist() -> None:
    assert all_workflows() == ["deploy.yml", "drift.yml", "pr.yml"]


@pytest.mark.parametrize("name", all_workflows())
def test_secrets_only_from_the_secret_store(name: str) -> None:
    text = (WORKFLOWS / name).read_text()
    assert set(_SECRET_REF.findall(text)) <= SECRETS
    wf = load(name)
    envs = [wf.get("env", {})]
    for job in wf["jobs"].values():
        envs.append(job.get("env", {}))
        envs += [s.get("env", {}) for s in job.get("steps", [])]
    for env in envs:
        for key, value in env.items():
            if key in SECRETS:
                assert value == f"${{{{ secrets.{key} }}}}", f"{name}: {key} must come from secrets"
    for _, step in steps(wf):
        for key, value in (step.get("with") or {}).items():
            if "token" in key or "passphrase" in key:
                assert _SECRET_REF.fullmatch(str(value)), f"{name}: {key} is not a secret reference"
    # Nothing that looks like a credential written into the file.
    assert not re.search(r"pul-[0-9a-f]{20,}|\b[A-Za-z0-9_-]{40}\b", text), name


@pytest.mark.parametrize("name", all_workflows())
def test_actions_are_pinned_to_versions(name: str) -> None:
    used = [step["uses"] for _, step in steps(load(name)) if "uses" in step]
    assert used
    for ref in used:
        assert _PINNED.match(ref), f"{name}: {ref} is not pinned to a version tag or commit"


@pytest.mark.parametrize("name", all_workflows())
def test_permissions_least_privilege(name: str) -> None:
    wf = load(name)
    assert wf["permissions"] == {"contents": "read"}
    for job_name, job in wf["jobs"].items():
        granted = job.get("permissions", {"contents": "read"})
        writes = {k for k, v in granted.items() if v == "write"}
        allowed = {"pull-requests"} if (name, job_name) == ("pr.yml", "preview") else set()
        assert writes == allowed, f"{name}:{job_name} may write {writes}"


@pytest.mark.parametrize("name", all_workflows())
def test_every_job_is_in_a_concurrency_group(name: str) -> None:
    wf = load(name)
    for job_name, job in wf["jobs"].items():
        assert "concurrency" in wf or "group" in job.get("concurrency", {}), job_name


@pytest.mark.parametrize("name", all_workflows())
def test_every_command_is_make_cfai_or_pulumi(name: str) -> None:
    for job_name, step in steps(load(name)):
        if "run" not in step:
            continue
        for line in step["run"].strip().splitlines():
            first = line.split()[0]
            assert Path(first).name in {"make", "cfai", "pulumi"}, f"{name}:{job_name}: {line}"
            if Path(first).name == "cfai":
                assert first == ".venv/bin/cfai", "cfai runs from the venv `make setup` made"


def test_pr_tests_renders_and_previews_every_cloud_stack_on_the_pr() -> None:
    wf = load("pr.yml")
    assert "pull_request" in wf["on"]
    test = wf["jobs"]["test"]
    assert runs(test) == ["make setup", "make test", ".venv/bin/cfai render --check"]
    preview = wf["jobs"]["preview"]
    assert preview["needs"] == "test"
    assert preview["strategy"]["matrix"]["stack"] == CLOUD_STACKS
    (pulumi,) = [s for s in preview["steps"] if s.get("uses", "").startswith("pulumi/actions@")]
    assert pulumi["with"]["command"] == "preview"
    assert pulumi["with"]["stack-name"] == "${{ matrix.stack }}"
    assert pulumi["with"]["comment-on-pr"] is True
    assert preview["permissions"]["pull-requests"] == "write"
    assert set(pulumi["env"]) == SECRETS - {"GITHUB_TOKEN"}
    # Both parts of the deploy the merge runs, posted as the PR's comment per stack.
    (cfai,) = [s for s in preview["steps"] if "cfai deploy" in s.get("run", "")]
    assert cfai["run"].startswith(".venv/bin/cfai deploy --stack ${{ matrix.stack }} --preview")
    assert set(cfai["env"]) == SECRETS - {"GITHUB_TOKEN"}
    (comment,) = [s for s in preview["steps"] if "sticky-pull-request-comment" in s.get("uses", "")]
    assert comment["with"]["path"] in cfai["run"]


def test_pr_review_stack_is_optional_behind_a_label_and_torn_down() -> None:
    jobs = load("pr.yml")["jobs"]
    up, down = jobs["review-stack"], jobs["review-stack-down"]
    for job in (up, down):
        assert "contains(github.event.pull_request.labels.*.name, 'review-stack')" in job["if"]
    assert '.venv/bin/cfai stack new "$STACK" --from staging' in runs(up)
    assert '.venv/bin/cfai test --stack "$STACK"' in runs(up)
    assert "github.event.action == 'closed'" in down["if"]
    assert 'pulumi destroy --yes --remove --stack "$STACK"' in runs(down)
    assert (
        up["env"]["STACK"] == down["env"]["STACK"] == "pr-${{ github.event.pull_request.number }}"
    )


def test_deploy_goes_to_staging_then_prod_behind_an_approval_environment() -> None:
    wf = load("deploy.yml")
    assert wf["on"] == {"push": {"branches": ["main"]}}
    staging, prod = wf["jobs"]["staging"], wf["jobs"]["production"]
    assert runs(staging)[-1] == ".venv/bin/cfai deploy --stack staging"
    assert runs(prod)[-1] == ".venv/bin/cfai deploy --stack prod"
    # Nothing but `cfai deploy` changes a stack on merge: no bare `pulumi up`.
    assert not [r for job in (staging, prod) for r in runs(job) if r.startswith("pulumi")]
    assert prod["needs"] == "staging"
    assert prod["environment"] == "production"
    assert wf["concurrency"]["cancel-in-progress"] is False  # never cancel a rollout midway
    for stack in CLOUD_STACKS:
        assert (REPO / f"Pulumi.{stack}.yaml").is_file()


def test_drift_runs_nightly_per_stack_and_shares_the_deploy_lock() -> None:
    wf = load("drift.yml")
    assert wf["on"]["schedule"][0]["cron"]
    job = wf["jobs"]["drift"]
    assert job["strategy"]["matrix"]["stack"] == CLOUD_STACKS
    assert job["strategy"]["fail-fast"] is False
    assert ".venv/bin/cfai drift --stack ${{ matrix.stack }} --require-pulumi" in runs(job)
    deploy = load("deploy.yml")["jobs"]
    locks = {j["concurrency"]["group"] for j in deploy.values()}
    assert {
        job["concurrency"]["group"].replace("${{ matrix.stack }}", s) for s in CLOUD_STACKS
    } == locks


def _actionlint() -> str | None:
    return shutil.which("actionlint") or shutil.which(
        "actionlint", path=str(Path(sys.executable).parent)
    )


def test_actionlint_finds_nothing() -> None:
    exe = _actionlint()
    if exe is None:
        pytest.fail("actionlint is not installed; `make setup` installs it (dev dependency)")
    files = [str(p) for p in sorted(WORKFLOWS.glob("*.yml"))]
    r = subprocess.run(
        [exe, "-no-color", *files], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stdout + r.stderr
