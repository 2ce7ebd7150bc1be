"""The local platform's processes: the emulator and the router, each started detached in the
state directory with its output appended to ``<name>.log`` there, awaited until it answers,
and stopped with its whole process group. (workerd processes are the emulator's: see
`cfai.local.runtime`.)

`cfai.local.platform.LocalPlatform` decides what runs; this module only runs it.

Example::

    sup = Supervisor(Path(".cfai/local"), Path("."))
    pid = sup.start_emulator(8790, account_id="0" * 32, api_token=token)
    sup.wait_ready("http://127.0.0.1:8790/__cfai/health", "emulator", pid, 60, log="emulator")
    sup.stop(pid)
"""

from __future__ import annotations

import json
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cfai.errors import LocalPlatformError
from cfai.kinds import Readiness
from cfai.local.processes import alive, forget, spawn, stop
from cfai.local.state import RunRecord, StateFiles, WorkerRoute
from cfai.provision.rest import NoAnswer, fetch

__all__ = ["Supervisor"]


@dataclass(frozen=True)
class Supervisor:
    """Starts and stops the processes of one state directory (`project_dir` holds workerd)."""

    state_dir: Path
    project_dir: Path

    def log_path(self, name: str) -> Path:
        """Where the process `name` writes its output."""
        return self.state_dir / f"{name}.log"

    def spawn(
        self,
        argv: Sequence[str],
        name: str,
        env: Mapping[str, str] | None = None,
        pass_fds: Sequence[int] = (),
    ) -> int:
        """Start `argv` detached in the state directory, output to ``<name>.log``; its pid."""
        return spawn(
            argv, cwd=self.state_dir, log=self.log_path(name), env=env or {}, pass_fds=pass_fds
        )

    def start_emulator(
        self,
        port: int,
        *,
        account_id: str,
        api_token: str,
        settings: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
        workerd: Path | None = None,
        ports: Mapping[str, int] | None = None,
    ) -> int:
        """The emulator on 127.0.0.1:`port`, running uploaded scripts on `workerd` (their
        public ports planned by script name in `ports`). Its token and settings travel in
        the environment, never in argv (which `ps` shows)."""
        environ = {
            "CFAI_EMULATOR_TOKEN": api_token,
            "CFAI_EMULATOR_ACCOUNT": account_id,
            "CFAI_EMULATOR_STATE": str(self.state_dir),
            "CFAI_EMULATOR_SETTINGS": json.dumps(dict(settings or {})),
            "CFAI_EMULATOR_PORTS": json.dumps(dict(ports or {})),
            **({"CFAI_EMULATOR_WORKERD": str(workerd)} if workerd else {}),
            **(env or {}),
        }
        argv = [sys.executable, "-m", "cfai.local.emulator", "--port", str(port)]
        return self.spawn(argv, "emulator", environ)

    def start_router(self, routes_path: Path) -> int:
        """The router on the public ports of the table in `routes_path`."""
        argv = [sys.executable, "-m", "cfai.local.router", "--routes", str(routes_path)]
        return self.spawn(argv, "router")

    def wait_ready(
        self,
        url: str,
        what: str,
        pid: int,
        timeout: float,
        *,
        log: str,
        router: int | None = None,
        ready: Readiness | None = None,
    ) -> None:
        """Until `url` answers as `ready` expects (200 by default); fails fast when `pid`
        (or the `router` in front) exits. `LocalPlatformError` names `what` and its log
        file ``<log>.log``."""
        ready = ready or Readiness()
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if not alive(pid):
                raise LocalPlatformError(f"{what} exited during start; see {self.log_path(log)}")
            if router is not None and not alive(router):
                raise LocalPlatformError(
                    f"the router exited during start; see {self.log_path('router')}"
                )
            answer = fetch("GET", url, timeout=2.0)
            if isinstance(answer, NoAnswer):
                last = answer.error
            elif ready.accepts(answer.status_code):
                return
            else:
                last = f"HTTP {answer.status_code}"
            time.sleep(0.05)
        raise LocalPlatformError(
            f"{what} did not answer {url} within {timeout:.0f}s ({last}); see {self.log_path(log)}"
        )

    def wait_workers(
        self, workers: Sequence[tuple[str, str, Readiness]], files: StateFiles, timeout: float
    ) -> None:
        """Until each Worker (key, script name, readiness) is in the router's table (a
        restarted emulator restores its deployed scripts in the background) and its
        readiness probe answers through the router."""
        deadline = time.monotonic() + timeout
        for key, script, ready in workers:
            route = self._await_route(key, script, files, deadline)
            serving = max(route.split, key=lambda v: route.split[v])
            process = route.versions[serving].process
            run = files.read_run() or RunRecord(emulator_port=0)
            if ready.path is None:
                self._wait_port(route.port, f"Worker {key}", run, deadline, log=process)
                continue
            self.wait_ready(
                f"http://127.0.0.1:{route.port}{ready.path}",
                f"Worker {key}",
                run.pids.get(process, run.pids.get("emulator", 0)),
                max(1.0, deadline - time.monotonic()),
                log=process,
                router=run.pids.get("router"),
                ready=ready,
            )

    def _wait_port(
        self, port: int, what: str, run: RunRecord, deadline: float, *, log: str
    ) -> None:
        """Until the router's public `port` takes a TCP connection (nothing is sent)."""
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.settimeout(1.0)
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return
            if not alive(run.pids.get("router", 0)):
                raise LocalPlatformError(
                    f"the router exited during start; see {self.log_path('router')}"
                )
            if time.monotonic() > deadline:
                raise LocalPlatformError(
                    f"{what} got no open port {port} within the timeout; see {self.log_path(log)}"
                )
            time.sleep(0.02)

    def _await_route(
        self, key: str, script: str, files: StateFiles, deadline: float
    ) -> WorkerRoute:
        while True:
            route = files.read_routes().workers.get(script)
            run = files.read_run()
            if route is not None and route.split and run is not None:
                return route
            if run is None or not alive(run.pids.get("emulator", 0)):
                raise LocalPlatformError(
                    f"the emulator exited before Worker {key} ran; see {self.log_path('emulator')}"
                )
            if time.monotonic() > deadline:
                raise LocalPlatformError(
                    f"Worker {key} ({script}) got no route within the timeout; "
                    f"see {self.log_path('emulator')}"
                )
            time.sleep(0.02)

    def stop(self, pid: int) -> None:
        """Stop `pid`'s process group and reap it."""
        stop(pid)
        forget(pid)
