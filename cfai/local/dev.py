"""`cfai dev`: the local platform in the foreground, reloading Workers as their sources change.

It starts the platform like `cfai local up`, then polls (every 0.1 s, by mtime) the
templates, the declaration file and every custom Worker's module. On a change it loads the
declaration again, re-provisions gateways and indexes through the REST API, re-renders and
restarts workerd only: the emulator keeps running with its state (vectors, logs, cache),
and every Worker keeps its port. A declaration that no longer loads or a template that no
longer renders is reported (with the file and line) and the last good build keeps serving,
as it was rendered; the next save that works reloads. SIGINT / SIGTERM stop everything.

Example::

    lp = LocalPlatform(Path("."))
    run_dev(lp, lambda: load_stack("local"), [Path("Pulumi.local.yaml")], print)
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import FrameType

from cfai.config import PlatformConfig
from cfai.errors import CfaiError, ConfigError, RenderError
from cfai.kinds import kind_for
from cfai.local.platform import LocalPlatform
from cfai.outputs import Outputs
from cfai.render import RenderedWorker, Templates

__all__ = ["run_dev", "watched_paths"]

Say = Callable[[str], None]


def watched_paths(
    platform: PlatformConfig,
    declaration: Iterable[Path],
    source_dir: Path,
    templates: Templates | None = None,
) -> set[Path]:
    """Every file whose change changes what the Workers run: the declaration, the
    templates and each Worker's own sources (a custom Worker's module)."""
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


def _hashes(outputs: Outputs) -> list[str]:
    return [
        f"{key}: {w.url}  sha256 {(w.template_sha256 or '-')[:12]}"
        for key, w in sorted(outputs.workers.items())
    ]


def _restore(
    lp: LocalPlatform,
    platform: PlatformConfig,
    good: list[RenderedWorker],
    timeout: float,
    say: Say,
) -> None:
    # The last good build's own rendered code: its templates may have changed since.
    try:
        lp.reload(platform, rendered=good, timeout=timeout)
    except CfaiError as e:
        say(f"restoring failed too: {e}\nfix it and save to reload")


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
    # Our own handlers for both: a shell starts background jobs (`make test &`, nohup, some CI
    # wrappers) with SIGINT ignored, and Python then installs no KeyboardInterrupt handler.
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    replaced = False
    try:
        platform = load()
        replaced = lp.running() is not None
        if replaced:
            say(
                f"the platform of stack {lp.stack} runs already (`local up`): cfai dev replaces"
                " it; its Workers keep their ports where free"
            )
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
            good = list(lp.last_rendered)
            try:
                outputs = lp.reload(candidate, previous=platform, timeout=timeout)
            except RenderError as e:
                # Rendering comes before any upload: the last good build still serves as is.
                say(f"{e}\nstill serving the last good version; fix it and save to reload")
                continue
            except CfaiError as e:
                say(f"reload failed: {e}\nrestoring the last good version")
                _restore(lp, platform, good, timeout, say)
                continue
            platform = candidate
            say("reloaded:")
            for line in _hashes(outputs):
                say(line)
    except KeyboardInterrupt:
        say("stopping")
    finally:
        lp.down()
        if replaced:
            again = "cfai local up" + (f" --stack {lp.stack}" if lp.stack != "local" else "")
            say(f"stopped; nothing runs now (the `local up` it replaced is gone): `{again}`")
        for sig, handler in previous.items():
            signal.signal(sig, handler)
