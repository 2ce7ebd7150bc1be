"""The Workers scripts service: settings, store, routes and the runtime that runs what is
deployed.

Without a runtime (an emulator built in a test) scripts are stored and answered but not
run. With one (`use_runtime`), what the store says is deployed is restored in the
background, so a restarted emulator serves its scripts again, and every later change runs.

Example::

    service = WorkersScriptsService(ctx)
    service.use_runtime(runtime)            # cfai.local.runtime.WorkersRuntime
    routes = service.endpoints()            # the REST API, for the front door
"""

from __future__ import annotations

import threading
from typing import ClassVar

from pydantic import Field

from cfai.local.services.base import EmulatorContext, Service, ServiceSettings
from cfai.local.services.frontdoor import Endpoint
from cfai.local.services.workers_scripts._assets import AssetStore
from cfai.local.services.workers_scripts._model import ScriptRuntime
from cfai.local.services.workers_scripts._ops import Scripts
from cfai.local.services.workers_scripts.routes import endpoints
from cfai.local.services.workers_scripts.store import ScriptsStore

__all__ = ["WorkersScriptsService", "WorkersScriptsSettings"]


class WorkersScriptsSettings(ServiceSettings):
    """``workers_subdomain``: the account's workers.dev subdomain, as
    ``GET /workers/subdomain`` answers it (wrangler prints ``<script>.<it>.workers.dev``);
    ``workers_drain``: seconds a version taken out of a deployment keeps running for the
    requests already sent to it."""

    workers_subdomain: str = "cfai-local"
    workers_drain: float = Field(0.5, ge=0, le=60)


class WorkersScriptsService(Service):
    """Worker scripts, their versions and deployments. State:
    ``<state_dir>/workers_scripts.sqlite3`` (mode 600: it holds secret bindings), static
    asset files by hash in ``workers_assets.sqlite3``."""

    name: ClassVar[str] = "workers_scripts"
    settings_model: ClassVar[type[ServiceSettings]] = WorkersScriptsSettings

    def __init__(self, ctx: EmulatorContext) -> None:
        super().__init__(ctx)
        self.settings = WorkersScriptsSettings.model_validate(ctx.settings)
        self.store = ScriptsStore(ctx.state_dir / "workers_scripts.sqlite3")
        self.scripts = Scripts(
            ctx,
            self.store,
            self.settings.workers_subdomain,
            AssetStore(ctx.state_dir / "workers_assets.sqlite3"),
        )

    def endpoints(self) -> list[Endpoint]:
        return endpoints(self.scripts)

    def use_runtime(self, runtime: ScriptRuntime) -> threading.Thread:
        """Run what is deployed on `runtime` from now on; restores the deployed scripts
        in a background thread (returned)."""
        return self.scripts.use_runtime(runtime)

    def reset(self) -> None:
        self.scripts.reset()

    def close(self) -> None:
        self.scripts.close()
