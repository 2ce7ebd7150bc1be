"""The emulator's modules import each other in one direction: no import cycle among
`cfai.local.services`, `cfai.local.emulator` and `cfai.local.workerd`, counting imports
under ``TYPE_CHECKING`` too (a cycle there still ties the modules together)."""

from __future__ import annotations

import ast
from pathlib import Path

import cfai

ROOT = Path(cfai.__file__).resolve().parent.parent
AREA = ("cfai.local.services", "cfai.local.emulator", "cfai.local.workerd")


def modules() -> dict[str, Path]:
    out = {}
    for path in (ROOT / "cfai").rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Modules `name` imports; ``from pkg import sub`` counts as importing ``pkg.sub``."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*up, base] if base else up)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add(full if full in known else base)
    return {m for m in found if m in known and m != name}


def cycle_from(graph: dict[str, set[str]], start: str) -> list[str] | None:
    """A path start -> ... -> start, if there is one."""
    stack, seen = [(start, [start])], set()
    while stack:
        node, path = stack.pop()
        for nxt in graph.get(node, ()):
            if nxt == start:
                return [*path, start]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, [*path, nxt]))
    return None


def test_no_import_cycle_in_the_emulator() -> None:
    known = modules()
    mine = {m for m in known if m.startswith(AREA)}
    assert "cfai.local.services.frontdoor.door" in mine  # the walk found the package
    graph = {m: imports(m, known[m], known) & mine for m in mine}
    cycles = [c for m in sorted(mine) if (c := cycle_from(graph, m))]
    assert cycles == [], " -> ".join(cycles[0]) if cycles else ""
