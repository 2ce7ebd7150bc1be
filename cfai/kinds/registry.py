"""The Worker kinds cfai knows: a kind is its import here and its place in `KINDS`.
Everything else loops over `KINDS`.

Example::

    >>> kind_for("rag").main_route.path
    '/query'
    >>> kind_names()
    ('chat', 'custom', 'image', 'rag')
"""

from __future__ import annotations

from typing import Any

from cfai.kinds.base import Example, Kind
from cfai.kinds.chat import KIND as CHAT
from cfai.kinds.custom import KIND as CUSTOM
from cfai.kinds.image import KIND as IMAGE
from cfai.kinds.rag import KIND as RAG

__all__ = ["KINDS", "example_for", "kind_for", "kind_names"]

KINDS: tuple[Kind[Any], ...] = (CHAT, RAG, IMAGE, CUSTOM)

_BY_NAME = {k.name: k for k in KINDS}


def kind_for(name: str) -> Kind[Any]:
    """The kind called `name`; KeyError names the known kinds."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"no Worker kind {name!r} (known: {', '.join(kind_names())})") from None


def kind_names() -> tuple[str, ...]:
    """Every kind's name, sorted."""
    return tuple(sorted(_BY_NAME))


def example_for(name: str) -> Example:
    """The example request of kind `name`, or a `GET /health` for a kind this cfai does
    not know (an outputs map written by a newer one)."""
    kind = _BY_NAME.get(name)
    return kind.example if kind else Example("GET", "/health")
