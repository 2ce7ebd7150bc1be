"""`cfai deploy --local` end to end: real workerd versions behind the real router, the real
contract suite as the gate, a client sending traffic through the whole rollout.

Runs on a dedicated platform in a temporary copy of the project (its own `.cfai/local`), so
the declaration and templates can be edited there without touching the repository or the
session's shared platform. The gateway's rate limit is lifted in the copy: the client's
traffic and the repeated contract runs would otherwise exhaust it.
"""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from cfai.config import load_stack
from cfai.deploy import contract_gate, deploy
from cfai.deploy.local import LocalDriver
from cfai.local import LocalPlatform
from cfai.local.router import VERSION_HEADER
from cfai.render import Templates, render_platform, write_rendered

REPO = Path(__file__).resolve().parents[2]
MAX_REQUESTS = 3000  # the client's bound, whatever the rollout's length


@dataclass
class Traffic:
    """A thread sending chat requests to the public endpoint until stopped."""

    url: str
    token: str
    seen: list[tuple[str, int]] = field(default_factory=list)  # (version id, status)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(headers={"authorization": f"Bearer {self.token}"}, timeout=30) as c:
            while not self.stop.is_set() and len(self.seen) < MAX_REQUESTS:
                try:
                    r = c.post(f"{self.url}/chat", json={"prompt": f"status? {uuid.uuid4()}"})
                    self.seen.append((r.headers.get(VERSION_HEADER, "?"), r.status_code))
                except httpx.HTTPError as err:
                    self.seen.append(("?", -1))
                    print("client error", err)

    def by_version(self) -> dict[str, Counter[int]]:
        out: dict[str, Counter[int]] = {}
        for vid, status in self.seen:
            out.setdefault(vid, Counter())[status] += 1
        return out


@pytest.fixture
def project(tmp_path: Path) -> Iterator[tuple[Path, LocalPlatform, dict[str, Any]]]:
    project = tmp_path / "project"
    project.mkdir()
    (project / "Pulumi.yaml").write_text((REPO / "Pulumi.yaml").read_text())
    declaration = (REPO / "Pulumi.local.yaml").read_text()
    limit = "        rate_limit: {limit: 120, interval: 60, technique: sliding}\n"
    assert limit in declaration
    (project / "Pulumi.local.yaml").write_text(declaration.replace(limit, ""))
    shutil.copytree(REPO / "src" / "adapters", project / "src" / "adapters")  # the tone finetune
    (project / "node_modules").symlink_to(REPO / "node_modules")
    _render_into(project)
    platform = LocalPlatform(project, "local")
    try:
        yield project, platform, platform.up(timeout=60).to_json()
    finally:
        platform.down()
        shutil.rmtree(platform.state_dir, ignore_errors=True)


def _render_into(project: Path, templates: Templates | None = None) -> list[Any]:
    rendered = render_platform(load_stack("local", project), base_dir=project, templates=templates)
    write_rendered({"local": rendered}, project / "workers")
    return rendered


def _rollout(
    project: Path, outputs: dict[str, Any], templates: Templates | None = None
) -> tuple[Any, Traffic]:
    """Render the project, deploy it locally with the client running throughout."""
    rendered = _render_into(project, templates)
    traffic = Traffic(outputs["endpoints"]["assistant"], outputs["auth_token"])
    thread = threading.Thread(target=traffic.run)
    thread.start()
    try:
        report = deploy(
            rendered,
            stack="local",
            workers_dir=project / "workers",
            driver=LocalDriver(project, "local", drain=0.5),
            gate=contract_gate(project),
            steps=(10, 50, 100),
        )
    finally:
        traffic.stop.set()
        thread.join(timeout=60)
    print({vid[:8]: dict(c) for vid, c in traffic.by_version().items()}, len(traffic.seen))
    return report, traffic


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].startswith(" Z")


