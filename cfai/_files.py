"""Files and folders that hold secrets (tokens, outputs maps, prompts and documents in the
emulator's databases): readable by the owner only, whatever the umask and however they were
left by an older cfai."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["private_dir", "private_file", "write_private_json"]


def write_private_json(path: Path, data: Any, *, indent: int | None = None) -> None:
    """Write `data` as JSON to `path` with mode 600 from the first byte (no window in which
    another user could read it)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT: narrow it
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=indent, sort_keys=indent is not None)


def private_dir(path: Path) -> Path:
    """`path` as a folder with mode 700 (made with its parents when missing, narrowed when
    it exists)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def private_file(path: Path) -> Path:
    """`path` as a file with mode 600, created empty when missing (so that what opens it
    next, SQLite say, never finds it readable by others)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    return path
