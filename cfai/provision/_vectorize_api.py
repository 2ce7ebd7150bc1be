"""Vectorize v2 calls of `CloudflareClient` (``client.vectorize``).

Paths are ``/accounts/{account_id}/vectorize/v2/indexes[/{name}/...]``. Inserts and
upserts are NDJSON (``application/x-ndjson``, one vector per line), as the official SDK
sends them; query bodies are camelCase. Writes return ``{"mutationId"}`` and apply
asynchronously on Cloudflare.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from cfai.provision._api import Requester

Metric = Literal["cosine", "euclidean", "dot-product"]
MetadataIndexType = Literal["string", "number", "boolean"]
NDJSON = "application/x-ndjson"


def _resource(name: str) -> str:
    return f"vectorize_index '{name}'"


class VectorizeApi:
    """Vectorize v2 indexes, metadata indexes and vectors of one account."""

    def __init__(self, client: Requester) -> None:
        self._client = client

    def _call(self, method: str, action: str, name: str, *tail: str, **kwargs: Any) -> Any:
        parts = ("vectorize", "v2", "indexes", name, *tail)
        resource = _resource(name)
        return self._client.request(
            method, self._client.account_path(*parts), action=action, resource=resource, **kwargs
        )

    def _call_collection(self, method: str, action: str, resource: str, **kwargs: Any) -> Any:
        path = self._client.account_path("vectorize", "v2", "indexes")
        return self._client.request(method, path, action=action, resource=resource, **kwargs)

    # -- indexes ---------------------------------------------------------------------------

    def create_index(
        self, name: str, *, dimensions: int, metric: Metric, description: str | None = None
    ) -> dict[str, Any]:
        """Create an index; returns ``{name, description, config, created_on, modified_on}``."""
        body: dict[str, Any] = {
            "name": name,
            "config": {"dimensions": dimensions, "metric": metric},
        }
        if description is not None:
            body["description"] = description
        result: dict[str, Any] = self._call_collection("POST", "create", _resource(name), json=body)
        return result

    def get_index(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "get", name)
        return result

    def list_indexes(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call_collection("GET", "list", "vectorize_index") or []
        return result

    def delete_index(self, name: str) -> None:
        self._call("DELETE", "delete", name)

    def info(self, name: str) -> dict[str, Any]:
        """``{dimensions, vectorCount, processedUpToDatetime, processedUpToMutation}``."""
        result: dict[str, Any] = self._call("GET", "info", name, "info")
        return result

    # -- metadata indexes ------------------------------------------------------------------

    def create_metadata_index(
        self, name: str, property_name: str, index_type: MetadataIndexType
    ) -> dict[str, Any]:
        body = {"propertyName": property_name, "indexType": index_type}
        action = f"create metadata_index '{property_name}' on"
        result: dict[str, Any] = self._call(
            "POST", action, name, "metadata_index", "create", json=body
        )
        return result

    def list_metadata_indexes(self, name: str) -> list[dict[str, Any]]:
        """``[{propertyName, indexType}]``."""
        result = self._call("GET", "list metadata_index on", name, "metadata_index", "list") or {}
        indexes: list[dict[str, Any]] = result.get("metadataIndexes") or []
        return indexes

    def delete_metadata_index(self, name: str, property_name: str) -> dict[str, Any]:
        action = f"delete metadata_index '{property_name}' on"
        body = {"propertyName": property_name}
        result: dict[str, Any] = self._call(
            "POST", action, name, "metadata_index", "delete", json=body
        )
        return result

    # -- vectors ---------------------------------------------------------------------------

    def insert(
        self,
        name: str,
        vectors: Iterable[Mapping[str, Any]],
        *,
        unparsable_behavior: str | None = None,
    ) -> dict[str, Any]:
        """Insert ``{"id", "values", "metadata"?, "namespace"?}`` vectors (an existing id is kept)."""
        return self._write("insert", name, vectors, unparsable_behavior)

    def upsert(
        self,
        name: str,
        vectors: Iterable[Mapping[str, Any]],
        *,
        unparsable_behavior: str | None = None,
    ) -> dict[str, Any]:
        """Insert or wholly replace vectors."""
        return self._write("upsert", name, vectors, unparsable_behavior)

    def _write(
        self,
        op: str,
        name: str,
        vectors: Iterable[Mapping[str, Any]],
        unparsable_behavior: str | None,
    ) -> dict[str, Any]:
        body = "".join(json.dumps(dict(v), separators=(",", ":")) + "\n" for v in vectors).encode()
        params = {"unparsable-behavior": unparsable_behavior} if unparsable_behavior else None
        result: dict[str, Any] = self._call(
            "POST", op, name, op, content=body, headers={"content-type": NDJSON}, params=params
        )
        return result

    def query(
        self,
        name: str,
        vector: Sequence[float],
        *,
        top_k: int | None = None,
        return_values: bool | None = None,
        return_metadata: bool | Literal["none", "indexed", "all"] | None = None,
        filter: Mapping[str, Any] | None = None,
        namespace: str | None = None,
    ) -> dict[str, Any]:
        """``{count, matches: [{id, score, values?, metadata?, namespace?}]}``."""
        body: dict[str, Any] = {"vector": list(vector)}
        for key, value in (
            ("topK", top_k),
            ("returnValues", return_values),
            ("returnMetadata", return_metadata),
            ("filter", filter),
            ("namespace", namespace),
        ):
            if value is not None:
                body[key] = value
        result: dict[str, Any] = self._call("POST", "query", name, "query", json=body)
        return result

    def get_by_ids(self, name: str, ids: Sequence[str]) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call(
            "POST", "get_by_ids", name, "get_by_ids", json={"ids": list(ids)}
        )
        return result or []

    def delete_by_ids(self, name: str, ids: Sequence[str]) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            "POST", "delete_by_ids", name, "delete_by_ids", json={"ids": list(ids)}
        )
        return result
