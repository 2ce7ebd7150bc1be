"""The emulated Workers scripts API: uploads, versions, deployments and settings of Worker
scripts, in SQLite, run by a `ScriptRuntime` (workerd processes behind the router, see
`cfai.local.runtime`).

Example::

    ctx = EmulatorContext(state_dir=Path(".cfai/local"), account_id="0" * 32, api_token="t")
    scripts = WorkersScriptsService(ctx)
    routes = scripts.endpoints()        # the REST API, for the front door
"""

from __future__ import annotations

from cfai.local.services.workers_scripts._model import (
    Deployment,
    Module,
    RunnableVersion,
    Script,
    ScriptRuntime,
    StartupFailed,
    Version,
)
from cfai.local.services.workers_scripts._upload import PLAIN_TYPES, module_kind
from cfai.local.services.workers_scripts.service import (
    WorkersScriptsService,
    WorkersScriptsSettings,
)
from cfai.local.services.workers_scripts.store import ScriptsStore

__all__ = [
    "PLAIN_TYPES",
    "Deployment",
    "Module",
    "RunnableVersion",
    "Script",
    "ScriptRuntime",
    "ScriptsStore",
    "StartupFailed",
    "Version",
    "WorkersScriptsService",
    "WorkersScriptsSettings",
    "module_kind",
]
