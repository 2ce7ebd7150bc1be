"""render: validate + render a 200-Worker platform vs 200 bare Jinja2 renders of one template.

The platform is the shipped local stack with its three Workers cloned to 200 (chat, rag
and image in turn). The baseline renders ``chat.js.j2`` 200 times through a plain
`jinja2.Environment` (same loader, the `tojs` filter, no strictness or checks) with the
context cfai itself passed for one chat Worker, captured by wrapping the render call.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
import yaml

from bench._util import Result, stats, timed
from cfai.config.loader import load_platform
from cfai.render import Templates, render_platform, render_worker, tojs

ROOT = Path(__file__).resolve().parent.parent
WORKERS = 200
REPEAT = 9


def platform_data() -> dict[str, Any]:
    doc = yaml.safe_load((ROOT / "Pulumi.local.yaml").read_text(encoding="utf-8"))
    data = dict(doc["config"]["cfai:platform"])
    shipped = list(data["workers"].items())
    data["workers"] = {
        f"{key}{i:03d}": spec for i in range(WORKERS // len(shipped) + 1) for key, spec in shipped
    }
    data["workers"] = dict(list(data["workers"].items())[:WORKERS])
    return data


class _Recording(Templates):
    """cfai's templates, remembering what each render was given."""

    def __init__(self) -> None:
        super().__init__(Templates.packaged().root)
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def render(self, name: str, context: dict[str, Any]) -> str:
        self.seen.append((name, dict(context)))
        return super().render(name, context)


def _chat_context(data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    templates = _Recording()
    platform = load_platform(data, base_dir=ROOT)
    render_worker(platform, "assistant000", base_dir=ROOT, templates=templates)
    return templates.seen[0]


def render_bench(log: list[str], work: Path) -> list[Result]:
    data = platform_data()

    def cfai_render() -> None:
        rendered = render_platform(load_platform(data, base_dir=ROOT), base_dir=ROOT)
        assert len(rendered) == WORKERS

    name, context = _chat_context(data)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Templates.packaged().root), keep_trailing_newline=True
    )
    env.filters["tojs"] = tojs
    template = env.get_template(name)

    def bare() -> None:
        for _ in range(WORKERS):
            template.render(context)

    ours = stats(timed(cfai_render, REPEAT))
    base = stats(timed(bare, REPEAT))
    log.append(f"render: {WORKERS} Workers in {ours['median'] * 1000:.0f} ms")
    return [
        Result(
            "render",
            ours["median"] * 1000,
            base["median"] * 1000,
            f"ms (validate + render {WORKERS} Workers)",
            "report",
            extra={
                "cfai_ms": {
                    k: round(v * 1000, 2) for k, v in ours.items() if k not in ("n", "iqr_pct")
                }
                | {"n": ours["n"], "iqr_pct": round(ours["iqr_pct"], 1)},
                "bare_jinja2_ms": {
                    k: round(v * 1000, 2) for k, v in base.items() if k not in ("n", "iqr_pct")
                }
                | {"n": base["n"], "iqr_pct": round(base["iqr_pct"], 1)},
                "template": name,
            },
        )
    ]
