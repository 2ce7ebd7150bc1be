"""The local platform's child processes: started detached with output to log files,
checked, stopped and reaped (`cfai.local.supervisor` starts and stops them; `LocalPlatform`
checks they are alive).
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

from cfai._files import private_file
from cfai.errors import ToolMissingError

__all__ = ["CHILDREN", "INHERITED_SECRETS", "alive", "forget", "spawn", "stop"]

#: Credentials a developer's shell may hold that no child inherits: the router and workerd
#: need none, and the emulator gets the one it needs (the remote AI token) passed in `env`.
INHERITED_SECRETS = frozenset(
    {
        "CLOUDFLARE_API_TOKEN",
        "CLOUDFLARE_API_KEY",
        "CF_API_TOKEN",
        "CF_API_KEY",
        "CFAI_REMOTE_AI_TOKEN",
        "PULUMI_ACCESS_TOKEN",
        "PULUMI_CONFIG_PASSPHRASE",
    }
)

# Children started by this process, kept so that their `Popen` objects are neither garbage
# collected while running (a ResourceWarning) nor left as zombies once stopped.
CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def spawn(
    argv: Sequence[str],
    *,
    cwd: Path,
    log: Path,
    env: Mapping[str, str],
    pass_fds: Sequence[int] = (),
) -> int:
    """Start `argv` in its own session (so `stop` takes its whole group), stdin closed,
    stdout and stderr appended to `log` (mode 600), `pass_fds` inherited, the environment
    this process's minus `INHERITED_SECRETS`, plus `env`; returns the pid."""
    inherited = {k: v for k, v in os.environ.items() if k not in INHERITED_SECRETS}
    with open(private_file(log), "ab") as out:
        try:
            proc = subprocess.Popen(
                list(argv),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**inherited, **env},
                start_new_session=True,
                pass_fds=tuple(pass_fds),
            )
        except FileNotFoundError:
            raise ToolMissingError(_not_found(argv[0])) from None
    CHILDREN[proc.pid] = proc
    return proc.pid


@atexit.register
def _release_children() -> None:
    # The platform's processes outlive the command that started them (`cfai local up`,
    # `cfai deploy --local` leave them serving): not a leak. Drop their `Popen` objects
    # without the "subprocess N is still running" ResourceWarning of `Popen.__del__`, which
    # an earlier in-process pytest run (the deploy's contract gate) can turn into a printed
    # "Exception ignored" at exit; CPython has no way to detach a Popen otherwise.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        CHILDREN.clear()


def _not_found(program: str) -> str:
    # A script whose interpreter is missing fails as if the script itself were: npm's
    # launchers start with `#!/usr/bin/env node`, so name the interpreter.
    try:
        with open(program, "rb") as f:
            first = f.readline(200)
    except OSError:
        return f"{program} is not installed; run `make setup`"
    interpreter = first[2:].decode("utf-8", "replace").split() if first.startswith(b"#!") else []
    name = interpreter[-1] if interpreter and interpreter[0].endswith("/env") else ""
    name = name or (interpreter[0] if interpreter else "")
    return f"{program} needs {name}, which is not installed or not on PATH" + (
        "; install Node.js 20 or newer" if name.endswith("node") else ""
    )


def alive(pid: int) -> bool:
    child = CHILDREN.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    # A zombie child still answers kill(0); reap it if it is ours.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return not _zombie(pid)


def _zombie(pid: int) -> bool:
    # Someone else's zombie (an orphan whose new parent has not reaped it yet) is dead too.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def stop(pid: int, timeout: float = 5.0) -> None:
    """SIGTERM the process group, SIGKILL it after `timeout`."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return
        time.sleep(0.05)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    while alive(pid) and time.monotonic() < deadline + timeout:
        time.sleep(0.05)


def forget(pid: int) -> None:
    """Drop (and reap) a stopped child."""
    child = CHILDREN.pop(pid, None)
    if child is not None and child.poll() is None:
        child.kill()
        child.wait(timeout=5)
