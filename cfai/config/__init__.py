"""Typed platform declaration: models, loading and cross-checks.

Example::

    from cfai.config import load_stack
    platform = load_stack("staging")
    platform.workers["assistant"].model
"""

from cfai.config.loader import (
    CONFIG_KEY,
    discover_stacks,
    load_file,
    load_platform,
    load_stack,
    project_name,
    stack_file,
)
from cfai.config.models import (
    INDEX_PRESETS,
    ChatWorker,
    CustomBindings,
    CustomWorker,
    Gateway,
    GatewayRef,
    ImageWorker,
    Index,
    Platform,
    RagWorker,
    RateLimit,
    VectorizeRef,
    Worker,
    WorkerKind,
)

__all__ = [
    "CONFIG_KEY",
    "INDEX_PRESETS",
    "ChatWorker",
    "CustomBindings",
    "CustomWorker",
    "Gateway",
    "GatewayRef",
    "ImageWorker",
    "Index",
    "Platform",
    "RagWorker",
    "RateLimit",
    "VectorizeRef",
    "Worker",
    "WorkerKind",
    "discover_stacks",
    "load_file",
    "load_platform",
    "load_stack",
    "project_name",
    "stack_file",
]
