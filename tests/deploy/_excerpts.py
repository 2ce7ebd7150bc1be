"""The docs quote real runs: `check_excerpt` holds a docs block equal to a run's output.

A block in ``docs/*.md``::

    <!-- excerpt: deploy-rollback-local -->
    ```text
    ...
    ```
    <!-- /excerpt -->

is compared with the output a test captured, normalised so that what differs from run to
run reads as placeholders: version ids (``<v1>``, ``<v2>``, ... in order of appearance),
template hashes (``<h1>``, ...), ports, temporary paths. A difference fails the test;
``make docs-excerpts`` (``CFAI_DOCS_WRITE=1``) rewrites the blocks from the runs instead.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
_BLOCK = re.compile(
    r"(<!-- excerpt: (?P<name>[\w-]+) -->\n```text\n)(?P<body>.*?)(```\n<!-- /excerpt -->)",
    re.DOTALL,
)
_UUID = re.compile(r"\b[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}\b")
_HASH = re.compile(r"\b[0-9a-f]{12,64}\b")
_VERSION = re.compile(r"\b(version |workerd-|x-cfai-version-id: )([0-9a-f]{8})\b")
_PORT = re.compile(r"127\.0\.0\.1:\d+")
_TMP = re.compile(r"/tmp/\S*?/project")
_TIME = re.compile(r"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\b")


def normalise(text: str) -> str:
    """`text` with what changes between runs replaced by stable placeholders."""
    names: dict[str, str] = {}

    def label(prefix: str, value: str) -> str:
        key = f"{prefix}:{value}"
        if key not in names:
            names[key] = f"<{prefix}{sum(k.startswith(prefix + ':') for k in names) + 1}>"
        return names[key]

    text = _UUID.sub(lambda m: label("v", m.group(0)[:8]), text)
    text = _VERSION.sub(lambda m: m.group(1) + label("v", m.group(2)), text)
    # A placeholder as wide as the hash it replaces keeps a table's columns aligned.
    text = _HASH.sub(lambda m: label("h", m.group(0)[:12]).ljust(min(len(m.group(0)), 12)), text)
    text = _PORT.sub("127.0.0.1:<port>", text)
    text = _TMP.sub("<project>", text)
    text = _TIME.sub("<time>", text)
    lines = [line.rstrip() for line in text.strip("\n").splitlines()]
    return "\n".join(lines) + "\n"


def _blocks() -> dict[str, tuple[Path, str]]:
    found: dict[str, tuple[Path, str]] = {}
    for path in sorted(DOCS.glob("*.md")):
        for m in _BLOCK.finditer(path.read_text(encoding="utf-8")):
            found[m.group("name")] = (path, m.group("body"))
    return found


def check_excerpt(name: str, output: str) -> None:
    """Assert the docs block `name` quotes `output` (or rewrite it under CFAI_DOCS_WRITE=1)."""
    want = normalise(output)
    blocks = _blocks()
    if os.environ.get("CFAI_DOCS_WRITE") == "1":
        assert name in blocks, f"no `<!-- excerpt: {name} -->` block in docs/*.md"
        path, _ = blocks[name]
        text = path.read_text(encoding="utf-8")
        text = _BLOCK.sub(
            lambda m: m.group(1) + want + m.group(4) if m.group("name") == name else m.group(0),
            text,
        )
        path.write_text(text, encoding="utf-8")
        return
    assert name in blocks, f"no `<!-- excerpt: {name} -->` block in docs/*.md"
    path, have = blocks[name]
    if have != want:
        diff = "\n".join(
            difflib.unified_diff(
                have.splitlines(),
                want.splitlines(),
                f"{path.name} ({name})",
                "this run",
                lineterm="",
            )
        )
        raise AssertionError(
            f"{path.relative_to(REPO)} quotes another run than this one; "
            f"`make docs-excerpts` rewrites it:\n{diff}"
        )
