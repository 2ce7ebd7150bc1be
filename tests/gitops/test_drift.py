"""`cfai drift`: a running platform compared with the repository.

End to end on the local platform (real workerd): clean as deployed, drift after an
out-of-band change to what runs, clean again after a redeploy. The cloud path runs against
a Pulumi CLI stand-in (a script on PATH), since the real CLI and Cloudflare are unreachable.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.polling import wait_for

from cfai.config import load_stack
from cfai.local import LocalPlatform, processes
from cfai.local.ports import free_port
from cfai.local.state import StateFiles
from cfai.outputs import WorkerOutput
from cfai.render import module_path, module_sha256

REPO = Path(__file__).resolve().parents[2]
_MARKER = re.compile(r'const TEMPLATE_SHA256 = "[0-9a-f]{64}";')


def cfai(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cfai", *args],
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the repository's local stack and its committed workers/ (own .cfai/ state)."""
    proj = tmp_path / "proj"
    (proj / "workers").mkdir(parents=True)
    for name in ("Pulumi.yaml", "Pulumi.local.yaml"):
        shutil.copy(REPO / name, proj / name)
    shutil.copytree(REPO / "src" / "adapters", proj / "src" / "adapters")  # the tone finetune
    for key in load_stack("local", REPO).workers:
        shutil.copytree(REPO / "workers" / key, proj / "workers" / key)
    (proj / "node_modules").symlink_to(REPO / "node_modules")
    return proj


@pytest.fixture
def running(project: Path) -> Iterator[tuple[LocalPlatform, dict[str, Any]]]:
    platform = LocalPlatform(project, "local")
    try:
        yield platform, platform.up(timeout=60).to_json()
    finally:
        platform.down()


def _serving(platform: LocalPlatform, worker: str) -> tuple[str, Path]:
    """The workerd process serving `worker` and the module file it loads."""
    route = platform.routes().workers[worker]
    (vid,) = route.split
    module = platform.state_dir / "scripts" / route.script_name / vid / "index.js"
    return route.versions[vid].process, module


