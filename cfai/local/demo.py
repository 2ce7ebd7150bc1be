"""Demo documents for the local platform: `cfai local up --demo` ingests them into every
rag Worker through the Worker's own `POST /documents`, so the demo exercises the same path
users do.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from cfai.errors import LocalPlatformError
from cfai.outputs import Outputs
from cfai.provision.rest import NoAnswer, fetch

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


def load_demo(outputs: Outputs) -> Iterator[str]:
    """Ingest the demo documents into each rag Worker; yield one progress line per Worker."""
    headers = {"authorization": f"Bearer {outputs.auth_token}"}
    for key, worker in sorted(outputs.workers.items()):
        if worker.kind != "rag":
            continue
        url = f"{worker.url}/documents"
        answer = fetch(
            "POST", url, json={"documents": list(DEMO_DOCUMENTS)}, headers=headers, timeout=30
        )
        if isinstance(answer, NoAnswer) or answer.status_code != 200:
            why = answer.error if isinstance(answer, NoAnswer) else f"HTTP {answer.status_code}"
            raise LocalPlatformError(f"demo: {key} did not take the documents ({why} on {url})")
        body = answer.json()
        yield f"demo: {key} ingested {body['documents']} documents in {body['chunks']} chunks"
