"""What a Worker kind is: the `Kind` plugin interface and the types it speaks.

A kind owns its declaration model (a `WorkerConfig` subclass with a ``kind`` literal), its
template, its render context and bindings, its cross-checks, its HTTP routes, its contract
selections, its cost rule, its readiness probe and its example request. The rest of cfai
asks the registry (`cfai.kinds.registry`) and never tests a kind by name.

Example::

    class EchoKind(Kind[EchoWorkerConfig]):
        name = "echo"
        config = EchoWorkerConfig
        template = "workers/echo.js.j2"
        routes = (HEALTH, Route("POST", "/echo", summary="answer the text back"))
        main_route = routes[1]
        example = Example("POST", "/echo", {"text": "hi"})

        def render(self, key, worker, ctx):
            return Rendering(bindings=ai_bindings(worker.model), models=(worker.model,))
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Set
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, Generic, Literal, TypeVar

from pydantic import Field, JsonValue

from cfai.catalog import Catalog, Task, catalog_for
from cfai.errors import Problem
from cfai.kinds._config import (
    BINDING_NAME,
    DATE,
    NAME_PREFIX,
    PATTERN_RULES,
    URL_PATH,
    ConfigModel,
)
from cfai.kinds.assets import AssetSet
from cfai.kinds.pricing import LineItem, Traffic
from cfai.outputs import Outputs, WorkerOutput

__all__ = [
    "BINDING_NAME",
    "DATE",
    "HEALTH",
    "NAME_PREFIX",
    "PATTERN_RULES",
    "URL_PATH",
    "Binding",
    "CheckContext",
    "ConfigModel",
    "Example",
    "Kind",
    "KindCost",
    "ModelUse",
    "Readiness",
    "RenderContext",
    "Rendering",
    "Route",
    "Selection",
    "WorkerConfig",
]


class WorkerConfig(ConfigModel):
    """What every Worker declares, whatever its kind."""

    kind: str
    auth: bool = Field(True, description="require Authorization: Bearer <AUTH_TOKEN> (not /health)")
    compatibility_date: str | None = Field(
        None, pattern=DATE, description="overrides the platform's"
    )
    compatibility_flags: tuple[str, ...] | None = None
    max_request_bytes: int = Field(1_048_576, ge=1024, le=100 * 1_048_576)
    contract: tuple[str, ...] = Field((), description="extra pytest files run by `cfai test`")
    playground: bool = Field(
        False, description="serve a page to try the Worker at GET / (chat, rag, image, speech)"
    )


@dataclass(frozen=True)
class Binding:
    """One Worker binding as Cloudflare's upload metadata (and the emulator) names it."""

    type: Literal["ai", "vectorize", "plain_text", "secret_text", "assets"]
    name: str
    index_name: str | None = None  # vectorize: the physical index name
    text: str | None = None  # plain_text value; secrets are supplied at deploy/run time

    def as_dict(self) -> dict[str, str]:
        """`{"type", "name"}` plus `index_name`/`text` when set.

        >>> Binding("vectorize", "VECTORIZE", index_name="docs").as_dict()
        {'type': 'vectorize', 'name': 'VECTORIZE', 'index_name': 'docs'}
        """
        out = {"type": self.type, "name": self.name}
        if self.index_name is not None:
            out["index_name"] = self.index_name
        if self.text is not None:
            out["text"] = self.text
        return out


@dataclass(frozen=True)
class Route:
    """One HTTP route of a kind's Worker. `auth`: needs the bearer token when the Worker
    has auth on. ``{id}`` in `path` stands for a path parameter."""

    method: str
    path: str
    auth: bool = True
    summary: str = ""


#: Every templated Worker answers `GET /health` without a token.
HEALTH = Route("GET", "/health", auth=False, summary="worker, kind, template_sha256, models")


@dataclass(frozen=True)
class Readiness:
    """When a started Worker counts as ready: `path` answers `status` (None: any HTTP answer).
    No `path`: its public port takes connections, and no request reaches the Worker's code
    (a user's Worker may do anything on any request; Cloudflare sends none at deploy)."""

    path: str | None = "/health"
    status: int | None = 200

    def accepts(self, status: int) -> bool:
        return self.status is None or status == self.status


@dataclass(frozen=True)
class Example:
    """A request worth pasting: `cfai local up` and `status` print it as a curl command.
    `body` goes as JSON; `data` is curl's own body arguments instead (``--data-binary @f``,
    ``-F file=@f``); `curl_extra` follows (``-o /tmp/out.png`` for a binary answer: never a
    file in the directory the command is pasted in)."""

    method: str
    path: str
    body: JsonValue = None
    curl_extra: str = ""
    data: str = ""

    @property
    def authenticated(self) -> bool:
        """True when the request goes to a route behind the Worker's token."""
        return self.body is not None or bool(self.data)


@dataclass(frozen=True)
class CheckContext:
    """What a kind's cross-checks may know of the rest of the declaration.

    `gateways`/`indexes` hold every declared key, valid or not (a reference to an invalid
    one is not reported twice); `index_dimensions` only the valid indexes'. `finetunes`
    maps every declared finetune key to its base model (None when its entry is invalid)."""

    gateways: Set[str]
    indexes: Set[str]
    index_dimensions: Mapping[str, int]
    base_dir: Path | None = None
    finetunes: Mapping[str, str | None] = field(default_factory=dict)

    @property
    def catalog(self) -> Catalog:
        """The project's model catalog (its ``catalog.json`` preferred, `cfai.catalog`)."""
        return catalog_for(self.base_dir)