def _restart_workerd_out_of_band(platform: LocalPlatform, process: str) -> int:
    """What an operator restarting a Worker's workerd by hand does: same command line and
    environment, whatever module files are on disk now. The runtime handed workerd a
    pre-opened socket (``--socket-fd``) and a control pipe (``--control-fd``), which a hand
    restart does not have: it binds the config's address."""
    files = StateFiles(platform.state_dir)
    run = files.read_run()
    assert run is not None
    old = run.pids[process]
    raw = Path(f"/proc/{old}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    handed = (b"--socket-fd", b"--control-fd")
    argv = [a for i, a in enumerate(raw) if a not in handed and raw[i - 1] not in handed]
    env_items = Path(f"/proc/{old}/environ").read_bytes().rstrip(b"\0").split(b"\0")
    env = dict(item.decode().split("=", 1) for item in env_items if b"=" in item)
    processes.stop(old)
    processes.forget(old)
    with open(platform.state_dir / f"{process}.log", "ab") as log:
        proc = subprocess.Popen(
            [a.decode() for a in argv],
            cwd=platform.state_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    # Handed to the supervisor so `down()` stops and reaps it like the runtime's own.
    processes.CHILDREN[proc.pid] = proc
    files.update_run(lambda r: r.pids.__setitem__(process, proc.pid))
    return proc.pid


def _wait_for_hash(url: str, sha: str) -> None:
    wait_for(
        f"{url} to serve {sha[:12]}",
        lambda: httpx.get(f"{url}/health", timeout=2).json().get("template_sha256") == sha,
        interval=0.1,
        ignore=(httpx.HTTPError,),
    )


def _row(stdout: str, worker: str) -> str:
    # stdout is a pipe: the table is plain lines, a Worker's row starts with its key.
    return next(line for line in stdout.splitlines() if line.startswith(f"{worker} "))


def test_drift_local_clean_then_out_of_band_change_detected_then_clean_after_redeploy(
    project: Path, running: tuple[LocalPlatform, dict[str, Any]]
) -> None:
    platform, outputs = running
    clean = cfai("drift", "--local", "--project", str(project))
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "no drift" in clean.stdout
    for worker in ("assistant", "kb", "studio"):
        assert "in sync" in _row(clean.stdout, worker)

    # A different build of the assistant (as a render of an edited template would be, with
    # its own hash) replaces the running one behind the repository's back.
    process, module = _serving(platform, "assistant")
    source = module.read_text(encoding="utf-8") + "\n// hotfix applied from a laptop\n"
    sha = module_sha256(source)
    module.write_text(_MARKER.sub(f'const TEMPLATE_SHA256 = "{sha}";', source), encoding="utf-8")
    by_hand = _restart_workerd_out_of_band(platform, process)
    _wait_for_hash(outputs["endpoints"]["assistant"], sha)

    drifted = cfai("drift", "--local", "--project", str(project))
    assert drifted.returncode == 1, drifted.stdout + drifted.stderr
    row = _row(drifted.stdout, "assistant")
    assert "drifted" in row and sha[:12] in row
    assert "assistant: live runs a module that is not workers/assistant/index.js" in (
        drifted.stdout
    )
    assert "in sync" in _row(drifted.stdout, "kb")
    assert "drift in local (local): assistant" in drifted.stderr

    # An edit that keeps the old hash constant: /health cannot tell, the loaded file can.
    _, kb = _serving(platform, "kb")
    kb.write_text(kb.read_text(encoding="utf-8") + "\n// quick fix\n", encoding="utf-8")
    as_json = cfai("drift", "--local", "--json", "--project", str(project))
    assert as_json.returncode == 1
    report = json.loads(as_json.stdout)
    status = {w["worker"]: w["status"] for w in report["workers"]}
    assert status == {
        "assistant": "drifted",
        "kb": "drifted",
        "studio": "in sync",
        "support": "in sync",
        "voice": "in sync",
    }

    platform.up(timeout=60)  # the deploy puts the repository's modules back
    assert not processes.alive(by_hand)  # the restart stopped the hand-started workerd too
    again = cfai("drift", "--local", "--project", str(project))
    assert again.returncode == 0, again.stdout + again.stderr


def test_drift_local_says_when_workers_dir_itself_is_stale(
    project: Path, running: tuple[LocalPlatform, dict[str, Any]]
) -> None:
    committed = module_path(project / "workers", "studio")
    committed.write_text(committed.read_text(encoding="utf-8") + "// edited by hand\n")
    r = cfai("drift", "--local", "--project", str(project))
    assert r.returncode == 1
    assert "drifted" in _row(r.stdout, "studio")
    assert (
        "studio: live runs a fresh render that workers/studio/index.js does not hold: "
        "run `cfai render` and commit" in r.stdout
    )


def test_drift_local_when_not_running_is_a_user_error(project: Path) -> None:
    r = cfai("drift", "--local", "--project", str(project))
    assert r.returncode == 2
    assert "not running; start it with `cfai local up --stack local`" in r.stderr


# -- cloud stacks --------------------------------------------------------------------------

FAKE_PULUMI = """#!{python}
import json, os, sys
with open(os.environ["FAKE_PULUMI_LOG"], "a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\\n")
if sys.argv[1:3] == ["stack", "output"]:
    print(open(os.environ["FAKE_PULUMI_OUTPUTS"]).read())
    sys.exit(0)
if sys.argv[1] == "preview":
    if os.environ.get("FAKE_PULUMI_DRIFT"):
        print("~ cloudflare:index/aiGateway:AiGateway acme-main update [diff: ~rateLimitingLimit]")
        print("error: no changes were expected but changes were proposed", file=sys.stderr)
        sys.exit(255)
    print("Resources: 12 unchanged")
    sys.exit(0)
sys.exit(2)
"""


@pytest.fixture
def cloud_stack(
    tmp_path: Path, running: tuple[LocalPlatform, dict[str, Any]], project: Path
) -> dict[str, str]:
    """A "cloud" stack whose outputs point at the running local Workers, and a Pulumi CLI
    stand-in on PATH that serves those outputs and records its arguments."""
    _, outputs = running
    shutil.copy(project / "Pulumi.local.yaml", project / "Pulumi.edge.yaml")
    # Same declaration under another stack name: same script names, since name_prefix is set.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "pulumi"
    fake.write_text(FAKE_PULUMI.format(python=sys.executable))
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    out = tmp_path / "outputs.json"
    out.write_text(json.dumps({**outputs, "stack": "edge", "target": "cloud"}))
    return {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "FAKE_PULUMI_LOG": str(tmp_path / "pulumi.log"),
        "FAKE_PULUMI_OUTPUTS": str(out),
    }


def test_drift_stack_runs_refresh_preview_and_its_exit_status_decides(
    project: Path, cloud_stack: dict[str, str]
) -> None:
    clean = cfai("drift", "--stack", "edge", "--project", str(project), env=cloud_stack)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "pulumi preview --refresh: no changes" in clean.stdout
    calls = [
        json.loads(line) for line in Path(cloud_stack["FAKE_PULUMI_LOG"]).read_text().splitlines()
    ]
    assert ["stack", "output", "--json", "--show-secrets", "--stack", "edge"] in calls
    preview = next(c for c in calls if c[0] == "preview")
    assert {"--refresh", "--expect-no-changes"} <= set(preview)
    assert preview[preview.index("--stack") + 1] == "edge"

    drifted = cfai(
        "drift",
        "--stack",
        "edge",
        "--project",
        str(project),
        env={**cloud_stack, "FAKE_PULUMI_DRIFT": "1"},
    )
    assert drifted.returncode == 1
    assert "pulumi preview --refresh: the stack differs" in drifted.stdout
    assert "rateLimitingLimit" in drifted.stdout
    assert "in sync" in _row(drifted.stdout, "assistant")  # the Workers themselves match


def _no_pulumi_env(tmp_path: Path) -> dict[str, str]:
    path = os.pathsep.join(
        p for p in os.environ["PATH"].split(os.pathsep) if not (Path(p) / "pulumi").exists()
    )
    return {"PATH": path, "PULUMI_HOME": str(tmp_path / "no-pulumi")}


def test_drift_stack_without_pulumi_cli_still_compares_hashes(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    outputs = tmp_path / "outputs.json"
    outputs.write_text(
        json.dumps(
            {
                "stack": "staging",
                "workers": {
                    "assistant": {
                        "kind": "chat",
                        "script_name": "acme-staging-assistant",
                        "url": f"http://127.0.0.1:{port}",
                    }
                },
            }
        )
    )
    args = ("drift", "--stack", "staging", "--outputs", str(outputs), "--project", str(REPO))
    r = cfai(*args, env=_no_pulumi_env(tmp_path))
    assert r.returncode == 1
    assert "unreachable" in _row(r.stdout, "assistant")
    assert f"assistant: unreachable: ConnectError on http://127.0.0.1:{port}/health" in r.stdout
    assert "Pulumi check skipped: the Pulumi CLI is missing" in r.stdout

    required = cfai(*args, "--require-pulumi", env=_no_pulumi_env(tmp_path))
    assert required.returncode == 2
    assert "--require-pulumi: the Pulumi CLI is not installed" in required.stderr


def test_drift_stack_without_cli_or_outputs_finds_workers_from_the_declaration(
    tmp_path: Path,
) -> None:
    from cfai.gitops.drift import declared_outputs

    outputs = declared_outputs("staging", REPO)
    assert outputs.workers["kb"] == WorkerOutput(
        kind="rag",
        script_name="acme-staging-kb",
        url="https://acme-staging-kb.acme-staging.workers.dev",
    )
