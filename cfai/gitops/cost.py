"""Estimate a platform's daily Workers AI bill from its declaration and a traffic guess.

Each Worker's model and limits are known, so each request's billable units are too:
input/output tokens for text models, tokens embedded for the rag Worker's question, tiles
and steps for image models. Units times the catalog's published prices
(`cfai.catalog.Price`) give dollars; dollars over `NEURON_PRICE_USD` give neurons; the daily
free allocation (`FREE_NEURONS_PER_DAY`, per account) comes off the total. A model without
a published price is reported as unknown, never as free.

Example::

    from cfai.config import load_stack
    from cfai.gitops.cost import Traffic, estimate

    est = estimate(load_stack("staging"), Traffic(requests_per_day=1000))
    print(est.total_usd_per_day, est.assumptions)
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from rich.markup import escape
from rich.table import Table

from cfai.config import ChatWorker, CustomWorker, ImageWorker, Platform, RagWorker
from cfai.catalog import CATALOG, FREE_NEURONS_PER_DAY, NEURON_PRICE_USD, ModelSpec

__all__ = ["CostEstimate", "LineItem", "Traffic", "WorkerCost", "cost_table", "estimate"]

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


@dataclass(frozen=True)
class WorkerCost:
    worker: str
    kind: str
    items: tuple[LineItem, ...]
    note: str = ""

    @property
    def price_known(self) -> bool:
        return bool(self.items) and all(i.usd_per_day is not None for i in self.items)

    @property
    def usd_per_day(self) -> float | None:
        """Dollars a day before the free allocation; None when any part has no price."""
        if not self.price_known:
            return None
        return sum(i.usd_per_day or 0.0 for i in self.items)

    @property
    def neurons_per_day(self) -> float | None:
        usd = self.usd_per_day
        return None if usd is None else usd / NEURON_PRICE_USD


@dataclass(frozen=True)
class CostEstimate:
    """Per Worker and in total. Totals cover only Workers with known prices (`unknown`)."""

    source: str
    traffic: Traffic
    workers: tuple[WorkerCost, ...]
    assumptions: tuple[str, ...] = field(default_factory=tuple)

    @property
    def unknown(self) -> list[str]:
        return [w.worker for w in self.workers if not w.price_known]

    @property
    def total_neurons_per_day(self) -> float:
        return sum(w.neurons_per_day or 0.0 for w in self.workers)

    @property
    def billable_neurons_per_day(self) -> float:
        return max(0.0, self.total_neurons_per_day - FREE_NEURONS_PER_DAY)

    @property
    def total_usd_per_day(self) -> float:
        """What the day costs after the free allocation."""
        return self.billable_neurons_per_day * NEURON_PRICE_USD

    def as_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "traffic": asdict(self.traffic),
            "assumptions": list(self.assumptions),
            "neuron_price_usd": NEURON_PRICE_USD,
            "free_neurons_per_day": FREE_NEURONS_PER_DAY,
            "workers": [
                {
                    "worker": w.worker,
                    "kind": w.kind,
                    "price_known": w.price_known,
                    "neurons_per_day": w.neurons_per_day,
                    "usd_per_day": w.usd_per_day,
                    "note": w.note,
                    "items": [asdict(i) for i in w.items],
                }
                for w in self.workers
            ],
            "total": {
                "neurons_per_day": self.total_neurons_per_day,
                "usd_per_day_before_free": self.total_neurons_per_day * NEURON_PRICE_USD,
                "billable_neurons_per_day": self.billable_neurons_per_day,
                "usd_per_day": self.total_usd_per_day,
                "price_unknown": self.unknown,
            },
        }


def estimate(platform: Platform, traffic: Traffic, *, source: str = "") -> CostEstimate:
    """Every Worker's daily cost at `traffic`, with the assumptions that produced it."""
    if traffic.requests_per_day < 0:
        raise ValueError("requests_per_day must not be negative")
    workers: list[WorkerCost] = []
    assumptions = [
        f"{traffic.requests_per_day} requests/day to every Worker",
        f"${NEURON_PRICE_USD * 1000:.3f} per 1,000 neurons; "
        f"{FREE_NEURONS_PER_DAY:,} neurons/day free per account (taken off the total)",
        "prices: the catalog's published per-unit prices (cfai/catalog.py); "
        "gateway cache hits are not subtracted",
    ]
    for key, w in sorted(platform.workers.items()):
        cost, said = _worker(key, w, traffic)
        workers.append(cost)
        assumptions += said
    return CostEstimate(source, traffic, tuple(workers), tuple(assumptions))


