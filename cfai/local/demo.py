"""Demo documents for the local platform: `cfai local up --demo` ingests them into every
rag Worker through the Worker's own `POST /documents`, so the demo exercises the same path
users do.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import httpx

__all__ = ["DEMO_DOCUMENTS", "load_demo"]

DEMO_DOCUMENTS: tuple[dict[str, Any], ...] = (
    {
        "id": "gateway-caching",
        "text": "AI Gateway caching serves identical requests from cache. Set cache_ttl on the gateway "
        "in seconds; a repeated request answers with the cf-aig-cache-status header HIT.",
        "metadata": {"topic": "gateway"},
    },
    {
        "id": "vectorize-filters",
        "text": "Vectorize metadata filters need a metadata index created before the vectors are written. "
        "Operators are $eq, $ne, $in, $nin, $lt, $lte, $gt and $gte.",
        "metadata": {"topic": "vectorize"},
    },
    {
        "id": "rollback",
        "text": "A failed canary deploy rolls back automatically: the previous Worker version keeps serving "
        "while the contract suite reports what broke.",
        "metadata": {"topic": "deploy"},
    },
)


def load_demo(outputs: Mapping[str, Any]) -> Iterator[str]:
    """Ingest the demo documents into each rag Worker; yield one progress line per Worker."""
    headers = {"authorization": f"Bearer {outputs['auth_token']}"}
    for key, worker in sorted(outputs["workers"].items()):
        if worker["kind"] != "rag":
            continue
        r = httpx.post(
            f"{worker['url']}/documents",
            json={"documents": list(DEMO_DOCUMENTS)},
            headers=headers,
            timeout=30,
        )
        r.raise_for_status()
        body = r.json()
        yield f"demo: {key} ingested {body['documents']} documents in {body['chunks']} chunks"
