"""Worker kinds as plugins: one module per kind, one registry.

A kind (`cfai.kinds.base.Kind`) owns its declaration model, its template, its render
context and bindings, its cross-checks, its HTTP routes, its contract checks and
selections, its cost rule, its readiness probe and its example request. Config, render,
the contract suite, cost and the local platform loop over `KINDS`.

Adding a kind ``echo``: ``cfai/kinds/echo.py`` (an `EchoWorkerConfig` with
``kind: Literal["echo"]`` and an `EchoKind` instance ``KIND``), its template
``templates/workers/echo.js.j2``, its contract checks ``cfai/contract/checks/test_echo.py``,
its tests, and one line in `cfai.kinds.registry.KINDS`. What may differ between stacks
(model, limits, prompts) goes in `Rendering.settings` (vars the template reads), never in
the template context: one Worker's module is the same in every stack (``workers/<key>/``).

Example::

    from cfai.kinds import kind_for

    kind = kind_for("chat")
    [f"{r.method} {r.path}" for r in kind.routes]   # ["GET /health", "POST /chat", ...]
"""

from cfai.kinds.base import (
    HEALTH,
    Binding,
    CheckContext,
    ConfigModel,
    Example,
    Kind,
    KindCost,
    ModelUse,
    Readiness,
    RenderContext,
    Rendering,
    Route,
    Selection,
    WorkerConfig,
)
from cfai.kinds.registry import (
    KINDS,
    declared_models,
    example_for,
    examples_for,
    kind_for,
    kind_names,
    worker_notices,
)

__all__ = [
    "HEALTH",
    "KINDS",
    "Binding",
    "CheckContext",
    "ConfigModel",
    "Example",
    "Kind",
    "KindCost",
    "ModelUse",
    "Readiness",
    "RenderContext",
    "Rendering",
    "Route",
    "Selection",
    "WorkerConfig",
    "declared_models",
    "example_for",
    "examples_for",
    "kind_for",
    "kind_names",
    "worker_notices",
]
