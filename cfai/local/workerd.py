"""The workerd side of the local platform: its config, rendered from
``templates/workerd/config.capnp.j2`` for versions of scripts uploaded through the Workers
scripts API, and where its binary lives.

A version's modules are written under the state directory and embedded by relative path,
main module first (workerd's entry point); a service worker's script is its
``serviceWorkerScript``. Bindings of type ``ai`` and ``vectorize`` become workerd's own
internal modules used as wrapped bindings (the Worker sees the real `env.AI` /
`env.VECTORIZE` classes) whose inner
``fetcher`` is an `external` service pointing at the emulator; which service backs which
binding type comes from the registry. Each such external service injects a binding token
(`cfai.local.services.frontdoor.tokens`) minted with the running emulator's key, so the
emulator serves a binding call only from workerd, only on that binding's routes and (for
Vectorize) only on the bound index. The config therefore holds this run's binding tokens
and is written with mode 600. Plain-text vars are ``text`` bindings, ``json`` ones
``json``; Worker secrets are ``fromEnvironment`` bindings, so no Worker secret or API token
is written to the file.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from cfai.errors import ToolMissingError
from cfai.local.services import REGISTRY, Service, WorkerdService
from cfai.local.services.frontdoor import BINDING_HEADER, BindingKey
from cfai.local.services.workers_scripts import RunnableVersion, module_kind

__all__ = ["WorkerdScript", "find_workerd", "launch", "render_config", "secret_env_name"]

# The module kinds workerd loads (source maps and the like are stored, not loaded).
_LOADED = ("esModule", "commonJsModule", "text", "data", "wasm", "json")

_TEMPLATES = Path(__file__).resolve().parent.parent / "_templates"


def _templates_dir() -> Path:
    if _TEMPLATES.is_dir():
        return _TEMPLATES
    return Path(__file__).resolve().parents[2] / "templates"


def _capnp(value: object) -> str:
    """A Cap'n Proto text literal. Quotes, backslashes and control characters escaped."""
    out = ['"']
    for ch in str(value):
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def secret_env_name(script: str, binding: str) -> str:
    """Environment variable workerd reads a secret binding from."""
    safe = "".join(c if c.isalnum() else "_" for c in script).upper()
    return f"CFAI_SECRET_{safe}_{binding}"


@dataclass(frozen=True)
class WorkerdScript:
    """One version of a script placed for workerd: its modules under `module_dir` (relative
    to the config file) and the private `port` it serves on."""

    version: RunnableVersion
    port: int
    module_dir: str

    @property
    def service(self) -> str:
        return self.version.script


def _modules(w: WorkerdScript) -> list[dict[str, str]]:
    v = w.version
    ordered = sorted(v.modules, key=lambda m: m.name != v.entry)  # workerd: main first
    found = []
    for m in ordered:
        kind = module_kind(m.content_type, m.name)
        if kind in _LOADED:
            found.append({"name": m.name, "kind": kind, "path": f"{w.module_dir}/{m.name}"})
    return found


def _bindings(
    w: WorkerdScript, by_type: Mapping[str, type[Service]]
) -> tuple[list[dict[str, Any]], list[WorkerdService]]:
    v = w.version
    bindings: list[dict[str, Any]] = []
    externals: list[WorkerdService] = []
    for service in dict.fromkeys(by_type.values()):
        mine = [dict(b) for b in v.bindings if b["type"] in service.binding_types]
        if mine:
            externals += service.workerd_services(v.script, mine)
    for b in v.bindings:
        kind, name = str(b["type"]), str(b["name"])
        if kind in by_type:
            wb = by_type[kind].workerd_binding(v.script, b)
            bindings.append(
                {"kind": "wrapped", "name": wb.name, "module": wb.module, "inner": wb.inner}
            )
        elif kind == "plain_text":
            bindings.append({"kind": "text", "name": name, "value": str(b.get("text", ""))})
        elif kind == "json":
            bindings.append({"kind": "json", "name": name, "value": json.dumps(b.get("json"))})
        elif kind == "secret_text":
            bindings.append({"kind": "env", "name": name, "value": secret_env_name(v.script, name)})
        else:
            raise ValueError(f"{v.script}: binding {name} of type {kind!r} does not run locally")
    return bindings, externals


