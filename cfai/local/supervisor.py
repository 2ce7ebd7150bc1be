"""Start, watch and stop the local platform: the emulator, then workerd with every Worker.

`cfai local up` is detached like ``docker compose up -d``: it returns once every Worker's
``/health`` answers, leaving both processes running (their output goes to log files under
``.cfai/local/``), and `cfai local down` stops them. The outputs map it writes to
``.cfai/local/outputs.json`` has the shape of the cloud stack's outputs, so the contract
suite reads either.

Example::

    platform = LocalPlatform(Path("."))
    outputs = platform.up()
    ...
    platform.down()
"""

from __future__ import annotations

import json
import secrets
import socket
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx

from cfai._files import write_private_json
from cfai.config import PlatformConfig, load_stack
from cfai.errors import LocalPlatformError
from cfai.kinds import Readiness, kind_for
from cfai.local.ports import free_port, plan_ports, reserve, run_fingerprint
from cfai.local.processes import alive, forget, spawn, stop
from cfai.local.provisioning import provision
from cfai.local.versions import first_routes, start_router
from cfai.local.workerd import WorkerdWorker, launch
from cfai.render import RenderedWorker, Templates, render_platform

__all__ = ["LocalPlatform", "free_port"]

Progress = Callable[[str], None]


@dataclass
class LocalPlatform:
    """The local platform of one stack in `project_dir` (state under `.cfai/local`)."""

    project_dir: Path
    stack: str = "local"
    settings: Mapping[str, Any] = field(default_factory=dict)
    progress: Progress = lambda message: None
    # Where custom Worker modules are resolved (a `--config` file's directory); default project_dir.
    source_dir: Path | None = None
    # Extra environment of the emulator only (secrets such as the remote AI token: never argv).
    emulator_env: Mapping[str, str] = field(default_factory=dict)
    # The Worker templates (default: cfai's own); another directory tries a template edit.
    templates: Templates | None = None
    state_dir: Path = field(init=False)
    # Set by `up`: True when it found the same run already serving and left it alone.
    reused: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self.project_dir = self.project_dir.resolve()
        self.state_dir = self.project_dir / ".cfai" / self.stack

    # -- files ---------------------------------------------------------------------------
    @property
    def outputs_path(self) -> Path:
        return self.state_dir / "outputs.json"

    @property
    def _run_path(self) -> Path:
        return self.state_dir / "run.json"

    def _secrets(self) -> dict[str, str]:
        """The local API token and Worker auth token: made once, kept (mode 600) so outputs
        stay stable across restarts."""
        path = self.state_dir / "secrets.json"
        if path.is_file():
            return dict(json.loads(path.read_text()))
        values = {"api_token": secrets.token_urlsafe(24), "auth_token": secrets.token_urlsafe(24)}
        path.parent.mkdir(parents=True, exist_ok=True)
        write_private_json(path, values)
        return values

    def running(self) -> dict[str, Any] | None:
        """The run record when the platform's processes are alive, else None."""
        if not self._run_path.is_file():
            return None
        run = json.loads(self._run_path.read_text())
        if all(alive(int(pid)) for pid in run["pids"].values()):
            return dict(run)
        return None

    # -- lifecycle -----------------------------------------------------------------------
    def up(
        self,
        platform: PlatformConfig | None = None,
        *,
        timeout: float = 60.0,
        port: int | None = None,
        reuse: bool = False,
    ) -> dict[str, Any]:
        """Start everything and return the outputs map. Restarts a running platform, unless
        `reuse` and it runs the same declaration, rendered code and settings (then `reused`).
        `port`: Workers on port, port+1, ... by key, the emulator next; default free ports."""
        platform = platform or load_stack(self.stack, self.project_dir)
        rendered = render_platform(
            platform, base_dir=self.source_dir or self.project_dir, templates=self.templates
        )
        fingerprint = run_fingerprint(platform, rendered, self.settings)
        current = self.running() if reuse else None
        self.reused = bool(
            current
            and current.get("fingerprint") == fingerprint
            and (port is None or current.get("port") == port)
            and self.outputs_path.is_file()
        )
        if self.reused:
            return dict(json.loads(self.outputs_path.read_text()))
        self.down()
        worker_ports, emulator_port = plan_ports((r.key for r in rendered), port)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tokens = self._secrets()
        pids: dict[str, int] = {}
        # workerd's private ports are held open from now until workerd takes them over.
        listeners = {key: reserve() for key in worker_ports}
        try:
            # The router starts with the emulator (both are Python processes that take a
            # moment to import); workerd listens on private ports behind it.
            ports = {key: int(sock.getsockname()[1]) for key, sock in listeners.items()}
            workers = self._place(rendered, ports)
            self.progress(f"starting emulator on 127.0.0.1:{emulator_port}")
            pids["emulator"] = self._spawn_emulator(platform, emulator_port, tokens["api_token"])
            pids["router"] = start_router(self, first_routes(workers, worker_ports))
            run = {"pids": pids, "emulator_port": emulator_port, "fingerprint": fingerprint}
            self._run_path.write_text(json.dumps({**run, "port": port}))
            api = f"http://127.0.0.1:{emulator_port}"
            self._wait(f"{api}/__cfai/health", "emulator", pids["emulator"], timeout)
            provision(platform, f"{api}/client/v4", tokens["api_token"], self.progress)
            self.progress(f"starting workerd with {len(workers)} Worker(s)")
            pids["workerd"] = self._spawn_workerd(
                workers, emulator_port, tokens["auth_token"], listeners
            )
            self._run_path.write_text(json.dumps({**run, "port": port}))
            for w in workers:
                ready = kind_for(w.rendered.kind).readiness
                url = f"http://127.0.0.1:{worker_ports[w.rendered.key]}{ready.path}"
                self._wait(
                    url,
                    f"Worker {w.rendered.key}",
                    pids["workerd"],
                    timeout,
                    router=pids["router"],
                    ready=ready,
                )
        except BaseException:
            for pid in pids.values():
                stop(pid)
                forget(pid)
            self._run_path.unlink(missing_ok=True)
            raise
        finally:
            for sock in listeners.values():
                sock.close()  # workerd has its own copies
        front = [replace(w, port=worker_ports[w.rendered.key]) for w in workers]
        outputs = self._outputs(platform, front, api, tokens)
        write_private_json(self.outputs_path, outputs, indent=2)
        return outputs

    def down(self) -> bool:
        """Stop the processes of a previous `up`. True when something was running."""
        if not self._run_path.is_file():
            return False
        run = json.loads(self._run_path.read_text())
        was = False
        for pid in reversed(list(run["pids"].values())):
            was = alive(int(pid)) or was
            stop(int(pid))
            forget(int(pid))
        self._run_path.unlink(missing_ok=True)
        return was

    # -- steps ---------------------------------------------------------------------------
    def _spawn(
        self, argv: list[str], name: str, env: Mapping[str, str], pass_fds: Sequence[int] = ()
    ) -> int:
        log = self.state_dir / f"{name}.log"
        return spawn(argv, cwd=self.state_dir, log=log, env=env, pass_fds=pass_fds)

    def _spawn_emulator(self, platform: PlatformConfig, port: int, api_token: str) -> int:
        env = {
            "CFAI_EMULATOR_TOKEN": api_token,
            "CFAI_EMULATOR_ACCOUNT": platform.account_id,
            "CFAI_EMULATOR_STATE": str(self.state_dir),
            "CFAI_EMULATOR_SETTINGS": json.dumps(dict(self.settings)),
            **self.emulator_env,
        }
        return self._spawn(
            [sys.executable, "-m", "cfai.local.emulator", "--port", str(port)], "emulator", env
        )

    def _place(
        self, rendered: list[RenderedWorker], ports: Mapping[str, int]
    ) -> list[WorkerdWorker]:
        placed = []
        for r in rendered:
            module = Path("workers") / r.script_name / r.main_module
            (self.state_dir / module).parent.mkdir(parents=True, exist_ok=True)
            (self.state_dir / module).write_text(r.source, encoding="utf-8")
            placed.append(
                WorkerdWorker(rendered=r, port=ports[r.key], module_path=module.as_posix())
            )
        return placed

    def _spawn_workerd(
        self,
        workers: list[WorkerdWorker],
        emulator_port: int,
        auth_token: str,
        listeners: Mapping[str, socket.socket] | None = None,
    ) -> int:
        """workerd serving `workers`; on the held `listeners` sockets (by key) when given."""
        argv, env, fds = launch(
            self.state_dir,
            "workerd",
            workers,
            emulator_port,
            auth_token,
            self.project_dir,
            listeners,
        )
        return self._spawn(argv, "workerd", env, fds)

    def _wait(
        self,
        url: str,
        what: str,
        pid: int,
        timeout: float,
        *,
        router: int | None = None,
        ready: Readiness | None = None,
    ) -> None:
        """Until `url` answers as `ready` expects (200 by default); fails fast when `pid` (or
        the `router` in front) exits."""
        ready = ready or Readiness()
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if not alive(pid):
                raise LocalPlatformError(f"{what} exited during start; see {self._log_hint(what)}")
            if router is not None and not alive(router):
                raise LocalPlatformError(
                    f"the router exited during start; see {self._log_hint('router')}"
                )
            try:
                r = httpx.get(url, timeout=2.0)
                if ready.accepts(r.status_code):
                    return
                last = f"HTTP {r.status_code}"
            except httpx.HTTPError as err:
                last = type(err).__name__
            time.sleep(0.05)
        raise LocalPlatformError(
            f"{what} did not answer {url} within {timeout:.0f}s ({last}); see {self._log_hint(what)}"
        )

    def _log_hint(self, what: str) -> str:
        first = what.split()[0]
        name = (
            first if first in ("emulator", "router") or first.startswith("workerd") else "workerd"
        )
        return str(self.state_dir / f"{name}.log")

    def _outputs(
        self,
        platform: PlatformConfig,
        workers: list[WorkerdWorker],
        api: str,
        tokens: Mapping[str, str],
    ) -> dict[str, Any]:
        endpoints = {w.rendered.key: f"http://127.0.0.1:{w.port}" for w in workers}
        return {
            "target": "local",
            "stack": self.stack,
            "endpoints": endpoints,
            "workers": {
                w.rendered.key: {
                    "kind": w.rendered.kind,
                    "script_name": w.rendered.script_name,
                    "template_sha256": w.rendered.sha256,
                    "url": endpoints[w.rendered.key],
                    "auth": w.rendered.auth,
                    "models": list(w.rendered.models),
                    "gateway": w.rendered.gateway,
                    "contract": list(platform.workers[w.rendered.key].contract),
                }
                for w in workers
            },
            "gateways": {
                key: {
                    "id": platform.physical_name(key),
                    "logs_url": f"{api}/client/v4/accounts/{platform.account_id}/ai-gateway/gateways/{platform.physical_name(key)}/logs",
                }
                for key in platform.gateways
            },
            "indexes": {
                key: {
                    "name": platform.physical_name(key),
                    "dimensions": idx.resolved_dimensions,
                    "metric": idx.resolved_metric,
                }
                for key, idx in platform.indexes.items()
            },
            "auth_token": tokens["auth_token"],
            "api": {
                "base_url": f"{api}/client/v4",
                "account_id": platform.account_id,
                "token": tokens["api_token"],
            },
        }
