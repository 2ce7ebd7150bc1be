"""The catalog a project sees: the built-in models, overlaid by the project's ``catalog.json``.

``catalog.json`` is written by ``cfai models sync`` from Cloudflare's model search API; its
one typed owner is `CatalogFile`. Loading prefers it: a model it lists takes its task,
context window, prices and capabilities from there (fields it does not report keep the
built-in values), and a model only it lists joins the catalog in its task's usual form.
This module is where pydantic's errors about that file become a `ConfigError`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cfai.catalog._spec import ModelSpec, Price, Reasoning, Task, Vision
from cfai.errors import ConfigError, Problem

__all__ = ["CATALOG_FILE", "Catalog", "CatalogFile", "SyncedModel", "SyncedPrice", "load_catalog"]

CATALOG_FILE = "catalog.json"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SyncedPrice(_Frozen):
    unit: str
    usd: float = Field(ge=0)
    per: int = Field(1_000_000, ge=1)


class SyncedModel(_Frozen):
    """One model as the search API described it; None: the API did not say."""

    name: str = Field(min_length=1)
    task: Task
    description: str = ""
    context_window: int | None = Field(None, ge=1)
    max_input_tokens: int | None = Field(None, ge=1)
    dimensions: int | None = Field(None, ge=1)
    prices: tuple[SyncedPrice, ...] | None = None
    tools: bool | None = None
    reasoning: bool | None = None
    vision: bool | None = None
    beta: bool | None = None


class CatalogFile(_Frozen):
    """``catalog.json``: where it was synced from, when, and every model it found."""

    source: str
    synced_at: str
    models: tuple[SyncedModel, ...]

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.model_dump(mode="json"), indent=2) + "\n", "utf-8")


class Catalog(Mapping[str, ModelSpec]):
    """Models by name. `source` says where they came from; `synced` names the models
    ``catalog.json`` described.

    Example::

        catalog = load_catalog(Path("."))
        catalog["@cf/meta/llama-3.1-8b-instruct"].context_window
        catalog.models_for(Task.TEXT_EMBEDDINGS)
    """

    def __init__(
        self, models: Iterable[ModelSpec], *, source: str = "built-in", synced: Iterable[str] = ()
    ) -> None:
        self._models = {m.name: m for m in models}
        self.source = source
        self.synced = frozenset(synced)

    def __getitem__(self, name: str) -> ModelSpec:
        return self._models[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._models)

    def __len__(self) -> int:
        return len(self._models)

    def get_model(self, name: str) -> ModelSpec:
        """The entry of `name`; KeyError naming it when the catalog does not list it."""
        try:
            return self._models[name]
        except KeyError:
            raise KeyError(f"unknown Workers AI model {name!r}") from None

    def models_for(self, task: Task) -> list[str]:
        """Names of every model of `task`, sorted."""
        return sorted(m.name for m in self._models.values() if m.task is task)

    def overlaid(self, file: CatalogFile, source: str) -> Catalog:
        """This catalog with `file`'s models preferred."""
        models = dict(self._models)
        for synced in file.models:
            models[synced.name] = _merge(models.get(synced.name), synced)
        return Catalog(models.values(), source=source, synced=(m.name for m in file.models))


def _merge(base: ModelSpec | None, synced: SyncedModel) -> ModelSpec:
    if base is None or base.task is not synced.task:
        base = replace(ModelSpec.declared(synced.name, synced.task), known=True)
    fields: dict[str, object] = {"source": "catalog.json (Cloudflare model search)"}
    if synced.description:
        fields["description"] = synced.description
    for name in ("context_window", "max_input_tokens", "dimensions", "tools", "beta"):
        value = getattr(synced, name)
        if value is not None:
            fields[name] = value
    if synced.prices is not None:
        fields["prices"] = tuple(Price(p.unit, p.usd, p.per) for p in synced.prices)
    if synced.reasoning is not None and synced.reasoning != (base.reasoning is not Reasoning.NONE):
        fields["reasoning"] = Reasoning.REASONING_CONTENT if synced.reasoning else Reasoning.NONE
    if synced.vision is not None and synced.vision != (base.vision is not Vision.NONE):
        fields["vision"] = Vision.CONTENT_PARTS if synced.vision else Vision.NONE
    return replace(base, **fields)  # type: ignore[arg-type]


def read_catalog_file(path: Path) -> CatalogFile:
    """Parse ``catalog.json``; `ConfigError` naming the file and what is wrong."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise ConfigError([Problem(CATALOG_FILE, f"cannot be read: {err}")], str(path)) from None
    try:
        return CatalogFile.model_validate(data)
    except ValidationError as err:
        problems = [
            Problem(
                ".".join([CATALOG_FILE, *(str(p) for p in e["loc"])]),
                e["msg"].removeprefix("Value error, "),
            )
            for e in err.errors()
        ]
        raise ConfigError(problems, str(path)) from None


_CACHE: dict[tuple[str, int, int, int], Catalog] = {}


def load_catalog(project_dir: Path | None, builtin: Catalog) -> Catalog:
    """`builtin` overlaid by ``<project_dir>/catalog.json`` when there is one."""
    if project_dir is None:
        return builtin
    path = Path(project_dir) / CATALOG_FILE
    try:
        st = os.stat(path)
    except OSError:
        return builtin
    # Loading is cached per file version: checks and renders ask for it once per model.
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size, id(builtin))
    if key not in _CACHE:
        if len(_CACHE) > 32:
            _CACHE.clear()
        _CACHE[key] = builtin.overlaid(read_catalog_file(path), source=str(path))
    return _CACHE[key]