def render_config(
    scripts: Sequence[WorkerdScript],
    emulator_address: str,
    binding_key: BindingKey,
    services: Sequence[type[Service]] = REGISTRY,
) -> str:
    """The workerd config text for `scripts`, their bindings backed by `services` (the
    registry) and authenticated with tokens minted from `binding_key`."""
    by_type = {t: s for s in services for t in s.binding_types}
    externals: dict[str, WorkerdService] = {}
    ctx_workers: list[dict[str, Any]] = []
    for w in scripts:
        bindings, needed = _bindings(w, by_type)
        externals.update((e.name, e) for e in needed)
        v = w.version
        ctx_workers.append(
            {
                "service": w.service,
                "address": f"127.0.0.1:{w.port}",
                "modules": _modules(w),
                "service_worker": f"{w.module_dir}/{v.body_part}" if v.body_part else None,
                "compatibility_date": v.compatibility_date,
                "compatibility_flags": list(v.compatibility_flags),
                "bindings": bindings,
            }
        )
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_templates_dir()),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
    )
    env.filters["capnp"] = _capnp
    template = env.get_template("workerd/config.capnp.j2")
    return template.render(
        workers=ctx_workers,
        externals=[
            {"name": e.name, "inject_headers": {BINDING_HEADER: binding_key.mint(e.scope)}}
            for e in externals.values()
        ],
        emulator_address=emulator_address,
    )


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT: narrow it
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def find_workerd(project_dir: Path) -> Path:
    """The workerd binary from the project's pinned npm package."""
    candidates = [
        project_dir / "node_modules" / ".bin" / "workerd",
        project_dir / "node_modules" / "workerd" / "bin" / "workerd",
    ]
    for c in candidates:
        if c.exists() and os.access(c, os.X_OK):
            return _runnable(c)
    found = shutil.which("workerd")
    if found:
        return Path(found)
    raise ToolMissingError(
        f"workerd is not installed in {project_dir / 'node_modules'}; run `make setup` (npm ci installs the pinned workerd)"
    )


def _runnable(workerd: Path) -> Path:
    # npm's `workerd` package ships bin/workerd as a Node launcher (`#!/usr/bin/env node`)
    # and replaces it with the binary at install where it can; without node that launcher
    # dies at once with only "env: 'node': No such file" in workerd.log.
    with workerd.open("rb") as f:
        first = f.readline(200)
    if first.startswith(b"#!") and b"node" in first and shutil.which("node") is None:
        raise ToolMissingError(
            f"{workerd} is a Node.js launcher and node is not on PATH; install Node.js 20 "
            "or newer (`make setup` checks for it)"
        )
    return workerd


def launch(
    state_dir: Path,
    name: str,
    scripts: Sequence[WorkerdScript],
    *,
    emulator_port: int,
    binding_key: BindingKey,
    workerd: Path,
    listeners: Mapping[str, socket.socket] | None = None,
    control_fd: int | None = None,
) -> tuple[list[str], dict[str, str], list[int]]:
    """Write ``<state_dir>/<name>.capnp`` (mode 600) for `scripts` and return the workerd
    argv (run from `state_dir`), the environment carrying their secrets and the descriptors
    to pass: a script with a socket in `listeners` (by script name) serves on it
    (``--socket-fd``); `control_fd` gets workerd's ``listen`` events (``--control-fd``)."""
    config = render_config(scripts, f"127.0.0.1:{emulator_port}", binding_key)
    _write_private(state_dir / f"{name}.capnp", config)
    env = {
        secret_env_name(w.version.script, str(b["name"])): str(b.get("text", ""))
        for w in scripts
        for b in w.version.bindings
        if b["type"] == "secret_text"
    }
    argv = [str(workerd), "serve", f"{name}.capnp", "--experimental"]
    fds = []
    for w in scripts:
        sock = (listeners or {}).get(w.service)
        if sock is not None:
            argv += ["--socket-fd", f"{w.service}={sock.fileno()}"]
            fds.append(sock.fileno())
    if control_fd is not None:
        argv += ["--control-fd", str(control_fd)]
        fds.append(control_fd)
    return argv, env, fds
