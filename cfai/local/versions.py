"""Versions of the local platform's Workers, through the Workers scripts API.

`cfai deploy --local` makes the calls a cloud rollout makes (pulumi-cloudflare's
``WorkerVersion`` and ``WorkersDeployment``): ``POST /workers/workers/{script}/versions``
uploads a version that serves nothing yet, ``POST /workers/scripts/{script}/deployments``
moves traffic by percentage. Behind the API the emulator's runtime (`cfai.local.runtime`)
starts a workerd process per version and rewrites the router's table; a version taken out
of the deployment stops after a drain. Only the wait for that stop reads local state (the
run record): Cloudflare has no such call.

`cfai.local.platform.LocalPlatform` is the public face (`start_version`, `set_split`,
`stop_version`, `current_version`).

Example::

    versions = ScriptVersions(StateFiles(state_dir), state_dir / "outputs.json")
    new = versions.upload(rendered, auth_token)
    versions.split("acme-chat", {old: 90, new: 10})
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cfai.errors import LocalPlatformError
from cfai.local.runtime import process_name
from cfai.local.state import StateFiles
from cfai.outputs import Outputs
from cfai.provision.rest import CloudflareApiError, CloudflareClient
from cfai.provision.scripts import modules_of
from cfai.provision.settings import script_upload, uploaded_version_sha256
from cfai.render import RenderedWorker, module_sha256

__all__ = ["DeployedScript", "LiveVersion", "ScriptVersions"]


@dataclass(frozen=True)
class LiveVersion:
    """The version serving most of a Worker's traffic: its id, the template hash of its
    main module (what ``/health`` reports) and the `RenderedWorker.version_sha256` cfai
    uploaded it as ("" when another client uploaded it)."""

    id: str
    sha256: str
    version_sha256: str = ""


@dataclass(frozen=True)
class DeployedScript:
    """What a script serves, read back through the API: the template hash of its main
    module (``GET .../content/v2``) and its bindings as ``(type, name)`` (``GET
    .../settings``; values are not compared: secrets are write-only)."""

    sha256: str
    bindings: frozenset[tuple[str, str]]


class ScriptVersions:
    """Versions and deployments of one running platform's scripts, over the REST API of
    its emulator (the outputs map at `outputs_path` holds its token and account)."""

    def __init__(self, files: StateFiles, outputs_path: Path) -> None:
        self.files = files
        self.outputs_path = outputs_path

    def client(self) -> CloudflareClient:
        """The REST client of the running emulator."""
        run = self.files.read_run()
        api = Outputs.read(self.outputs_path).api if self.outputs_path.is_file() else None
        if run is None or api is None:
            raise LocalPlatformError(f"the local platform in {self.files.state_dir} is not running")
        return CloudflareClient(
            f"http://127.0.0.1:{run.emulator_port}/client/v4",
            token=api.token,
            account_id=api.account_id,
            max_retries=2,
        )

    def live(self, script: str) -> LiveVersion | None:
        """The deployed version at the highest percentage, read back (module included)."""
        with self.client() as cf:
            current = cf.workers.current(script)
            if current is None:
                return None
            vid = str(current["version_id"])
            version = cf.workers.version(script, vid, modules=True)
        main = _main_module(version)
        sha256 = module_sha256(main.decode("utf-8", errors="replace"))
        return LiveVersion(vid, sha256, uploaded_version_sha256(version))

    def upload(self, rendered: RenderedWorker, auth_token: str) -> str:
        """A new version of `rendered`'s script, started and serving nothing; its id."""
        with self.client() as cf:
            # Its static assets first (their upload session), as a deploy of them does.
            jwt = None
            if rendered.assets is not None:
                jwt = cf.workers.upload_assets(rendered.script_name, rendered.assets)
            upload = script_upload(rendered, auth_token, assets_jwt=jwt)
            result = cf.workers.upload_version(rendered.script_name, upload)
        return str(result["id"])

    def split(self, script: str, weights: Mapping[str, int]) -> None:
        """Deploy `weights` (version id -> percent); ValueError naming unknown versions."""
        try:
            with self.client() as cf:
                cf.workers.deploy(script, dict(weights))
        except CloudflareApiError as err:
            if err.not_found:
                raise ValueError(f"{script}: no version {sorted(weights)} ({err})") from None
            raise

    def deployed(self, script: str) -> dict[str, int]:
        """The split of the latest deployment (empty when none)."""
        with self.client() as cf:
            found = cf.workers.deployments(script)
        if not found:
            return {}
        return {str(v["version_id"]): round(v["percentage"]) for v in found[0]["versions"]}

    def deployed_script(self, script: str) -> DeployedScript | None:
        """What `script` serves (None: no such script)."""
        try:
            with self.client() as cf:
                content = cf.workers.content(script)
                settings = cf.workers.settings(script)
        except CloudflareApiError as err:
            if err.not_found:
                return None
            raise
        bindings = frozenset(
            (str(b.get("type")), str(b.get("name"))) for b in settings.get("bindings") or []
        )
        text = content.main.decode("utf-8", errors="replace")
        return DeployedScript(module_sha256(text), bindings)

    def wait_stopped(self, version_id: str, timeout: float) -> None:
        """Until the runtime stopped `version_id`'s process (it drains first)."""
        name = process_name(version_id)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.files.read_run()
            if run is None or name not in run.pids:
                return
            time.sleep(0.05)
        raise LocalPlatformError(f"version {version_id[:8]} still runs after {timeout:.0f}s")


def _main_module(version: Mapping[str, Any]) -> bytes:
    return modules_of(version).get(str(version.get("main_module")), b"")
