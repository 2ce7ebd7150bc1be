"""The cfai command's exit codes and messages, run as a user runs it (a subprocess)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
ACCOUNT = "0123456789abcdef0123456789abcdef"


def cfai(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cfai", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def write_stack(dir: Path, name: str, platform: dict[str, object]) -> None:
    (dir / "Pulumi.yaml").write_text("name: acme\nruntime: python\n")
    (dir / f"Pulumi.{name}.yaml").write_text(
        yaml.safe_dump({"config": {"cfai:platform": platform}})
    )


def test_validate_every_shipped_stack_exits_0() -> None:
    r = cfai("validate")
    assert r.returncode == 0, r.stderr
    for stack in ("local", "staging", "prod"):
        assert f"ok {stack}:" in r.stdout


def test_validate_bad_config_exits_2_listing_problems_without_traceback(tmp_path: Path) -> None:
    write_stack(
        tmp_path,
        "dev",
        {
            "account_id": ACCOUNT,
            "workers": {
                "qa": {"kind": "rag", "index": "docz"},
                "a": {"kind": "chat", "max_tokens": 0},
            },
        },
    )
    r = cfai("validate", "--project", str(tmp_path))
    assert r.returncode == 2
    assert "workers.qa.index: unknown index 'docz' (defined: none)" in r.stderr
    assert "workers.a.max_tokens" in r.stderr
    assert "Traceback" not in r.stderr


def test_validate_missing_config_file_exits_2(tmp_path: Path) -> None:
    r = cfai("validate", "--config", str(tmp_path / "nope.yaml"))
    assert r.returncode == 2
    assert "nope.yaml not found" in r.stderr


def test_render_check_is_clean_on_the_committed_tree() -> None:
    r = cfai("render", "--check")
    assert r.returncode == 0, r.stdout + r.stderr


def test_render_check_fails_on_a_stale_tree_and_names_the_path(tmp_path: Path) -> None:
    write_stack(tmp_path, "dev", {"account_id": ACCOUNT, "workers": {"a": {"kind": "chat"}}})
    assert cfai("render", "--project", str(tmp_path)).returncode == 0
    index = tmp_path / "workers" / "a" / "index.js"
    assert index.is_file()
    assert cfai("render", "--check", "--project", str(tmp_path)).returncode == 0
    index.write_text(index.read_text() + "// edited by hand\n")
    r = cfai("render", "--check", "--project", str(tmp_path))
    assert r.returncode == 1
    assert "workers/a/index.js" in r.stderr
    # A config change makes the tree stale too (a setting: the stack's env, not the code),
    # and `cfai render` makes it fresh again.
    assert cfai("render", "--project", str(tmp_path)).returncode == 0
    write_stack(
        tmp_path,
        "dev",
        {"account_id": ACCOUNT, "workers": {"a": {"kind": "chat", "max_tokens": 100}}},
    )
    r = cfai("render", "--check", "--project", str(tmp_path))
    assert r.returncode == 1
    assert "workers/a/wrangler.jsonc" in r.stderr and "index.js" not in r.stderr
    assert cfai("render", "--project", str(tmp_path)).returncode == 0
    assert cfai("render", "--check", "--project", str(tmp_path)).returncode == 0


def test_render_writes_one_directory_per_worker_with_an_env_per_stack(tmp_path: Path) -> None:
    for stack, tokens in (("staging", 128), ("prod", 512)):
        write_stack(
            tmp_path,
            stack,
            {"account_id": ACCOUNT, "workers": {"a": {"kind": "chat", "max_tokens": tokens}}},
        )
    r = cfai("render", "--project", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "workers").iterdir()) == ["a"]
    config = (tmp_path / "workers" / "a" / "wrangler.jsonc").read_text()
    body = json.loads("\n".join(x for x in config.splitlines() if not x.startswith("//")))
    assert {s: e["vars"]["MAX_TOKENS"] for s, e in body["env"].items()} == {
        "prod": "512",
        "staging": "128",
    }
    assert body["env"]["prod"]["name"] == "acme-prod-a"
    # One stack re-rendered: its env changes, the other stack's stays.
    write_stack(
        tmp_path,
        "staging",
        {"account_id": ACCOUNT, "workers": {"a": {"kind": "chat", "max_tokens": 64}}},
    )
    assert cfai("render", "--stack", "staging", "--project", str(tmp_path)).returncode == 0
    config = (tmp_path / "workers" / "a" / "wrangler.jsonc").read_text()
    assert '"MAX_TOKENS": "64"' in config and '"MAX_TOKENS": "512"' in config
    assert cfai("render", "--check", "--project", str(tmp_path)).returncode == 0
    # Two stacks that would need different code for one Worker: exit 2 naming it.
    write_stack(tmp_path, "prod", {"account_id": ACCOUNT, "workers": {"a": {"kind": "image"}}})
    r = cfai("render", "--project", str(tmp_path))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "workers.a: stacks prod and staging render different code" in r.stderr
    assert "kind 'image' in prod, 'chat' in staging" in r.stderr


def test_render_out_dir_and_config_file(tmp_path: Path) -> None:
    config = tmp_path / "platform.yaml"
    config.write_text(
        yaml.safe_dump({"account_id": ACCOUNT, "workers": {"pics": {"kind": "image"}}})
    )
    r = cfai("render", "--config", str(config), "--out", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out" / "pics" / "index.js").is_file()
    assert (tmp_path / "out" / "pics" / "wrangler.jsonc").is_file()


def test_console_script_is_installed() -> None:
    exe = shutil.which("cfai", path=str(Path(sys.executable).parent))
    assert exe is not None
    r = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "render" in r.stdout