@dataclass(frozen=True)
class RenderContext:
    """What a kind's render may know: physical names and where the project's files are.
    `finetune_name` gives a finetune key's Cloudflare name (`cfai.config.finetunes`)."""

    physical_name: Callable[[str], str]
    base_dir: Path
    finetune_name: Callable[[str], str] | None = None

    @property
    def catalog(self) -> Catalog:
        """The project's model catalog (its ``catalog.json`` preferred, `cfai.catalog`)."""
        return catalog_for(self.base_dir)


@dataclass(frozen=True)
class Rendering:
    """A kind's part of a rendered Worker.

    `settings` are the stack's values the Worker reads at run time (var name -> value):
    they travel as plain-text vars, so the module is the same in every stack (the renderer
    encodes them; see `cfai.render`). `context` feeds the kind's template and becomes code:
    only what must be the same in every stack belongs there. A kind without a template gives
    the module itself as `source`, and in `context` what it is made from (e.g. its path),
    which names the setting when two stacks render different code for one Worker.
    """

    bindings: tuple[Binding, ...]
    models: tuple[str, ...] = ()
    gateway: str | None = None
    context: Mapping[str, Any] = field(default_factory=dict)
    source: str | None = None
    #: Static assets served before the Worker (`cfai.kinds.assets`), with their binding.
    assets: AssetSet | None = None
    settings: Mapping[str, JsonValue] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelUse:
    """One model a Worker calls: the setting naming it, the task that setting needs, and
    how the Worker is called in messages (`role`, e.g. "a chat worker")."""

    setting: str
    name: str
    task: Task
    role: str


@dataclass(frozen=True)
class KindCost:
    """A Worker's billed items a day and the assumptions behind them (`note`: why unknown)."""

    items: tuple[LineItem, ...]
    assumptions: tuple[str, ...] = ()
    note: str = ""


#: Picks the Workers a contract fixture runs on, from the outputs map.
Selection = Callable[[WorkerOutput, Outputs], bool]

C = TypeVar("C", bound=WorkerConfig)


class Kind(ABC, Generic[C]):
    """One Worker kind. Subclasses set the class attributes, implement `render` and
    override what else they need."""

    name: ClassVar[str]
    config: type[C]
    #: Template of the main module, under the templates directory; None: the user's module.
    template: ClassVar[str | None] = None
    routes: ClassVar[tuple[Route, ...]] = ()
    #: The JSON route the common contract checks probe (405, 400, 413, 401); None: no common checks.
    main_route: ClassVar[Route | None] = None
    readiness: ClassVar[Readiness] = Readiness()
    example: ClassVar[Example] = Example("GET", "/health")
    #: One example per route worth showing (`cfai local up` prints each); () = `example`.
    examples: ClassVar[tuple[Example, ...]] = ()
    #: The kind's contract check modules, in `cfai/contract/checks`.
    checks: ClassVar[tuple[str, ...]] = ()
    #: Whether the kind has a playground page (``templates/playground/<name>/``).
    playground: ClassVar[bool] = False
    #: Contract fixture name -> which of this kind's Workers it runs on.
    selections: ClassVar[Mapping[str, Selection]] = MappingProxyType({})

    def readiness_of(self, worker: C) -> Readiness:
        """When `worker` counts as started: the kind's `readiness` unless a kind lets a
        Worker declare its own."""
        return self.readiness

    @property
    def all_examples(self) -> tuple[Example, ...]:
        """The kind's examples: `examples`, or its one `example`."""
        return self.examples or (self.example,)

    @property
    def templated(self) -> bool:
        """True when cfai renders the code, so the common Worker HTTP API holds."""
        return self.template is not None

    def problems(self, key: str, worker: C, ctx: CheckContext) -> Iterator[Problem]:
        """Cross-checks a single model cannot make (references, model tasks, limits)."""
        return iter(())

    def model_uses(self, worker: C) -> tuple[ModelUse, ...]:
        """Every Workers AI model the Worker calls, with the task its setting needs."""
        return ()

    def notices(self, key: str, worker: C, ctx: CheckContext) -> Iterator[Problem]:
        """Warnings that do not stop a deploy (`cfai validate` and `cfai render` print them):
        by default, each model the catalog does not list that the declared `task` vouches for."""
        declared = getattr(worker, "task", None)
        for use in self.model_uses(worker):
            if use.name not in ctx.catalog and declared is use.task:
                yield Problem(
                    f"workers.{key}.{use.setting}",
                    f"{use.name!r} is not in the model catalog; accepted as a {use.task.value} "
                    f"model because the worker declares task: {use.task.value} (cfai cannot "
                    "check its inputs, limits or price; `cfai models sync` adds Cloudflare's "
                    "current models)",
                )

    @abstractmethod
    def render(self, key: str, worker: C, ctx: RenderContext) -> Rendering:
        """Bindings, models and the template context (or the module) of `worker`."""

    def cost(
        self, key: str, worker: C, traffic: Traffic, catalog: Catalog | None = None
    ) -> KindCost:
        """What `traffic` costs a day on `worker` at `catalog`'s prices (default: the
        built-in catalog's); the default rule: unknown."""
        note = f"cfai has no cost rule for {self.name} Workers"
        return KindCost((), (f"{key} ({self.name}): price unknown ({note})",), note)

    def output_fields(self, worker: C) -> dict[str, Any]:
        """What the kind adds to its Worker's entry in the outputs map (`WorkerOutput`)."""
        return {}

    def sources(self, worker: C) -> tuple[str, ...]:
        """Project-relative files the Worker's code is read from (besides templates)."""
        return ()
