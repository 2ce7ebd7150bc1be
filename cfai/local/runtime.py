"""The runtime of the local platform: a workerd process per running version of a script,
behind the router, driven by the Workers scripts API (`ScriptRuntime`).

Who does what:

- the emulator process owns one `WorkersRuntime`; the Workers scripts service calls it after
  every committed change (an upload, a deployment, workers.dev switched on or off);
- `start` runs one version: its modules are written to ``scripts/<script>/<version>/``, its
  config to ``workerd-<id8>.capnp`` (mode 600) and its output goes to ``workerd-<id8>.log``,
  all in the state directory. workerd gets its private listening socket already bound
  (``--socket-fd``, held from the moment its port is chosen) and reports on a pipe
  (``--control-fd``) once it listens, which is after its Worker compiled and ran its top
  level: that is the startup time, and a Worker that throws there makes workerd exit, whose
  log lines become the upload's error (as Cloudflare answers a startup error with 10021);
- `route` writes the router's table (``routes.json``): a public script gets a public port
  (the one `cfai local up` planned for it, else a free one; the router starts listening on
  a new port within ~20 ms and `route` waits for it), and the split of its deployment; the
  versions of the script neither in the deployment nor kept warm stop after `drain`
  seconds, so requests the router already sent them finish;
- every process is recorded in ``run.json`` as it starts and removed before it is stopped,
  so `cfai local down` stops whatever runs, even when the emulator itself was killed.

Example::

    runtime = WorkersRuntime(state_dir, find_workerd(project), emulator_port=8790, key=key)
    runtime.start(version)                          # a RunnableVersion of "hello"
    runtime.route("hello", {version.version_id: 100}, [version], public=True)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import select
import shutil
import signal
import socket
import threading
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cfai.local.ports import free_port, reserve
from cfai.local.processes import alive, forget, spawn, stop
from cfai.local.services.frontdoor import BindingKey
from cfai.local.services.workers_scripts import RunnableVersion, StartupFailed
from cfai.local.state import Routes, RunRecord, StateFiles, VersionRoute, WorkerRoute
from cfai.local.workerd import ASSETS_DIR, ASSETS_ROUTER, WorkerdScript, launch, templates_dir

__all__ = ["WorkersRuntime", "process_name"]

log = logging.getLogger("cfai.local.emulator")
_MODULES = Path("scripts")


def process_name(version_id: str) -> str:
    """The run record's name of the workerd process serving `version_id`."""
    return f"workerd-{version_id[:8]}"


@dataclass
class _Process:
    script: str
    version_id: str
    pid: int
    port: int
    startup_ms: float
    module_dir: Path
    sha256: str

    @property
    def name(self) -> str:
        return process_name(self.version_id)