def _worker(
    key: str, w: ChatWorker | RagWorker | ImageWorker | CustomWorker, t: Traffic
) -> tuple[WorkerCost, list[str]]:
    n = t.requests_per_day
    if isinstance(w, ChatWorker | RagWorker):
        system = len(w.system_prompt.split())
        tokens_in = t.tokens_in if t.tokens_in is not None else system + DEFAULT_USER_TOKENS
        tokens_out = t.tokens_out if t.tokens_out is not None else w.max_tokens
        said_in = (
            f"{tokens_in} (--tokens-in)"
            if t.tokens_in is not None
            else f"{tokens_in} ({system} system prompt words + {DEFAULT_USER_TOKENS})"
        )
        said_out = (
            f"{tokens_out} (--tokens-out)"
            if t.tokens_out is not None
            else f"{tokens_out} (max_tokens)"
        )
        items: list[LineItem] = []
        if isinstance(w, RagWorker):
            question = (
                max(1, tokens_in - system) if t.tokens_in is not None else DEFAULT_USER_TOKENS
            )
            context = w.top_k * w.chunk_size // CHARS_PER_TOKEN
            items += _priced(w.embedding_model, {"input_tokens": question * n})
            items += _priced(
                w.model,
                {"input_tokens": (tokens_in + context) * n, "output_tokens": tokens_out * n},
            )
            said = [
                f"{key} (rag): embeds a {question}-token question with {w.embedding_model}; "
                f"{w.model} reads {tokens_in} + {context} context tokens "
                f"(top_k {w.top_k} x chunk_size {w.chunk_size} / {CHARS_PER_TOKEN}) "
                f"= {tokens_in + context} in, writes {said_out} out per request; "
                "document ingestion not included"
            ]
            return WorkerCost(key, w.kind, tuple(items)), said
        items += _priced(w.model, {"input_tokens": tokens_in * n, "output_tokens": tokens_out * n})
        said = [f"{key} (chat): {w.model}, {said_in} in, {said_out} out tokens per request"]
        return WorkerCost(key, w.kind, tuple(items)), said
    if isinstance(w, ImageWorker):
        spec = CATALOG[w.model]
        assert spec.image is not None  # the config checks demand a text-to-image model
        lim = spec.image
        width = min(lim.default_width, w.max_width or lim.default_width)
        height = min(lim.default_height, w.max_height or lim.default_height)
        tiles = math.ceil(width / TILE_PIXELS) * math.ceil(height / TILE_PIXELS)
        steps = w.steps or lim.default_steps
        images = n * t.images_per_request
        items = _priced(w.model, {"tiles": tiles * images, "steps": steps * images})
        said = [
            f"{key} (image): {w.model}, {t.images_per_request} image(s) per request at "
            f"{width}x{height} = {tiles} tiles of {TILE_PIXELS}px, {steps} steps "
            f"({'configured' if w.steps else 'model default'})"
        ]
        return WorkerCost(key, w.kind, tuple(items)), said
    note = "custom code: cfai does not know which models it calls"
    return WorkerCost(key, w.kind, (), note), [f"{key} (custom): price unknown ({note})"]


def _priced(model: str, quantities: dict[str, int]) -> list[LineItem]:
    spec: ModelSpec | None = CATALOG.get(model)
    prices = {p.unit: p for p in spec.prices} if spec else {}
    items = []
    for unit, qty in quantities.items():
        p = prices.get(unit)
        if p is None and prices:
            continue  # the model is not billed by this unit (e.g. embeddings: no output tokens)
        usd = None if p is None else qty * p.usd / p.per
        items.append(LineItem(model, unit, float(qty), usd))
    return items


def _money(usd: float | None) -> str:
    return "price unknown" if usd is None else f"${usd:,.4f}"


def _neurons(n: float | None) -> str:
    return "price unknown" if n is None else f"{n:,.1f}"


def _rows(est: CostEstimate) -> Iterator[tuple[str, ...]]:
    for w in est.workers:
        models = sorted({i.model for i in w.items}) or ["-"]
        yield (
            w.worker,
            w.kind,
            ", ".join(models),
            _neurons(w.neurons_per_day),
            _money(w.usd_per_day),
        )


def cost_table(est: CostEstimate) -> Table:
    """One row per Worker plus the totals before and after the free allocation."""
    table = Table(
        "worker",
        "kind",
        "model(s)",
        "neurons/day",
        "USD/day",
        title=f"cfai cost: {escape(est.source)}" if est.source else "cfai cost",
    )
    for row in _rows(est):
        table.add_row(*(escape(c) for c in row))
    table.add_section()
    gross = est.total_neurons_per_day
    table.add_row("total", "", "", _neurons(gross), _money(gross * NEURON_PRICE_USD))
    table.add_row("free allocation", "", "", f"-{min(gross, FREE_NEURONS_PER_DAY):,.1f}", "")
    suffix = f" + unknown ({', '.join(est.unknown)})" if est.unknown else ""
    table.add_row(
        "billable",
        "",
        "",
        _neurons(est.billable_neurons_per_day),
        _money(est.total_usd_per_day) + suffix,
    )
    return table
