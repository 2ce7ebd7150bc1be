"""What a kind's cost rule works with: the traffic guess, billed line items and prices.

Units times the catalog's published prices (`cfai.catalog.Price`) give dollars; a model or
unit without a published price gives a line item of unknown price, never a free one.

Example::

    >>> items = priced("@cf/meta/llama-3.1-8b-instruct", {"input_tokens": 1_000_000})
    >>> items[0].usd_per_day
    0.282
"""

from __future__ import annotations

from dataclasses import dataclass

from cfai.catalog import CATALOG, Catalog, ModelSpec

__all__ = [
    "CHARS_PER_TOKEN",
    "DEFAULT_USER_TOKENS",
    "TILE_PIXELS",
    "LineItem",
    "Traffic",
    "priced",
]

#: Tokens a user's message adds to the system prompt when the traffic does not say.
DEFAULT_USER_TOKENS = 200
#: An image model's tiles are 512 x 512 pixels.
TILE_PIXELS = 512
#: Characters per token, the usual English rule of thumb (rag context size from chunk_size).
CHARS_PER_TOKEN = 4


@dataclass(frozen=True)
class Traffic:
    """What each Worker is assumed to receive. None = derive from the Worker's settings."""

    requests_per_day: int
    tokens_in: int | None = None
    tokens_out: int | None = None
    images_per_request: int = 1


@dataclass(frozen=True)
class LineItem:
    """One billed quantity of one model: `quantity` `unit`s a day at `usd` a day."""

    model: str
    unit: str
    quantity_per_day: float
    usd_per_day: float | None  # None: the catalog has no price for this model or unit


def priced(model: str, quantities: dict[str, int], catalog: Catalog = CATALOG) -> list[LineItem]:
    """One line item per unit `model` is billed by; units it is not billed by are left out
    (embeddings have no output tokens), all of them kept at unknown price when the catalog
    has no price for `model`."""
    spec: ModelSpec | None = catalog.get(model)
    prices = {p.unit: p for p in spec.prices} if spec else {}
    items = []
    for unit, qty in quantities.items():
        p = prices.get(unit)
        if p is None and prices:
            continue
        usd = None if p is None else qty * p.usd / p.per
        items.append(LineItem(model, unit, float(qty), usd))
    return items
