"""Typed platform declaration: models, loading and cross-checks.

Gateways, indexes, finetunes and the platform are declared here; each Worker kind's own model lives
with its kind (`cfai.kinds.chat.ChatWorkerConfig`, ...), and `workers:` entries validate
as the union of every registered kind's model.

Example::

    from cfai.config import load_stack
    platform = load_stack("staging")
    platform.workers["assistant"].kind
"""

from cfai.config.finetunes import FinetuneConfig
from cfai.config.loader import (
    CONFIG_KEY,
    PROJECT_FILE,
    discover_stacks,
    find_project,
    load_declaration,
    load_file,
    load_platform,
    load_stack,
    project_name,
    stack_file,
)
from cfai.config.models import (
    INDEX_PRESETS,
    AnyWorkerConfig,
    GatewayConfig,
    IndexConfig,
    PlatformConfig,
    RateLimitConfig,
)
from cfai.kinds.base import WorkerConfig

__all__ = [
    "CONFIG_KEY",
    "INDEX_PRESETS",
    "PROJECT_FILE",
    "AnyWorkerConfig",
    "FinetuneConfig",
    "GatewayConfig",
    "IndexConfig",
    "PlatformConfig",
    "RateLimitConfig",
    "WorkerConfig",
    "discover_stacks",
    "find_project",
    "load_declaration",
    "load_file",
    "load_platform",
    "load_stack",
    "project_name",
    "stack_file",
]
