"""The custom kind: the user's own ES module, taken byte-for-byte.

cfai provisions it with the bindings it declares (under the names its code uses), runs it
and checks it with the Worker's own contract files; it knows nothing of its routes or the
models it calls.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from pydantic import Field

from cfai.catalog import Catalog
from cfai.errors import ConfigError, Problem
from cfai.kinds._support import unknown
from cfai.kinds.assets import AssetsConfig, asset_problems, collect
from cfai.kinds.base import (
    BINDING_NAME,
    URL_PATH,
    Binding,
    CheckContext,
    ConfigModel,
    Kind,
    KindCost,
    Readiness,
    RenderContext,
    Rendering,
    WorkerConfig,
)
from cfai.kinds.pricing import Traffic

__all__ = [
    "KIND",
    "CustomBindings",
    "CustomKind",
    "CustomWorkerConfig",
    "GatewayRef",
    "VectorizeRef",
]


# A symbolic link may point anywhere; what is rendered, deployed and committed under
# workers/ must come from the project.
_ESCAPES = "{main!r} resolves outside the project (a symbolic link?); use a file inside it"


class VectorizeRef(ConfigModel):
    binding: str = Field("VECTORIZE", pattern=BINDING_NAME)
    index: str


class GatewayRef(ConfigModel):
    binding: str = Field("GATEWAY_ID", pattern=BINDING_NAME, description="plain-text var name")
    gateway: str


class CustomBindings(ConfigModel):
    """What a custom Worker's code expects, under the binding names the code uses."""

    ai: str | None = Field(None, pattern=BINDING_NAME)
    vectorize: VectorizeRef | None = None
    gateway: GatewayRef | None = None
    vars: dict[str, str] = Field(default_factory=dict)
    auth_token: str | None = Field(None, pattern=BINDING_NAME, description="secret binding name")


class CustomWorkerConfig(WorkerConfig):
    """The user's own ES module, taken byte-for-byte; cfai provisions, runs and checks it."""

    kind: Literal["custom"] = "custom"
    main: str = Field(description="path of the ES module, relative to the project root")
    bindings: CustomBindings = Field(default_factory=CustomBindings)
    auth: bool = Field(False, description="the code checks auth itself via bindings.auth_token")
    # Cloudflare asks no route of a Worker: by default one is started when it answers any
    # HTTP response at all (a 404 from a Worker without `/` included).
    health_path: str | None = Field(
        None,
        pattern=URL_PATH,
        max_length=1024,
        description="a GET path that answers `health_status` once the Worker is ready",
    )
    health_status: int = Field(200, ge=100, le=599, description="what `health_path` answers")
    assets: AssetsConfig | None = Field(None, description="static files served before the code")


def _outside(base_dir: Path, main: str) -> bool:
    """Whether `main` resolves (symbolic links followed) outside `base_dir`."""
    return not (base_dir / main).resolve().is_relative_to(base_dir.resolve())


def _read(key: str, worker: CustomWorkerConfig, base_dir: Path) -> str:
    path = base_dir / worker.main
    if _outside(base_dir, worker.main):
        # Checked again here, not only at load: the link may have changed since.
        raise ConfigError([Problem(f"workers.{key}.main", _ESCAPES.format(main=worker.main))])
    try:
        # Bytes, not read_text: no newline translation, so the hash is of the user's bytes.
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        problem = f"file {worker.main!r} not found in {base_dir}"
    except UnicodeDecodeError as err:
        problem = f"{worker.main!r} is not UTF-8 text ({err.reason} at byte {err.start})"
    raise ConfigError([Problem(f"workers.{key}.main", problem)])


class CustomKind(Kind[CustomWorkerConfig]):
    name = "custom"
    config = CustomWorkerConfig
    # The user's code need not serve /health (Cloudflare asks no route of a Worker), and no
    # probe request may reach it uninvited: it runs once its port takes connections (the
    # runtime routes a version only after its workerd listens), unless it declares a probe.
    readiness = Readiness(None, None)

    def problems(
        self, key: str, worker: CustomWorkerConfig, ctx: CheckContext
    ) -> Iterator[Problem]:
        base, b = f"workers.{key}", worker.bindings
        if b.vectorize and b.vectorize.index not in ctx.indexes:
            yield unknown(
                f"{base}.bindings.vectorize.index", "index", b.vectorize.index, ctx.indexes
            )
        if b.gateway and b.gateway.gateway not in ctx.gateways:
            yield unknown(
                f"{base}.bindings.gateway.gateway", "gateway", b.gateway.gateway, ctx.gateways
            )
        if worker.auth and not b.auth_token:
            yield Problem(
                f"{base}.auth", "auth is on but bindings.auth_token names no secret binding"
            )
        main = Path(worker.main)
        if main.is_absolute() or ".." in main.parts:
            yield Problem(f"{base}.main", f"{worker.main!r} must be a path inside the project")
        elif ctx.base_dir is not None and _outside(ctx.base_dir, worker.main):
            yield Problem(f"{base}.main", _ESCAPES.format(main=worker.main))
        elif not worker.main.endswith((".js", ".mjs")):
            yield Problem(f"{base}.main", f"{worker.main!r} must be an ES module (.js or .mjs)")
        elif ctx.base_dir is not None and not (ctx.base_dir / worker.main).is_file():
            yield Problem(f"{base}.main", f"file {worker.main!r} not found in {ctx.base_dir}")
        if worker.assets is not None:
            yield from asset_problems(f"{base}.assets", worker.assets, ctx.base_dir)
            names = {b.ai, b.auth_token, *b.vars, b.gateway.binding if b.gateway else None,
                     b.vectorize.binding if b.vectorize else None}  # fmt: skip
            if worker.assets.binding is not None and worker.assets.binding in names:
                yield Problem(
                    f"{base}.assets.binding",
                    f"{worker.assets.binding!r} is already the name of another binding",
                )

    def render(self, key: str, worker: CustomWorkerConfig, ctx: RenderContext) -> Rendering:
        b = worker.bindings
        bindings: list[Binding] = []
        if b.ai:
            bindings.append(Binding("ai", b.ai))
        if b.vectorize:
            index = ctx.physical_name(b.vectorize.index)
            bindings.append(Binding("vectorize", b.vectorize.binding, index_name=index))
        gateway = ctx.physical_name(b.gateway.gateway) if b.gateway else None
        if b.gateway:
            bindings.append(Binding("plain_text", b.gateway.binding, text=gateway))
        bindings.extend(Binding("plain_text", name, text=value) for name, value in b.vars.items())
        if b.auth_token:
            bindings.append(Binding("secret_text", b.auth_token))
        assets = None
        if worker.assets is not None:
            assets = collect(ctx.base_dir, worker.assets, f"workers.{key}.assets")
            if worker.assets.binding:
                bindings.append(Binding("assets", worker.assets.binding))
        return Rendering(
            bindings=tuple(bindings),
            gateway=gateway,
            source=_read(key, worker, ctx.base_dir),
            assets=assets,
            context={"main": worker.main},
        )

    def readiness_of(self, worker: CustomWorkerConfig) -> Readiness:
        if worker.health_path is None:
            return self.readiness
        return Readiness(worker.health_path, worker.health_status)

    def cost(
        self,
        key: str,
        worker: CustomWorkerConfig,
        traffic: Traffic,
        catalog: Catalog | None = None,
    ) -> KindCost:
        note = "custom code: cfai does not know which models it calls"
        return KindCost((), (f"{key} (custom): price unknown ({note})",), note)

    def sources(self, worker: CustomWorkerConfig) -> tuple[str, ...]:
        return (worker.main,)


KIND = CustomKind()