class WorkersRuntime:
    """The workerd processes and router table of one state directory (`ScriptRuntime`)."""

    def __init__(
        self,
        state_dir: Path,
        workerd: Path,
        *,
        emulator_port: int,
        key: BindingKey,
        planned_ports: Mapping[str, int] | None = None,
        drain: float = 0.5,
        start_timeout: float = 30.0,
        router_wait: float = 5.0,
    ) -> None:
        self.state_dir = state_dir
        self.workerd = workerd
        self.emulator_port = emulator_port
        self.key = key
        self.planned = dict(planned_ports or {})
        self.drain = drain
        self.start_timeout = start_timeout
        self.router_wait = router_wait
        self.files = StateFiles(state_dir)
        self._lock = threading.RLock()
        self._procs: dict[str, _Process] = {}
        self._routes = Routes()
        self._keep: dict[str, set[str]] = {}
        self._gates: dict[str, threading.Lock] = {}
        self._closed = False

    # -- versions ------------------------------------------------------------------------

    def start(self, version: RunnableVersion) -> float:
        # One start per version at a time, different versions in parallel (a restarted
        # emulator restores every deployed script at once).
        vid = version.version_id
        with self._lock:
            if self._closed:
                raise StartupFailed("the local platform is stopping")
            gate = self._gates.setdefault(vid, threading.Lock())
        with gate:
            with self._lock:
                running = self._procs.get(vid)
                if running is not None and alive(running.pid):
                    return running.startup_ms
            proc = self._spawn(version)
            with self._lock:
                if self._closed:
                    self._stop(proc.name, proc.pid)
                    raise StartupFailed("the local platform is stopping")
                self._procs[vid] = proc
            return proc.startup_ms

    def _spawn(self, version: RunnableVersion) -> _Process:
        name = process_name(version.version_id)
        module_dir = _MODULES / version.script / version.version_id
        root = self.state_dir / module_dir
        shutil.rmtree(root, ignore_errors=True)
        for m in version.modules:
            (root / m.name).parent.mkdir(parents=True, exist_ok=True)
            (root / m.name).write_bytes(m.content)
        if version.assets is not None:
            _place_assets(version, root / ASSETS_DIR)
        main = next((m.content for m in version.modules if m.name == version.entry), b"")
        log_path = self.state_dir / f"{name}.log"
        offset = log_path.stat().st_size if log_path.exists() else 0
        listener = self._reserve()  # held until workerd takes it over
        read_end, write_end = os.pipe()
        try:
            port = int(listener.getsockname()[1])
            argv, env, fds = launch(
                self.state_dir,
                name,
                [WorkerdScript(version, port, module_dir.as_posix())],
                emulator_port=self.emulator_port,
                binding_key=self.key,
                workerd=self.workerd,
                listeners={version.script: listener},
                control_fd=write_end,
            )
            began = time.monotonic()
            pid = spawn(argv, cwd=self.state_dir, log=log_path, env=env, pass_fds=fds)
        finally:
            listener.close()
            os.close(write_end)
        try:
            self.files.update_run(lambda run: run.pids.__setitem__(name, pid))
            listening = self._await_listen(read_end, pid)
        finally:
            os.close(read_end)
        if not listening:
            self._stop(name, pid)
            raise StartupFailed(_startup_error(log_path, offset, version.script))
        ms = (time.monotonic() - began) * 1000
        return _Process(
            version.script,
            version.version_id,
            pid,
            port,
            ms,
            module_dir,
            hashlib.sha256(main).hexdigest(),
        )

    def _await_listen(self, control: int, pid: int) -> bool:
        """Until workerd says it listens (True), exits or times out (False)."""
        deadline = time.monotonic() + self.start_timeout
        buffer = b""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([control], [], [], 0.05)
            if ready:
                chunk = os.read(control, 4096)
                buffer += chunk
                for line in buffer.split(b"\n"):
                    try:
                        event = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(event, dict) and event.get("event") == "listen":
                        return True
                if not chunk:
                    return False
            if not alive(pid):
                return False
        return False

    def discard(self, version_id: str) -> None:
        with self._lock:
            proc = self._procs.pop(version_id, None)
            if proc is not None:
                self._stop(proc.name, proc.pid, proc.module_dir)

    def loaded(self, version_id: str, module: str) -> bytes | None:
        with self._lock:
            proc = self._procs.get(version_id)
        if proc is None:
            return None
        try:
            return (self.state_dir / proc.module_dir / module).read_bytes()
        except OSError:
            return None

    # -- routes --------------------------------------------------------------------------

    def route(
        self,
        script: str,
        split: Mapping[str, int],
        versions: Sequence[RunnableVersion],
        *,
        public: bool,
        keep: Collection[str] = (),
    ) -> None:
        for v in versions:
            self.start(v)
        with self._lock:
            if self._closed:
                return
            self._keep[script] = set(keep)
            table = self._routes.workers
            new_port = None
            if public and split:
                port = table[script].port if script in table else self._assign_port(script)
                new_port = None if script in table else port
                run = self.files.read_run()
                limits = run.request_limits if run is not None else {}
                table[script] = WorkerRoute(
                    script_name=script,
                    port=port,
                    versions={vid: self._version_route(vid, limits) for vid in split},
                    split=dict(split),
                )
            else:
                table.pop(script, None)
            self.files.write_routes(self._routes)
            stale = [
                p.version_id
                for p in self._procs.values()
                if p.script == script and p.version_id not in split and p.version_id not in keep
            ]
        if new_port is not None:
            self._await_router(new_port)
        for vid in stale:
            timer = threading.Timer(self.drain, self._retire, args=(script, vid))
            timer.daemon = True
            timer.start()

    def _version_route(self, version_id: str, limits: Mapping[str, int]) -> VersionRoute:
        p = self._procs[version_id]
        route = VersionRoute(upstream=f"127.0.0.1:{p.port}", sha256=p.sha256, process=p.name)
        limit = limits.get(p.script)
        return route if limit is None else route.model_copy(update={"max_request_bytes": limit})

    def _reserve(self) -> socket.socket:
        """A private port for a workerd, never one planned for a Worker's public port (the
        router opens those only once the Worker is routed, so until then they look free)."""
        while True:
            listener = reserve()
            if int(listener.getsockname()[1]) not in self.planned.values():
                return listener
            listener.close()

    def _assign_port(self, script: str) -> int:
        taken = {w.port for w in self._routes.workers.values()}
        planned = self.planned.get(script)
        if planned is not None and planned not in taken:
            return planned
        others = set(self.planned.values()) | taken
        while True:
            port = free_port()
            if port not in others:
                return port

    def _await_router(self, port: int) -> None:
        deadline = time.monotonic() + self.router_wait
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.02)
        log.warning("the router did not open port %d within %.0fs", port, self.router_wait)

    def _retire(self, script: str, version_id: str) -> None:
        """Stop `version_id` unless it was routed or kept again since it was scheduled."""
        with self._lock:
            entry = self._routes.workers.get(script)
            if entry is not None and version_id in entry.split:
                return
            if version_id in self._keep.get(script, set()):
                return
            proc = self._procs.pop(version_id, None)
            if proc is not None:
                self._stop(proc.name, proc.pid, proc.module_dir)

    def forget(self, script: str) -> None:
        with self._lock:
            self._routes.workers.pop(script, None)
            self._keep.pop(script, None)
            self.files.write_routes(self._routes)
            for vid in [v for v, p in self._procs.items() if p.script == script]:
                proc = self._procs.pop(vid)
                self._stop(proc.name, proc.pid, proc.module_dir)

    def close(self) -> None:
        """Stop every process (the emulator is stopping); the run record keeps the rest of
        the platform's, which `cfai local down` stops."""
        with self._lock:
            self._closed = True
            # Every process told to stop at once, before any leaves the run record: `cfai
            # local down` SIGKILLs an emulator that takes too long, and a workerd not yet
            # stopped then, but no longer recorded, would outlive the platform.
            for proc in self._procs.values():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
            for proc in list(self._procs.values()):
                self._stop(proc.name, proc.pid)
            self._procs.clear()

    def _stop(self, name: str, pid: int, module_dir: Path | None = None) -> None:
        # Out of the run record first (a recorded process that is dead reads as a crash),
        # unless the record names another process now (one restarted by hand): `cfai local
        # down` stops that one.
        def forget_it(run: RunRecord) -> None:
            if run.pids.get(name) == pid:
                del run.pids[name]

        self.files.update_run(forget_it)
        stop(pid)
        forget(pid)
        (self.state_dir / f"{name}.capnp").unlink(missing_ok=True)
        if module_dir is not None:
            shutil.rmtree(self.state_dir / module_dir, ignore_errors=True)


def _place_assets(version: RunnableVersion, folder: Path) -> None:
    """The asset router and the version's files (by hash) under `folder`."""
    files = folder / "files"
    files.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(templates_dir() / ASSETS_ROUTER, folder / "router.js")
    read = version.read_asset
    manifest = dict((version.assets or {}).get("manifest") or {})
    for entry in manifest.values():
        digest = str(entry["hash"])
        stored = read(digest) if read is not None else None
        if stored is None:
            raise StartupFailed(f"asset file {digest} was never uploaded")
        (files / digest).write_bytes(stored[1])


def _startup_error(log_path: Path, offset: int, script: str) -> str:
    """What workerd said while failing to start, as Cloudflare words a startup error
    (``Uncaught Error: ...`` and its location, without workerd's ``service <name>:``)."""
    try:
        with open(log_path, "rb") as f:
            f.seek(offset)
            text = f.read(64 * 1024).decode("utf-8", errors="replace")
    except OSError:
        text = ""
    lines = [ln.rstrip() for ln in text.splitlines() if ln.strip()]
    prefix = f"service {script}: "
    lines = [ln.removeprefix(prefix) for ln in lines][-20:]
    found = "\n".join(lines)
    return found or "the Worker failed to start (workerd exited without a message)"
