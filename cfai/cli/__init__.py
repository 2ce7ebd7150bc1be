"""The `cfai` command: thin verbs over the toolkit, no logic of their own.

User errors (`CfaiError` with ``user_fault``) print their problems and exit 2 without a
traceback; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from cfai.cli import _config, _local, _logs, _models, _ops  # noqa: F401  (each registers its verbs)
from cfai.cli._common import app

__all__ = ["app", "main"]


def main() -> None:
    app()
