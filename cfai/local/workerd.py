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

A version with static assets gets two more Workers and a ``disk`` service: the asset router
(``templates/workerd/assets-router.js``, Cloudflare's asset routing) takes the socket and
hands what is not an asset to the Worker (service ``<script>~worker``); a second instance
without the Worker is its assets binding (``<script>~assets``); the files, stored by hash,
are the disk service ``<script>~files`` (read-only).
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
from cfai.kinds.assets import media_type
from cfai.local.services import REGISTRY, Service, WorkerdService
from cfai.local.services.frontdoor import BINDING_HEADER, BindingKey
from cfai.local.services.workers_scripts import RunnableVersion, module_kind

__all__ = [
    "ASSETS_DIR",
    "ASSETS_ROUTER",
    "WorkerdScript",
    "asset_files",
    "find_workerd",
    "launch",
    "render_config",
    "secret_env_name",
    "templates_dir",
]

#: Where a version's asset files (by hash) and the asset router go, inside its module dir.
ASSETS_DIR = "__cfai_assets__"
#: The asset router Worker (Cloudflare's asset routing), in the templates directory.
ASSETS_ROUTER = "workerd/assets-router.js"
# The router's own compatibility date: it needs nothing newer.
_ROUTER_DATE = "2025-09-01"

# The module kinds workerd loads (source maps and the like are stored, not loaded).
_LOADED = ("esModule", "commonJsModule", "text", "data", "wasm", "json")

_TEMPLATES = Path(__file__).resolve().parent.parent / "_templates"


def templates_dir() -> Path:
    """cfai's templates (packaged beside the package, else the repository's)."""
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


def asset_files(version: RunnableVersion) -> dict[str, list[str]]:
    """Served path -> [hash, content type] of a version's assets (the type as uploaded; a
    file uploaded without one is typed by its name; ``application/null``: none)."""
    out: dict[str, list[str]] = {}
    read = version.read_asset
    for path, entry in dict((version.assets or {}).get("manifest") or {}).items():
        digest = str(entry["hash"])
        stored = read(digest) if read is not None else None
        kind = stored[0] if stored is not None else ""
        if not kind:
            kind = media_type(path)
        out[path] = [digest, "" if kind.startswith("application/null") else kind]
    return out


def _asset_workers(w: WorkerdScript) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """The router in front of the Worker (on the socket), the assets binding's server and
    the disk service holding the files."""
    v = w.version
    folder = f"{w.module_dir}/{ASSETS_DIR}"
    disk = f"{v.script}~files"
    settings = dict((v.assets or {}).get("config") or {})
    config = json.dumps(
        {
            "html_handling": settings.get("html_handling", "auto-trailing-slash"),
            "not_found_handling": settings.get("not_found_handling", "none"),
            "run_worker_first": settings.get("run_worker_first", False),
            "compatibility_date": v.compatibility_date,
            "files": asset_files(v),
        },
        separators=(",", ":"),
    )

    def router(service: str, address: str | None, user: str | None) -> dict[str, Any]:
        bindings: list[dict[str, Any]] = [
            {"kind": "service", "name": "DISK", "value": disk},
            {"kind": "json", "name": "CONFIG", "value": config},
        ]
        if user is not None:
            bindings.append({"kind": "service", "name": "USER", "value": user})
        return {
            "service": service,
            "address": address,
            "modules": [{"name": "router.js", "kind": "esModule", "path": f"{folder}/router.js"}],
            "service_worker": None,
            "compatibility_date": _ROUTER_DATE,
            "compatibility_flags": [],
            "bindings": bindings,
        }

    has_code = bool(v.entry)
    front = router(v.script, f"127.0.0.1:{w.port}", f"{v.script}~worker" if has_code else None)
    workers = [front, router(f"{v.script}~assets", None, None)]
    return workers, [{"name": disk, "path": f"{folder}/files"}]


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
        elif kind == "assets":
            bindings.append({"kind": "service", "name": name, "value": f"{v.script}~assets"})
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
    disks: list[dict[str, str]] = []
    for w in scripts:
        v = w.version
        address: str | None = f"127.0.0.1:{w.port}"
        service = w.service
        if v.assets is not None:
            # The asset router takes the socket; the Worker's code sits behind it.
            routers, files = _asset_workers(w)
            ctx_workers += routers
            disks += files
            address, service = None, f"{v.script}~worker"
            if not v.entry:
                continue  # static assets only
        bindings, needed = _bindings(w, by_type)
        externals.update((e.name, e) for e in needed)
        ctx_workers.append(
            {
                "service": service,
                "address": address,
                "modules": _modules(w),
                "service_worker": f"{w.module_dir}/{v.body_part}" if v.body_part else None,
                "compatibility_date": v.compatibility_date,
                "compatibility_flags": list(v.compatibility_flags),
                "bindings": bindings,
            }
        )
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
    )
    env.filters["capnp"] = _capnp
    template = env.get_template("workerd/config.capnp.j2")
    return template.render(
        workers=ctx_workers,
        disks=disks,
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
