"""What the local platform leaves on disk and in its processes' environments.

Reproduction from issue 11, "file modes and environments": the gateway log and vector
databases (prompts, documents) were 644 in 755 folders, a 644 outputs.json stayed 644 when
rewritten, and ``CLOUDFLARE_API_TOKEN`` from the developer's shell was in the router's and
workerd's environment.
"""

from __future__ import annotations

import os
import shutil
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from support.stack import local_stack

from cfai.config import load_file
from cfai.local import LocalPlatform

pytestmark = pytest.mark.platform

REPO = Path(__file__).resolve().parents[2]
SHELL_TOKEN = "cf-shell-token-" + uuid.uuid4().hex
# Files whose content is secret or private: tokens, keys, prompts, documents, logs.
PRIVATE = ("*.sqlite3", "*.sqlite3-wal", "*.sqlite3-shm", "outputs.json", "secrets.json",
           "binding.key", "*.capnp", "*.log")  # fmt: skip


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A platform started over the state an older cfai left readable by all, from a shell
    holding a Cloudflare API token; its state directory."""
    src = tmp_path_factory.mktemp("files")
    data = local_stack(src)
    del data["workers"]["studio"]
    (src / "platform.yaml").write_text(yaml.safe_dump(data))
    platform = LocalPlatform(REPO, f"pytest-files-{os.getpid()}")
    platform.state_dir.mkdir(parents=True)
    platform.state_dir.chmod(0o755)
    for name in ("outputs.json", "vectorize.sqlite3-wal", "ai_gateway.sqlite3-shm"):
        (platform.state_dir / name).write_bytes(b"")
        (platform.state_dir / name).chmod(0o644)
    before = os.environ.get("CLOUDFLARE_API_TOKEN")
    os.environ["CLOUDFLARE_API_TOKEN"] = SHELL_TOKEN
    try:
        platform.up(load_file(src / "platform.yaml"), timeout=60)
        yield platform.state_dir
    finally:
        os.environ.pop("CLOUDFLARE_API_TOKEN")
        if before is not None:
            os.environ["CLOUDFLARE_API_TOKEN"] = before
        platform.down()
        shutil.rmtree(platform.state_dir, ignore_errors=True)


def test_the_state_directory_and_its_private_files_are_the_owners_only(state: Path) -> None:
    assert mode(state) == 0o700
    found = {path for pattern in PRIVATE for path in state.glob(pattern)}
    names = {path.name for path in found}
    assert {"vectorize.sqlite3", "ai_gateway.sqlite3", "outputs.json", "emulator.log"} <= names
    assert {"vectorize.sqlite3-wal", "ai_gateway.sqlite3-wal"} <= names  # WAL in use
    for path in sorted(found):
        assert mode(path) == 0o600, (path.name, oct(mode(path)))


def test_no_process_of_the_platform_inherits_the_shells_token(state: Path) -> None:
    status = LocalPlatform(REPO, state.name).status()
    assert {"emulator", "router"} <= status.processes.keys()
    assert any(name.startswith("workerd-") for name in status.processes)  # one per version
    for name, process in status.processes.items():
        environ = Path(f"/proc/{process.pid}/environ").read_bytes()
        assert SHELL_TOKEN.encode() not in environ, name


def test_a_program_whose_interpreter_is_missing_is_named_with_it(tmp_path: Path) -> None:
    from cfai.errors import ToolMissingError
    from cfai.local.processes import spawn

    script = tmp_path / "workerd"
    script.write_text("#!/nonexistent/bin/node\n")
    script.chmod(0o755)
    with pytest.raises(ToolMissingError, match=r"needs /nonexistent/bin/node.*install Node\.js"):
        spawn([str(script)], cwd=tmp_path, log=tmp_path / "log", env={})
