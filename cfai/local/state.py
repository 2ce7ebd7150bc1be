"""The local platform's state files under ``.cfai/<stack>/``: one typed model each, read and
written here only.

- ``run.json`` (`RunRecord`): the pid of every process of the run, the emulator's port, the
  run's fingerprint and the ``--port`` asked for;
- ``routes.json`` (`Routes`): the router's table, each Worker's public port, its versions
  (which workerd process serves each, on which private port) and the traffic split;
- ``secrets.json`` (`Secrets`): the local API token and the Workers' auth token, made once
  and kept (mode 600) so the outputs stay the same across restarts.

The state directory itself is kept at mode 700: it also holds the emulator's databases
(prompts, documents), its binding key and the logs.

The outputs map (``outputs.json``) is read by tools outside cfai, so its model lives in
`cfai.outputs`. Every process of the platform is a reader: the router parses ``routes.json``
whenever it changes, so `StateFiles.write_routes` replaces it atomically.

Example::

    files = StateFiles(Path(".cfai/local"))
    run = files.read_run()                    # None when nothing was started
    routes = files.read_routes()
    routes.workers["assistant"].split         # {"<version id>": 100}
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cfai._files import private_dir, write_private_json
from cfai.errors import LocalPlatformError

__all__ = [
    "FIRST_PROCESS",
    "Routes",
    "RunRecord",
    "Secrets",
    "StateFiles",
    "VersionRoute",
    "WorkerRoute",
    "read_routes",
]

#: The workerd process `cfai local up` starts with every Worker's first version.
FIRST_PROCESS = "workerd"


class _State(BaseModel):
    # Written and read by the same cfai; a field it does not know is a newer file's.
    model_config = ConfigDict(extra="ignore")


class RunRecord(_State):
    """The processes of one run (by name: ``emulator``, ``router``, ``workerd``,
    ``workerd-<id8>`` for each later version) and what the run was started from."""

    pids: dict[str, int] = Field(default_factory=dict)
    emulator_port: int
    fingerprint: str = ""
    port: int | None = Field(None, description="the --port asked for (None: free ports)")


class VersionRoute(_State):
    """One version of a Worker: where it listens and in which workerd process."""

    upstream: str = Field(description="host:port of the version's private listener")
    sha256: str
    process: str
    # The router cuts a body off past it; the default is Cloudflare's own request body limit
    # (https://developers.cloudflare.com/workers/platform/limits/#request-limits).
    max_request_bytes: int = Field(100 * 1024 * 1024, ge=0)

    @property
    def port(self) -> int:
        return int(self.upstream.rsplit(":", 1)[1])


class WorkerRoute(_State):
    """One Worker behind the router: its public port, versions and split (percent by id)."""

    script_name: str
    port: int
    versions: dict[str, VersionRoute] = Field(default_factory=dict)
    split: dict[str, int] = Field(default_factory=dict)


class Routes(_State):
    """The router's table, by Worker key."""

    workers: dict[str, WorkerRoute] = Field(default_factory=dict)

    def processes(self) -> set[str]:
        """The workerd processes some version of some Worker lives in."""
        return {v.process for w in self.workers.values() for v in w.versions.values()}


class Secrets(_State):
    """The local REST API's token and the Workers' bearer token."""

    api_token: str = Field(repr=False)
    auth_token: str = Field(repr=False)

    @classmethod
    def new(cls) -> Secrets:
        return cls(api_token=secrets.token_urlsafe(24), auth_token=secrets.token_urlsafe(24))


_M = TypeVar("_M", bound=_State)


class StateFiles:
    """The state files of one local platform's state directory."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.run_path = state_dir / "run.json"
        self.routes_path = state_dir / "routes.json"
        self.secrets_path = state_dir / "secrets.json"

    # -- run.json ------------------------------------------------------------------------
    def read_run(self) -> RunRecord | None:
        """The run record, None when nothing was started (or the last run was stopped)."""
        text = _read(self.run_path)
        return None if text is None else _parse(RunRecord, text, self.run_path)

    def write_run(self, run: RunRecord) -> None:
        private_dir(self.state_dir)
        _replace(self.run_path, run.model_dump_json())

    def forget_run(self) -> None:
        self.run_path.unlink(missing_ok=True)

    # -- routes.json ---------------------------------------------------------------------
    def read_routes(self) -> Routes:
        """The routing table (empty when none was written)."""
        return read_routes(self.routes_path)

    def write_routes(self, routes: Routes) -> None:
        """Replace the table atomically: the router reads the old or the new, never half."""
        private_dir(self.state_dir)
        _replace(self.routes_path, routes.model_dump_json(indent=2))

    # -- secrets.json --------------------------------------------------------------------
    def secrets(self) -> Secrets:
        """The tokens of this state directory, made (mode 600) on first use."""
        text = _read(self.secrets_path)
        if text is not None:
            return _parse(Secrets, text, self.secrets_path)
        made = Secrets.new()
        private_dir(self.state_dir)
        write_private_json(self.secrets_path, made.model_dump())
        return made


def read_routes(path: Path) -> Routes:
    """The routing table in `path` (empty when none was written); what the router reads."""
    text = _read(path)
    return Routes() if text is None else _parse(Routes, text, path)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def _parse(model: type[_M], text: str, path: Path) -> _M:
    try:
        return model.model_validate_json(text)
    except ValidationError as err:
        # Written by cfai only: a damaged file is a crash or a hand edit; starting again
        # from `cfai local reset` is the fix.
        raise LocalPlatformError(
            f"{path} is damaged ({err.error_count()} problem(s)); `cfai local reset` clears it"
        ) from None


def _replace(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
