"""Cloudflare's model search objects (``GET /accounts/{id}/ai/models/search``), both ways.

One owner of that wire format: the local emulator answers with `search_object(spec)`;
``cfai models sync`` reads Cloudflare's (or the emulator's) answer with `synced_model`.

An object is ``{id, source, name, description, task: {id, name, description}, created_at,
tags, properties: [{property_id, value}]}``; the properties cfai reads are
``context_window``, ``max_input_tokens``, ``output_dimensions``, ``function_calling``,
``reasoning``, ``vision``, ``beta`` and ``price`` (a list of ``{unit, price, currency}``)
(the model JSON files of cloudflare/cloudflare-docs, ``src/content/workers-ai-models/``,
are these objects; wrangler's ``ai models`` reads the same shape).

Example::

    >>> from cfai.catalog import get_model
    >>> obj = search_object(get_model("@cf/qwen/qwen3-embedding-0.6b"))
    >>> synced_model(obj).dimensions
    1024
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

from cfai.catalog._project import SyncedModel, SyncedPrice
from cfai.catalog._spec import TASK_NAMES, ModelSpec, Price, Reasoning, Task, Vision

__all__ = ["UNIT_LABELS", "price_of", "search_object", "synced_model", "task_of"]

#: cfai's price units and the unit labels of Cloudflare's ``price`` property.
UNIT_LABELS: dict[str, tuple[str, int]] = {
    "input_tokens": ("per M input tokens", 1_000_000),
    "output_tokens": ("per M output tokens", 1_000_000),
    "tiles": ("per 512 by 512 tile", 1),
    "steps": ("per step", 1),
    "audio_minutes": ("per audio minute", 1),
    "characters": ("per 1k characters", 1000),
}
_BY_LABEL = {label.lower(): (unit, per) for unit, (label, per) in UNIT_LABELS.items()}
_BY_TASK_NAME = {name.lower(): task for task, name in TASK_NAMES.items()}


def task_of(name: str) -> Task | None:
    """The `Task` of a search API task name ("Text Generation"), None when cfai has none."""
    return _BY_TASK_NAME.get(name.strip().lower())


def price_of(entry: Mapping[str, Any]) -> SyncedPrice | None:
    """A price list entry as cfai's unit and USD, None for a unit cfai does not bill by."""
    label = str(entry.get("unit", "")).strip().lower()
    price = entry.get("price")
    if not isinstance(price, int | float) or isinstance(price, bool) or price < 0:
        return None
    if entry.get("currency", "USD") != "USD":
        return None
    known = _BY_LABEL.get(label)
    if known is None:
        # e.g. "per 1M input tokens", "per audio minute (websocket)": tokens by direction.
        m = re.fullmatch(r"per (m|1m|million) (input|output) tokens?", label)
        if m is None:
            return None
        known = (f"{m.group(2)}_tokens", 1_000_000)
    return SyncedPrice(unit=known[0], usd=float(price), per=known[1])


def _flag(value: Any) -> bool:
    return value is True or str(value).strip().lower() == "true"


def _int(value: Any) -> int | None:
    try:
        n = int(str(value).replace(",", "").strip())
    except ValueError:
        return None
    return n if n > 0 else None


def synced_model(obj: Mapping[str, Any]) -> SyncedModel | None:
    """The `SyncedModel` of a search object, None when its task is one cfai does not know."""
    name = obj.get("name")
    task_obj = obj.get("task")
    task = task_of(str(task_obj.get("name", ""))) if isinstance(task_obj, Mapping) else None
    if not isinstance(name, str) or not name or task is None:
        return None
    props: dict[str, Any] = {}
    for prop in obj.get("properties") or []:
        if isinstance(prop, Mapping) and isinstance(prop.get("property_id"), str):
            props[prop["property_id"]] = prop.get("value")
    prices = None
    if isinstance(props.get("price"), list):
        found = [price_of(p) for p in props["price"] if isinstance(p, Mapping)]
        prices = tuple(p for p in found if p is not None)
    return SyncedModel(
        name=name,
        task=task,
        description=str(obj.get("description") or ""),
        context_window=_int(props["context_window"]) if "context_window" in props else None,
        max_input_tokens=_int(props["max_input_tokens"]) if "max_input_tokens" in props else None,
        dimensions=_int(props["output_dimensions"]) if "output_dimensions" in props else None,
        prices=prices,
        tools=_flag(props["function_calling"]) if "function_calling" in props else None,
        reasoning=_flag(props["reasoning"]) if "reasoning" in props else None,
        vision=_flag(props["vision"]) if "vision" in props else None,
        beta=_flag(props["beta"]) if "beta" in props else None,
    )


def _price_entry(p: Price) -> dict[str, Any]:
    label, per = UNIT_LABELS.get(p.unit, (f"per {p.per} {p.unit}", p.per))
    return {"unit": label, "price": round(p.usd * per / p.per, 10), "currency": "USD"}


def search_object(spec: ModelSpec) -> dict[str, Any]:
    """`spec` as Cloudflare's model search API describes a model."""
    props: list[dict[str, Any]] = []
    if spec.beta:
        props.append({"property_id": "beta", "value": "true"})
    if spec.context_window is not None:
        props.append({"property_id": "context_window", "value": str(spec.context_window)})
    if spec.max_input_tokens is not None:
        props.append({"property_id": "max_input_tokens", "value": str(spec.max_input_tokens)})
    if spec.dimensions is not None:
        props.append({"property_id": "output_dimensions", "value": str(spec.dimensions)})
    if spec.tools:
        props.append({"property_id": "function_calling", "value": "true"})
    if spec.reasoning is not Reasoning.NONE:
        props.append({"property_id": "reasoning", "value": "true"})
    if spec.vision is not Vision.NONE:
        props.append({"property_id": "vision", "value": "true"})
    if spec.prices:
        props.append({"property_id": "price", "value": [_price_entry(p) for p in spec.prices]})
    if spec.source.startswith("https://"):
        props.append({"property_id": "info", "value": spec.source})
    task_name = TASK_NAMES[spec.task]
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, spec.name)),
        "source": 1,
        "name": spec.name,
        "description": spec.description or f"{task_name} model {spec.name}",
        "task": {
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, "task:" + spec.task.value)),
            "name": task_name,
            "description": f"{task_name} models on Workers AI",
        },
        "created_at": "2025-01-01 00:00:00.000",
        "tags": [],
        "properties": props,
    }
