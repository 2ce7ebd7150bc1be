"""The workerd side of the local platform: its config, rendered from
``templates/workerd/config.capnp.j2``, and where its binary lives.

Bindings of type ``ai`` and ``vectorize`` become workerd's own internal modules used as
wrapped bindings (the Worker sees the real `env.AI` / `env.VECTORIZE` classes) whose inner
``fetcher`` is an `external` service pointing at the emulator; which service backs which
binding type comes from the registry. Each such external service injects a binding token
(`cfai.local.services.frontdoor.tokens`) minted with the running emulator's key, so the
emulator serves a binding call only from workerd, only on that binding's routes and (for
Vectorize) only on the bound index. The config therefore holds this run's binding tokens
and is written with mode 600. Plain-text vars are ``text`` bindings; Worker secrets are
``fromEnvironment`` bindings, so no Worker secret or API token is written to the file.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from cfai.errors import LocalPlatformError, ToolMissingError
from cfai.local.services import REGISTRY, Service, WorkerdService
from cfai.local.services.frontdoor import BINDING_HEADER, KEY_FILE, BindingKey
from cfai.render import RenderedWorker

__all__ = ["WorkerdWorker", "find_workerd", "render_config", "secret_env_name"]

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


def secret_env_name(worker: str, binding: str) -> str:
    """Environment variable workerd reads a secret binding from."""
    safe = "".join(c if c.isalnum() else "_" for c in worker).upper()
    return f"CFAI_SECRET_{safe}_{binding}"


@dataclass(frozen=True)
class WorkerdWorker:
    """One rendered Worker placed on a local socket."""

    rendered: RenderedWorker
    port: int
    module_path: str  # relative to the config file

    @property
    def service(self) -> str:
        return self.rendered.script_name


def render_config(
    workers: Sequence[WorkerdWorker],
    emulator_address: str,
    binding_key: BindingKey,
    services: Sequence[type[Service]] = REGISTRY,
) -> str:
    """The workerd config text for `workers`, their bindings backed by `services` (the
    registry) and authenticated with tokens minted from `binding_key`."""
    by_type = {t: s for s in services for t in s.binding_types}
    externals: dict[str, WorkerdService] = {}
    ctx_workers: list[dict[str, Any]] = []
    for w in workers:
        r = w.rendered
        binding_dicts = [b.as_dict() for b in r.bindings]
        bindings: list[dict[str, Any]] = []
        for service in dict.fromkeys(by_type.values()):
            mine = [b for b in binding_dicts if b["type"] in service.binding_types]
            if mine:
                for ext in service.workerd_services(r.key, mine):
                    externals[ext.name] = ext
        for b in binding_dicts:
            if b["type"] in by_type:
                wb = by_type[b["type"]].workerd_binding(r.key, b)
                bindings.append(
                    {"kind": "wrapped", "name": wb.name, "module": wb.module, "inner": wb.inner}
                )
            elif b["type"] == "plain_text":
                bindings.append({"kind": "text", "name": b["name"], "value": b.get("text", "")})
            elif b["type"] == "secret_text":
                bindings.append(
                    {"kind": "env", "name": b["name"], "value": secret_env_name(r.key, b["name"])}
                )
            else:
                raise ValueError(
                    f"workers.{r.key}: binding type {b['type']!r} is not supported locally"
                )
        ctx_workers.append(
            {
                "service": w.service,
                "address": f"127.0.0.1:{w.port}",
                "main_module": r.main_module,
                "module_path": w.module_path,
                "compatibility_date": r.compatibility_date,
                "compatibility_flags": r.compatibility_flags,
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
    workers: Sequence[WorkerdWorker],
    emulator_port: int,
    auth_token: str,
    project_dir: Path,
    listeners: Mapping[str, socket.socket] | None = None,
) -> tuple[list[str], dict[str, str], list[int]]:
    """Write ``<state_dir>/<name>.capnp`` (mode 600) for `workers` and return the workerd
    argv (run from `state_dir`), the environment carrying their secrets and the descriptors
    to pass: a Worker with a socket in `listeners` (by key) serves on it (``--socket-fd``).
    The emulator of `state_dir` must be running: its binding key signs the config."""
    try:
        key = BindingKey.read(state_dir)
    except (FileNotFoundError, ValueError):
        raise LocalPlatformError(
            f"no binding key in {state_dir / KEY_FILE}: start the emulator before workerd"
        ) from None
    config = render_config(workers, f"127.0.0.1:{emulator_port}", key)
    _write_private(state_dir / f"{name}.capnp", config)
    env = {
        secret_env_name(w.rendered.key, b.name): auth_token
        for w in workers
        for b in w.rendered.bindings
        if b.type == "secret_text"
    }
    argv = [str(find_workerd(project_dir)), "serve", f"{name}.capnp", "--experimental"]
    fds = []
    for w in workers:
        sock = (listeners or {}).get(w.rendered.key)
        if sock is not None:
            argv += ["--socket-fd", f"{w.service}={sock.fileno()}"]
            fds.append(sock.fileno())
    return argv, env, fds
