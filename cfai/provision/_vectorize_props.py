"""Plain-data rules of `VectorizeIndex` state: engine names, validation, comparison.

State uses engine (camelCase) names; ``metadataIndexes`` is Cloudflare's list shape
``[{"propertyName", "indexType"}]``, sorted by property.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi.runtime import rpc

METRICS = ("cosine", "euclidean", "dot-product")
INDEX_TYPES = ("string", "number", "boolean")
# "Dimensions must be in range: [32, 1536]" is Cloudflare's own answer.
MIN_DIMENSIONS = 32
MAX_DIMENSIONS = 1536
MAX_METADATA_INDEXES = 10

# Python attribute name <-> engine property name, top-level keys only.
TO_ENGINE = {
    "account_id": "accountId",
    "index_name": "indexName",
    "metadata_indexes": "metadataIndexes",
    "base_url": "baseUrl",
    "created_on": "createdOn",
    "modified_on": "modifiedOn",
}
TO_PYTHON = {v: k for k, v in TO_ENGINE.items()}
INPUTS = (
    "accountId",
    "indexName",
    "dimensions",
    "metric",
    "description",
    "metadataIndexes",
    "baseUrl",
)
REPLACES = ("accountId", "indexName", "dimensions", "metric", "description")


def rpc_unknown(value: Any) -> bool:
    """A value not known yet (preview): the engine sends a sentinel string."""
    return isinstance(value, str) and value == rpc.UNKNOWN


def mi_dict(value: Any) -> dict[str, str]:
    """Metadata indexes as ``{property: type}`` from either the list or the dict shape."""
    if not value:
        return {}
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    return {str(item["propertyName"]): str(item["indexType"]) for item in value}


def mi_list(value: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"propertyName": k, "indexType": value[k]} for k in sorted(value)]


def norm_description(value: Any) -> str | None:
    return value or None


def whole(value: Any) -> Any:
    # The engine hands numbers over as floats (768.0).
    return int(value) if isinstance(value, float) and value.is_integer() else value


def find_problems(props: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(property, reason) for every invalid known value, in engine names."""
    found: list[tuple[str, str]] = []
    name = props.get("indexName")
    if isinstance(name, str) and not rpc_unknown(name) and not 0 < len(name.encode()) <= 64:
        found.append(("indexName", f"must be 1-64 bytes, got {len(name.encode())}"))
    dims = whole(props.get("dimensions"))
    if (
        dims is not None
        and not rpc_unknown(dims)
        and not (isinstance(dims, int) and MIN_DIMENSIONS <= dims <= MAX_DIMENSIONS)
    ):
        found.append(
            ("dimensions", f"must be an integer {MIN_DIMENSIONS}-{MAX_DIMENSIONS}, got {dims!r}")
        )
    metric = props.get("metric")
    if metric is not None and not rpc_unknown(metric) and metric not in METRICS:
        found.append(("metric", f"must be one of {', '.join(METRICS)}, got {metric!r}"))
    indexes = props.get("metadataIndexes")
    if indexes and not rpc_unknown(indexes) and isinstance(indexes, list | dict):
        mi = mi_dict(indexes)
        if len(mi) > MAX_METADATA_INDEXES:
            found.append(
                ("metadataIndexes", f"at most {MAX_METADATA_INDEXES} per index, got {len(mi)}")
            )
        for prop, kind in sorted(mi.items()):
            if kind not in INDEX_TYPES:
                found.append(
                    (
                        "metadataIndexes",
                        f"'{prop}': type must be one of {', '.join(INDEX_TYPES)}, got {kind!r}",
                    )
                )
    return found


def inputs_of(props: Mapping[str, Any]) -> dict[str, Any]:
    return {k: props[k] for k in INPUTS if props.get(k) is not None}


def differs(key: str, old: Any, new: Any) -> bool:
    if rpc_unknown(new):
        return True
    if key == "metadataIndexes":
        return mi_dict(old) != mi_dict(new)
    if key == "description":
        return norm_description(old) != norm_description(new)
    if key == "dimensions":
        old, new = whole(old), whole(new)
    return bool(old != new)


def outs(inputs: Mapping[str, Any], index: Mapping[str, Any]) -> dict[str, Any]:
    return {
        **inputs_of(inputs),
        "dimensions": whole(inputs["dimensions"]),
        "metadataIndexes": mi_list(mi_dict(inputs.get("metadataIndexes"))),
        "createdOn": index.get("created_on"),
        "modifiedOn": index.get("modified_on"),
    }
