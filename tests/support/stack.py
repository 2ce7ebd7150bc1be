"""The local stack's declaration for tests that run a variant of it in a folder of their own."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]

__all__ = ["local_stack"]


def local_stack(folder: Path) -> dict[str, Any]:
    """`Pulumi.local.yaml`'s platform mapping, with the files it names beside a declaration
    written in `folder` (the `tone` adapter its `support` Worker's finetune points at)."""
    data: dict[str, Any] = yaml.safe_load((REPO / "Pulumi.local.yaml").read_text())["config"][
        "cfai:platform"
    ]
    shutil.copytree(REPO / "src" / "adapters", folder / "src" / "adapters")
    return data
