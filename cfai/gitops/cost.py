"""Estimate a platform's daily Workers AI bill from its declaration and a traffic guess.

Each Worker's model and limits are known, so each request's billable units are too; its
kind says which (`cfai.kinds.Kind.cost`): input/output tokens for text models, tokens
embedded for the rag Worker's question, tiles and steps for image models. Units times the
catalog's published prices (`cfai.catalog.Price`) give dollars; dollars over
`NEURON_PRICE_USD` give neurons; the daily free allocation (`FREE_NEURONS_PER_DAY`, per
account) comes off the total. A model without a published price is reported as unknown,
never as free.

Example::

    from cfai.config import load_stack
    from cfai.gitops.cost import Traffic, estimate

    est = estimate(load_stack("staging"), Traffic(requests_per_day=1000))
    print(est.total_usd_per_day, est.assumptions)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from cfai.catalog import CATALOG, FREE_NEURONS_PER_DAY, NEURON_PRICE_USD, Catalog
from cfai.config import PlatformConfig
from cfai.kinds import kind_for
from cfai.kinds.pricing import LineItem, Traffic

__all__ = ["CostEstimate", "LineItem", "Traffic", "WorkerCost", "estimate"]


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


def estimate(
    platform: PlatformConfig,
    traffic: Traffic,
    *,
    source: str = "",
    catalog: Catalog = CATALOG,
) -> CostEstimate:
    """Every Worker's daily cost at `traffic` at `catalog`'s prices (a project's
    `cfai.catalog.catalog_for`), with the assumptions that produced it."""
    if traffic.requests_per_day < 0:
        raise ValueError("requests_per_day must not be negative")
    workers: list[WorkerCost] = []
    assumptions = [
        f"{traffic.requests_per_day} requests/day to every Worker",
        f"${NEURON_PRICE_USD * 1000:.3f} per 1,000 neurons; "
        f"{FREE_NEURONS_PER_DAY:,} neurons/day free per account (taken off the total)",
        f"prices: the catalog's published per-unit prices ({catalog.source}); "
        "a model without a published price is priced unknown, never free; "
        "gateway cache hits are not subtracted",
    ]
    for key, w in sorted(platform.workers.items()):
        cost = kind_for(w.kind).cost(key, w, traffic, catalog)
        workers.append(WorkerCost(key, w.kind, cost.items, cost.note))
        assumptions += cost.assumptions
    return CostEstimate(source, traffic, tuple(workers), tuple(assumptions))
