"""The cfai command's exit codes and messages, run as a user runs it (a subprocess)."""

from __future__ import annotations

import json
import os
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


def test_validate_from_a_subfolder_finds_the_project() -> None:
    # As git and pulumi do: the project is the nearest folder above holding Pulumi.yaml.
    r = cfai("validate", cwd=REPO / "docs")
    assert r.returncode == 0, r.stderr
    for stack in ("local", "staging", "prod"):
        assert f"ok {stack}:" in r.stdout


def test_validate_outside_any_project_says_no_project_was_found(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    r = cfai("validate", cwd=tmp_path / "sub")
    assert r.returncode == 2
    assert f"no cfai project found in {(tmp_path / 'sub').resolve()}" in r.stderr
    assert "Pulumi.yaml" in r.stderr and "0 problems" not in r.stderr


def test_pattern_errors_say_the_rule_in_words_and_the_value(tmp_path: Path) -> None:
    write_stack(
        tmp_path,
        "dev",
        {
            "account_id": ACCOUNT,
            "name_prefix": "Acme_Staging",
            "compatibility_date": "1 Sep 2025",
            "workers": {"a": {"kind": "chat"}},
        },
    )
    r = cfai("validate", "--project", str(tmp_path))
    assert r.returncode == 2
    assert (
        "name_prefix: 'Acme_Staging' is not allowed: use lowercase letters, digits and '-', "
        "starting with a letter or digit" in r.stderr
    )
    assert "compatibility_date: '1 Sep 2025' is not allowed: use a date written YYYY-MM-DD" in (
        r.stderr
    )
    assert "^*$" not in r.stderr and "should match pattern" not in r.stderr


def test_make_setup_checks_every_prerequisite_first(tmp_path: Path) -> None:
    # A machine with Python 3.9 and without Node.js: one message naming all three, before
    # anything is installed (not `make: npm: No such file or directory` after the pip step).
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("make", "sh", "env"):
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    python3 = bin_dir / "python3"
    python3.write_text('#!/bin/sh\ncase "$*" in *print*) echo 3.9;; *) exit 1;; esac\n')
    python3.chmod(0o755)
    project = tmp_path / "clone"
    project.mkdir()
    for name in ("Makefile", "pyproject.toml", "constraints.txt", "package.json"):
        shutil.copy(REPO / name, project / name)
    shutil.copy(REPO / "package-lock.json", project / "package-lock.json")
    r = subprocess.run(
        ["make", "setup"],
        cwd=project,
        env={"PATH": str(bin_dir)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode != 0
    assert "make setup cannot start; install these first:" in r.stderr
    assert "python3 is Python 3.9; cfai needs 3.11 or newer" in r.stderr
    assert "node (Node.js 20 or newer): not found" in r.stderr
    assert "npm (comes with Node.js): not found" in r.stderr
    assert not (project / ".venv").exists() and not (project / "node_modules").exists()


def test_render_tests_without_node_say_what_to_install(tmp_path: Path) -> None:
    # The suite on a machine without Node.js: a clear failure, not FileNotFoundError: 'node'.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x",
         "tests/render/test_render_routes.py"],
        cwd=REPO,
        env={**os.environ, "PATH": str(bin_dir)},
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert r.returncode == 1, r.stdout[-2000:]
    assert "node (Node.js 20 or newer) is not on PATH" in r.stdout
    assert "FileNotFoundError" not in r.stdout


def test_help_shows_no_type_on_flags() -> None:
    # `--demo <bool>` reads as if a value were expected; flags take none.
    r = cfai("local", "up", "--help", cwd=REPO)
    assert r.returncode == 0, r.stderr
    assert "<bool>" not in r.stdout
    demo = next(line for line in r.stdout.splitlines() if "--demo" in line)
    assert "Load demo documents" in demo
    assert "<int>" in next(line for line in r.stdout.splitlines() if "--port" in line)


def test_version_prints_the_installed_version() -> None:
    from importlib.metadata import version

    r = cfai("--version")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"cfai {version('cfai')}"


def test_shell_completion_completes_verbs_and_subverbs() -> None:
    # What bash's completion script (`cfai --show-completion bash`) asks the command.
    script = Path(sys.executable).with_name("cfai")
    shown = subprocess.run(
        [str(script), "--show-completion", "bash"], capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 0 and "_cfai_completion" in shown.stdout

    def complete(words: str, cword: int) -> list[str]:
        env = {
            **os.environ,
            "_CFAI_COMPLETE": "complete_bash",
            "COMP_WORDS": words,
            "COMP_CWORD": str(cword),
        }
        r = subprocess.run([str(script)], env=env, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        return r.stdout.split()

    assert sorted(complete("cfai lo", 1)) == ["local", "logs"]
    assert complete("cfai local st", 2) == ["status"]
