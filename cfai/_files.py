"""Files that hold secrets (tokens, outputs maps): written readable by the owner only."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["write_private_json"]


def write_private_json(path: Path, data: Any, *, indent: int | None = None) -> None:
    """Write `data` as JSON to `path` with mode 600 from the first byte (no window in which
    another user could read it)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT: narrow it
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=indent, sort_keys=indent is not None)
