"""Catalog of Workers AI models: task, input/output form, capabilities, limits, prices.

One source of truth for the config cross-checks (a rag worker's embedding model must be a
`text-embeddings` model whose dimensions equal its index's), the renderer (how a worker
reads a model's output), the emulator's stand-in models (which form and schema to honour),
``cfai models`` and cost estimates. Every entry cites the public page it was taken from
(`ModelSpec.source`: the model's page under https://developers.cloudflare.com/workers-ai/models/);
prices are Cloudflare's published unit prices.

Cloudflare adds models every month, so the catalog is open: a project's ``catalog.json``
(written by ``cfai models sync``) is preferred over the built-in entries
(`catalog_for(project_dir)`), and a declaration may name a model neither lists when it
says which task the model does (`ModelSpec.declared`).

Example::

    >>> from cfai.catalog import get_model, Task
    >>> get_model("@cf/baai/bge-base-en-v1.5").dimensions
    768
    >>> get_model("@cf/meta/llama-3.1-8b-instruct").task is Task.TEXT_GENERATION
    True
"""

from __future__ import annotations

from pathlib import Path

from cfai.catalog._media import MEDIA_MODELS
from cfai.catalog._project import (
    CATALOG_FILE,
    Catalog,
    CatalogFile,
    SyncedModel,
    SyncedPrice,
    load_catalog,
)
from cfai.catalog._spec import (
    FREE_NEURONS_PER_DAY,
    NEURON_PRICE_USD,
    TASK_NAMES,
    AudioInput,
    Form,
    ImageLimits,
    ModelSpec,
    Output,
    Price,
    Reasoning,
    Task,
    ToolShape,
    Vision,
)
from cfai.catalog._text import TEXT_MODELS

__all__ = [
    "CATALOG",
    "CATALOG_FILE",
    "FREE_NEURONS_PER_DAY",
    "NEURON_PRICE_USD",
    "TASK_NAMES",
    "AudioInput",
    "Catalog",
    "CatalogFile",
    "Form",
    "ImageLimits",
    "ModelSpec",
    "Output",
    "Price",
    "Reasoning",
    "SyncedModel",
    "SyncedPrice",
    "Task",
    "ToolShape",
    "Vision",
    "catalog_for",
    "get_model",
    "models_for",
]

#: The built-in catalog.
CATALOG = Catalog((*TEXT_MODELS, *MEDIA_MODELS))


def catalog_for(project_dir: Path | None) -> Catalog:
    """The catalog of the project in `project_dir`: its ``catalog.json`` preferred over the
    built-in entries; the built-in catalog alone without a project or a file.
    Raises `cfai.errors.ConfigError` when ``catalog.json`` is malformed."""
    return load_catalog(project_dir, CATALOG)


def get_model(name: str) -> ModelSpec:
    """The built-in entry for `name`; KeyError naming it when the catalog does not list it."""
    return CATALOG.get_model(name)


def models_for(task: Task) -> list[str]:
    """Names of every built-in model of `task`, sorted."""
    return CATALOG.models_for(task)
