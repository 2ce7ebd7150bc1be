"""`cfai dev`: the local platform in the foreground, reloading Workers as their sources change.

It starts the platform like `cfai local up`, then polls (every 0.5 s, by mtime) the
templates, the declaration file and every custom Worker's module. On a change it loads the
declaration again, re-provisions gateways and indexes through the REST API, re-renders and
restarts workerd only: the emulator keeps running with its state (vectors, logs, cache),
and every Worker keeps its port. A declaration that no longer loads is reported and the last
good version keeps serving. SIGINT / SIGTERM stop everything.

Example::

    lp = LocalPlatform(Path("."))
    run_dev(lp, lambda: load_stack("local"), [Path("Pulumi.local.yaml")], print)
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import Any

from cfai._files import write_private_json
from cfai.config import PlatformConfig
from cfai.errors import CfaiError, ConfigError
from cfai.kinds import kind_for
from cfai.local.ports import run_fingerprint
from cfai.local.processes import forget, stop
from cfai.local.provisioning import provision
from cfai.local.supervisor import LocalPlatform
from cfai.local.versions import private_ports, rebase_routes
from cfai.render import Templates, render_platform

__all__ = ["reload_workers", "run_dev", "watched_paths"]

Say = Callable[[str], None]


def watched_paths(
    platform: PlatformConfig,
    declaration: Iterable[Path],
    source_dir: Path,
    templates: Templates | None = None,
) -> set[Path]:
    """Every file whose change changes what the Workers run."""
    paths = {p.resolve() for p in declaration}
    paths |= {p.resolve() for p in (templates or Templates.packaged()).files()}
    paths |= {
        (source_dir / source).resolve()
        for w in platform.workers.values()
        for source in kind_for(w.kind).sources(w)
    }
    return paths


def _mtimes(paths: Iterable[Path]) -> dict[Path, int | None]:
    out: dict[Path, int | None] = {}
    for p in paths:
        try:
            out[p] = p.stat().st_mtime_ns
        except OSError:
            out[p] = None
    return out


def reload_workers(
    lp: LocalPlatform, platform: PlatformConfig, *, previous: PlatformConfig | None = None
) -> dict[str, Any]:
    """Re-provision (when gateways or indexes changed since `previous`), re-render and
    restart workerd of the running `lp`; keep the emulator and each Worker's port. Returns
    the new outputs map."""
    run = json.loads((lp.state_dir / "run.json").read_text())
    rendered = render_platform(
        platform, base_dir=lp.source_dir or lp.project_dir, templates=lp.templates
    )
    emulator_port = int(run["emulator_port"])
    api = f"http://127.0.0.1:{emulator_port}"
    tokens = lp._secrets()
    if previous is None or (previous.name_prefix, previous.gateways, previous.indexes) != (
        platform.name_prefix,
        platform.gateways,
        platform.indexes,
    ):
        provision(platform, f"{api}/client/v4", tokens["api_token"], lp.progress)
    # workerd serves on private ports behind the router, which keeps the public ones.
    ports = private_ports(lp, [r.key for r in rendered])
    pid = int(run["pids"]["workerd"])
    stop(pid)
    forget(pid)
    workers = lp._place(rendered, ports)
    run["pids"]["workerd"] = lp._spawn_workerd(workers, emulator_port, tokens["auth_token"])
    run["fingerprint"] = run_fingerprint(platform, rendered, lp.settings)
    (lp.state_dir / "run.json").write_text(json.dumps(run))
    for w in workers:
        ready = kind_for(w.rendered.kind).readiness
        lp._wait(
            f"http://127.0.0.1:{w.port}{ready.path}",
            f"Worker {w.rendered.key}",
            run["pids"]["workerd"],
            60,
            ready=ready,
        )
    public = rebase_routes(lp, workers)
    front = [replace(w, port=public[w.rendered.key]) for w in workers]
    outputs = lp._outputs(platform, front, api, tokens)
    write_private_json(lp.outputs_path, outputs, indent=2)
    return outputs


def _hashes(outputs: Mapping[str, Any]) -> list[str]:
    return [
        f"{key}: {w['url']}  sha256 {w['template_sha256'][:12]}"
        for key, w in sorted(outputs["workers"].items())
    ]


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run_dev(
    lp: LocalPlatform,
    load: Callable[[], PlatformConfig],
    declaration: Iterable[Path],
    say: Say,
    *,
    port: int | None = None,
    timeout: float = 60.0,
    interval: float = 0.1,
) -> None:
    """Serve in the foreground until SIGINT/SIGTERM, reloading Workers on changes."""
    declaration = list(declaration)
    source_dir = lp.source_dir or lp.project_dir
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        platform = load()
        outputs = lp.up(platform, timeout=timeout, port=port)
        for line in _hashes(outputs):
            say(line)
        seen = _mtimes(watched_paths(platform, declaration, source_dir, lp.templates))
        say(f"watching {len(seen)} file(s); Ctrl-C stops")
        while True:
            time.sleep(interval)
            now = _mtimes(
                watched_paths(platform, declaration, source_dir, lp.templates) | set(seen)
            )
            changed = sorted(str(p) for p in now if now[p] != seen.get(p))
            if not changed:
                continue
            seen = now
            say("changed: " + ", ".join(changed))
            try:
                candidate = load()
            except ConfigError as e:
                say(f"{e}\nstill serving the last good version")
                continue
            try:
                outputs = reload_workers(lp, candidate, previous=platform)
            except CfaiError as e:
                say(f"reload failed: {e}\nrestoring the last good version")
                outputs = reload_workers(lp, platform)
                continue
            platform = candidate
            say("reloaded:")
            for line in _hashes(outputs):
                say(line)
    except KeyboardInterrupt:
        say("stopping")
    finally:
        lp.down()
        signal.signal(signal.SIGTERM, previous)