def test_good_change_canaries_and_is_promoted_then_a_broken_one_is_rolled_back(
    project: tuple[Path, LocalPlatform, dict[str, Any]],
) -> None:
    root, platform, outputs = project
    url = outputs["endpoints"]["assistant"]
    (old_id,) = platform.routes().workers["assistant"].split
    untouched = {k: w.split for k, w in platform.routes().workers.items()}

    # A good change: a new system prompt.
    declaration = root / "Pulumi.local.yaml"
    text = declaration.read_text()
    declaration.write_text(text.replace("concise assistant", "terse assistant"))
    report, traffic = _rollout(root, outputs)
    chat = next(r for r in report.rollouts if r.worker == "assistant")
    assert report.exit_code == 0 and chat.outcome == "promoted", report.failures
    assert chat.passed == [0, 10, 50, 100] and chat.new is not None
    new_id = chat.new.id
    health = httpx.get(f"{url}/health", timeout=10)
    assert health.json()["template_sha256"] == chat.new.sha256
    assert health.headers[VERSION_HEADER] == new_id
    table = platform.routes().workers
    assert table["assistant"].split == {new_id: 100}
    assert set(table["assistant"].versions) == {new_id}
    # kb and studio were not touched.
    assert {k: w.split for k, w in table.items() if k != "assistant"} == {
        k: v for k, v in untouched.items() if k != "assistant"
    }
    # Every request succeeded, on both versions; both served some of the traffic.
    seen = traffic.by_version()
    assert set(seen) <= {old_id, new_id} and seen[old_id][200] > 0
    assert all(set(c) == {200} for c in seen.values()), seen

    # A broken change: the chat route answers 500.
    templates = root / "templates"
    shutil.copytree(REPO / "templates", templates)
    chat_template = templates / "workers" / "chat.js.j2"
    source = chat_template.read_text()
    head = "async function handleChat(req) {\n"
    chat_template.write_text(
        source.replace(head, head + '  return new Response("broken", { status: 500 });\n')
    )
    report, traffic = _rollout(root, outputs, Templates(templates))
    broken = next(r for r in report.rollouts if r.worker == "assistant")
    assert report.exit_code == 1 and broken.outcome == "rolled_back"
    assert broken.failed_at == 0  # caught before any user traffic reached it
    failed = {f.check.split("::")[-1] for f in broken.failures}
    assert {"test_chat_prompt_json_answer", "test_chat_stream_sse_framing"} <= failed
    assert all(f.worker == "chat[assistant]" for f in broken.failures)
    # The old (promoted) version served throughout, without a single failure.
    seen = traffic.by_version()
    assert set(seen) == {new_id} and set(seen[new_id]) == {200}, seen
    # Final state: the old version only; the broken version's process is gone.
    table = platform.routes().workers
    assert table["assistant"].split == {new_id: 100}
    assert set(table["assistant"].versions) == {new_id}
    assert httpx.get(f"{url}/health", timeout=10).headers[VERSION_HEADER] == new_id
    assert broken.new is not None
    run = platform.running()
    assert run is not None and f"workerd-{broken.new.id[:8]}" not in run.pids
    assert f"workerd-{new_id[:8]}" in run.pids


def test_deploy_without_a_running_platform_says_how_to_start_it(tmp_path: Path) -> None:
    from cfai.deploy import DeployUserError

    with pytest.raises(DeployUserError, match="cfai local up"):
        LocalDriver(tmp_path, "local")


def test_deploy_command_prints_no_resource_warning(
    project: tuple[Path, LocalPlatform, dict[str, Any]],
) -> None:
    # The command a user runs: the new version's workerd outlives the command by design, and
    # a successful deploy ends without "Exception ignored ... ResourceWarning: subprocess
    # NNN is still running" from the Popen objects of those processes.
    import subprocess
    import sys

    root, platform, _ = project
    declaration = root / "Pulumi.local.yaml"
    declaration.write_text(declaration.read_text().replace("concise assistant", "terse assistant"))
    _render_into(root)
    r = subprocess.run(
        [sys.executable, "-m", "cfai", "deploy", "--local", "--steps", "100"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "promoted" in r.stdout
    assert "ResourceWarning" not in r.stderr and "Exception ignored" not in r.stderr, r.stderr
    (new_id,) = platform.routes().workers["assistant"].split
    run = platform.running()
    assert run is not None and f"workerd-{new_id[:8]}" in run.pids  # still serving after exit
