"""results/latest.png: each figure as bars, beside its baseline and its target.

One panel a figure (units differ): the measured value (green when its target is met, red
when missed, grey for report-only figures), the baseline measured in the same run, and the
target in the figure's own unit (a ratio target times the baseline). matplotlib is a
bench-only dependency, imported here and nowhere else.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

from bench._util import Result

_MET, _MISSED, _REPORT = "#2e7d32", "#c62828", "#757575"
_BASELINE, _TARGET = "#90a4ae", "#ffffff"


def _num(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def target_value(r: Result) -> float | None:
    """The target in the figure's own unit, or None (report-only, or pass/fail without a
    bound in the figure's unit)."""
    if r.limit is None or r.check is None:
        return None
    if r.check.startswith("value") or r.check == "passed":
        return r.limit
    return r.limit * r.baseline if r.baseline else None


def draw(results: list[Result], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [r for r in results if r.value is not None]
    if not shown:
        return
    cols = 3
    rows = math.ceil(len(shown) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 4.6, rows * 3.3), squeeze=False)
    for ax, r in zip(axes.flat, shown, strict=False):
        met = r.met
        colour = _REPORT if met is None else _MET if met else _MISSED
        labels, heights, colours, edges = ["value"], [r.value or 0.0], [colour], [colour]
        if r.baseline:
            labels.append("baseline")
            heights.append(r.baseline)
            colours.append(_BASELINE)
            edges.append(_BASELINE)
        target = target_value(r)
        if target is not None:
            labels.append("target")
            heights.append(target)
            colours.append(_TARGET)
            edges.append("#000000")
        bars = ax.bar(labels, heights, color=colours, edgecolor=edges, linewidth=1.2)
        for patch in bars[-1:] if target is not None else []:
            patch.set_hatch("//")
        for bar, h in zip(bars, heights, strict=True):
            ax.annotate(
                _num(h),
                (bar.get_x() + bar.get_width() / 2, h),
                ha="center",
                va="bottom",
                fontsize=8,
            )
        verdict = "" if met is None else (" - met" if met else " - missed")
        ratio = f", ratio {r.ratio:.3g}" if r.ratio is not None else ""
        ax.set_title(f"{r.name}{verdict}{ratio}", fontsize=9, color=colour)
        ax.set_ylabel("\n".join(textwrap.wrap(r.unit, 38)), fontsize=7)
        ax.set_ylim(0, max(heights) * 1.18)
        ax.tick_params(labelsize=8)
        ax.set_xlabel("\n".join(textwrap.wrap(f"target: {r.target}", 60)), fontsize=7)
    for ax in list(axes.flat)[len(shown) :]:
        ax.axis("off")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.975))
    fig.savefig(path, dpi=100)
    plt.close(fig)
