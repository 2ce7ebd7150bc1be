"""The rules of the Workers scripts API: every change checked, started, stored and routed.

Every change follows one order: check the upload (`_upload.check`), start its Worker when
a runtime is attached (a Worker that does not start is refused with workerd's own words,
10021, and nothing is stored), commit it, then hand the script's state to the runtime
(`ScriptRuntime.route`): the versions of its latest deployment serve by their percentages,
on a public port when workers.dev is enabled; the newest version uploaded since that
deployment stays warm; every other version of the script stops after a drain.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from anyio import to_thread

from cfai.local.services.base import EmulatorContext
from cfai.local.services.frontdoor import ApiError
from cfai.local.services.vectorize import VectorizeService
from cfai.local.services.workers_scripts import _errors as E
from cfai.local.services.workers_scripts._assets import AssetStore, check_assets
from cfai.local.services.workers_scripts._model import (
    Deployment,
    Module,
    RunnableVersion,
    Script,
    ScriptRuntime,
    StartupFailed,
    Version,
    runnable,
)
from cfai.local.services.workers_scripts._upload import PLAIN_TYPES, check
from cfai.local.services.workers_scripts.store import ScriptsStore

__all__ = ["Scripts"]

log = logging.getLogger("cfai.local.emulator")
# Cloudflare's script names: lowercase letters, digits, - and _ (a workers.dev label).
_NAME = re.compile(r"^[a-z0-9_][a-z0-9_-]{0,62}$")


class Scripts:
    """Worker scripts, their versions and deployments: `store` and the runtime's state."""

    def __init__(
        self, ctx: EmulatorContext, store: ScriptsStore, subdomain: str, assets: AssetStore
    ) -> None:
        self.ctx = ctx
        self.store = store
        self.assets = assets
        self.subdomain = subdomain
        self.runtime: ScriptRuntime | None = None
        # One change at a time: a script's state is checked, stored and routed in order.
        self._changes = asyncio.Lock()
        self._routing = threading.Lock()

    # -- the runtime ---------------------------------------------------------------------

    def use_runtime(self, runtime: ScriptRuntime) -> threading.Thread:
        """Run what is deployed on `runtime` from now on; restores the deployed scripts
        in a background thread (returned)."""
        self.runtime = runtime
        thread = threading.Thread(target=self._restore, name="restore-scripts", daemon=True)
        thread.start()
        return thread

    def _restore(self) -> None:
        runtime = self.runtime
        if runtime is None:
            return
        scripts = self.store.scripts()
        deployed = []
        for script in scripts:
            latest = self.store.latest_deployment(script.name)
            deployed += [self.runnable(script.name, v) for v in latest.split] if latest else []

        def start(version: RunnableVersion) -> None:
            try:
                runtime.start(version)
            except StartupFailed as failed:
                log.error("version %s of %s does not start: %s", version.version_id,
                          version.script, failed.message)  # fmt: skip

        # Every deployed version starts at once; then each script is routed.
        threads = [threading.Thread(target=start, args=(v,), daemon=True) for v in deployed]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for script in scripts:
            try:
                self._route(script.name)
            except Exception:
                log.exception("could not restore Worker %s", script.name)

    def _route(self, name: str) -> None:
        """Hand `name`'s stored state to the runtime (blocking). The state is read under
        the lock: whoever routes last routes the latest committed state."""
        with self._routing:
            runtime, script = self.runtime, self.store.script(name)
            if runtime is None:
                return
            if script is None:
                runtime.forget(name)
                return
            deployment = self.store.latest_deployment(name)
            pending = self.store.pending(name)
            split = deployment.split if deployment else {}
            versions = [self.runnable(name, vid) for vid in split]
            keep = [pending.id] if pending else []
            runtime.route(name, split, versions, public=script.subdomain_enabled, keep=keep)

    async def apply(self, name: str) -> None:
        """`_route` off the event loop."""
        await to_thread.run_sync(self._route, name)

    def runnable(self, name: str, version_id: str) -> RunnableVersion:
        version = self.store.version(name, version_id)
        if version is None:
            raise E.no_version(name, version_id)
        return runnable(
            name, version_id, version.metadata, self.store.modules(version_id), self.assets.blob
        )

    # -- reads ---------------------------------------------------------------------------

    def script(self, name: str) -> Script:
        found = self.store.script(name)
        if found is None:
            raise E.script_not_found()
        return found

    def serving(self, name: str) -> Version | None:
        """The version at the highest percentage of the latest deployment (else the newest)."""
        deployment = self.store.latest_deployment(name)
        if deployment is not None:
            return self.store.version(name, deployment.serving)
        newest = self.store.versions(name, limit=1)
        return newest[0] if newest else None

    def loaded_modules(self, version: Version) -> list[Module]:
        """A version's modules as the runtime loads them (a file edited behind the API's
        back shows here), else as stored."""
        modules = self.store.modules(version.id)
        if self.runtime is None:
            return modules
        out = []
        for m in modules:
            data = self.runtime.loaded(version.id, m.name)
            out.append(m if data is None else Module(m.name, m.content_type, data))
        return out

    # -- changes -------------------------------------------------------------------------

    def _bindable(self, binding: Mapping[str, Any]) -> str | None:
        kind = str(binding["type"])
        if kind in PLAIN_TYPES:
            return None
        backed = self.ctx.binding_types()
        if kind not in backed:
            supported = ", ".join(sorted({*PLAIN_TYPES, *backed}))
            return f"is not supported by the cfai local platform (supported: {supported})"
        if kind in VectorizeService.binding_types:
            index = str(binding["index_name"])
            try:
                self.ctx.service(VectorizeService).store.get_index(index)
            except ApiError:
                return f"must have a valid `index_name` specified: no index {index!r} exists"
        return None

    async def upload(
        self,
        name: str,
        metadata: Mapping[str, Any],
        modules: Sequence[Module],
        *,
        deploy: bool,
        source: str,
        strict_inherit: bool = False,
        must_exist: bool = False,
    ) -> tuple[Version, int]:
        """Check, start and store a new version of `name` (a new script unless
        `must_exist`); with `deploy` it serves 100% at once. Returns it and its startup ms."""
        if not _NAME.fullmatch(name):
            raise E.invalid(
                f"Worker name {name!r} is invalid: lowercase letters, digits, '-' and '_', "
                "at most 63"
            )
        async with self._changes:
            if must_exist:
                self.script(name)
            previous = self.serving(name)
            kept = previous.metadata.get("assets") if previous is not None else None
            draft = check(
                metadata,
                modules,
                previous=previous,
                strict_inherit=strict_inherit,
                bindable=self._bindable,
                assets=check_assets(metadata, self.assets, name, kept),
            )
            vid = str(uuid.uuid4())
            startup = await self._start(
                runnable(name, vid, draft.metadata, draft.modules, self.assets.blob)
            )
            try:
                version = self.store.add_version(
                    name,
                    draft.metadata,
                    draft.modules,
                    source=source,
                    startup_ms=startup,
                    annotations=draft.annotations,
                    version_id=vid,
                    deploy=deploy,
                )
                if draft.settings:
                    self.store.patch_settings(name, draft.settings)
            except BaseException:
                if self.runtime is not None:
                    self.runtime.discard(vid)
                raise
            await self.apply(name)
            return version, startup

    async def _start(self, version: RunnableVersion) -> int:
        runtime = self.runtime
        if runtime is None:
            return 0
        try:
            ms = await to_thread.run_sync(runtime.start, version)
        except StartupFailed as failed:
            raise E.invalid(failed.message) from None
        return max(1, round(ms))

    async def deploy(
        self,
        name: str,
        versions: Sequence[tuple[str, float]],
        *,
        source: str,
        annotations: Mapping[str, Any] | None = None,
    ) -> Deployment:
        """A new deployment of `name`: `versions` (id, percent) checked as Cloudflare does."""
        async with self._changes:
            self.script(name)
            if not 1 <= len(versions) <= E.MAX_DEPLOYMENT_VERSIONS:
                raise E.invalid(
                    f"a deployment has 1 to {E.MAX_DEPLOYMENT_VERSIONS} versions, "
                    f"got {len(versions)}"
                )
            ids = [v for v, _ in versions]
            if len(set(ids)) != len(ids):
                raise E.invalid("a deployment names each version once")
            if any(not 0 <= p <= 100 for _, p in versions):
                raise E.invalid("percentage: expected a number from 0 to 100")
            if abs(sum(p for _, p in versions) - 100) > 1e-6:
                raise E.invalid("the percentages of a deployment must add up to 100")
            deployable = {v.id for v in self.store.versions(name, limit=E.DEPLOYABLE_VERSIONS)}
            for vid in ids:
                if self.store.version(name, vid) is None:
                    raise E.no_version(name, vid)
                if vid not in deployable:
                    raise E.invalid(
                        f"version {vid} is older than the last {E.DEPLOYABLE_VERSIONS} "
                        "uploads and cannot be deployed"
                    )
            deployment = self.store.add_deployment(
                name, versions, source=source, annotations=annotations
            )
            await self.apply(name)
            return deployment

    async def set_subdomain(self, name: str, enabled: bool, previews: bool | None) -> Script:
        async with self._changes:
            script = self.script(name)
            keep = script.previews_enabled if previews is None else previews
            self.store.set_subdomain(name, enabled, keep)
            await self.apply(name)
            return self.script(name)

    async def delete(self, name: str) -> None:
        async with self._changes:
            self.script(name)
            if self.runtime is not None:
                await to_thread.run_sync(self.runtime.forget, name)
            self.store.delete_script(name)

    async def delete_deployment(self, name: str, deployment_id: str) -> None:
        async with self._changes:
            self.script(name)
            latest = self.store.latest_deployment(name)
            if self.store.deployment(name, deployment_id) is None:
                raise E.no_deployment(name, deployment_id)
            if latest is not None and latest.id == deployment_id:
                raise E.invalid("the latest deployment cannot be deleted; deploy another first")
            self.store.delete_deployment(deployment_id)

    def reset(self) -> None:
        """Stop and forget every script."""
        if self.runtime is not None:
            for script in self.store.scripts():
                self.runtime.forget(script.name)
        self.store.reset()
        self.assets.reset()

    def close(self) -> None:
        if self.runtime is not None:
            self.runtime.close()
        self.store.close()
        self.assets.close()
