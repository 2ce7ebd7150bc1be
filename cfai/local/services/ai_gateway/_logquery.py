"""Log list/delete query parameters → SQL, the subset of Cloudflare's we support.

Plain parameters: ``success``, ``cached``, ``feedback``, ``model``, ``provider``,
``model_type``, ``start_date``, ``end_date`` (ISO 8601), ``search`` (in model and path),
``order_by`` (``created_at`` default, ``provider``, ``model``, ``model_type``, ``success``,
``cached``, ``duration``, ``tokens_in``, ``tokens_out``) with ``order_by_direction``
(``asc``|``desc``, default ``desc``; ``direction`` is accepted too). ``filters`` is a JSON
array of ``{"key", "operator": eq|neq|contains|lt|gt, "value": [..]}``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from cfai.local.services.ai_gateway import _errors as err

_ORDER = (
    "created_at",
    "provider",
    "model",
    "model_type",
    "success",
    "cached",
    "duration",
    "tokens_in",
    "tokens_out",
    "status_code",
)
_BOOL_KEYS = ("success", "cached")
_TEXT_KEYS = ("model", "provider", "model_type", "path", "event_id", "id")
_NUMBER_KEYS = ("duration", "tokens_in", "tokens_out", "status_code", "feedback", "score")
_OPS = {"eq": "=", "neq": "!=", "lt": "<", "gt": ">"}


def where_clause(gateway_id: str, query: Mapping[str, str]) -> tuple[str, list[Any], str]:
    """(WHERE condition, parameters, ORDER BY expression) for one gateway's logs."""
    conds = ["gateway = ?"]
    params: list[Any] = [gateway_id]
    for key in _BOOL_KEYS:
        if key in query:
            conds.append(f"{key} = ?")
            params.append(int(_bool(key, query[key])))
    for key in ("model", "provider", "model_type"):
        if key in query:
            conds.append(f"{key} = ?")
            params.append(query[key])
    if "feedback" in query:
        conds.append("feedback = ?")
        params.append(_number("feedback", query["feedback"]))
    if "start_date" in query:
        conds.append("created_at >= ?")
        params.append(query["start_date"])
    if "end_date" in query:
        conds.append("created_at <= ?")
        params.append(query["end_date"])
    if query.get("search"):
        conds.append("(model LIKE ? OR path LIKE ?)")
        params += [f"%{query['search']}%"] * 2
    if "filters" in query:
        for cond, values in _filters(query["filters"]):
            conds.append(cond)
            params += values
    column = query.get("order_by", "created_at")
    if column not in _ORDER:
        raise err.bad_query(f"order_by: must be one of {', '.join(_ORDER)}")
    direction = query.get("order_by_direction", query.get("direction", "desc")).lower()
    if direction not in ("asc", "desc"):
        raise err.bad_query("order_by_direction: must be asc or desc")
    order = f"{'seq' if column == 'created_at' else column} {direction}, seq {direction}"
    return " AND ".join(conds), params, order


def _filters(raw: str) -> list[tuple[str, list[Any]]]:
    try:
        items = json.loads(raw)
    except ValueError:
        raise err.bad_query("filters: must be a JSON array of {key, operator, value}") from None
    if not isinstance(items, list):
        raise err.bad_query("filters: must be a JSON array of {key, operator, value}")
    out = []
    for item in items:
        if not isinstance(item, dict):
            raise err.bad_query("filters: each filter is an object {key, operator, value}")
        key, op = item.get("key"), item.get("operator", "eq")
        values = item.get("value", [])
        values = values if isinstance(values, list) else [values]
        if key not in (*_BOOL_KEYS, *_TEXT_KEYS, *_NUMBER_KEYS):
            raise err.bad_query(f"filters: unknown key {key!r}")
        if key in _BOOL_KEYS:
            values = [int(_bool(key, v)) for v in values]
        if op == "contains":
            if key not in _TEXT_KEYS:
                raise err.bad_query(f"filters: 'contains' needs a text key, not {key!r}")
            out.append(
                (
                    "(" + " OR ".join(f"{key} LIKE ?" for _ in values) + ")",
                    [f"%{v}%" for v in values],
                )
            )
        elif op in _OPS:
            if not values:
                raise err.bad_query(f"filters: {key} {op} needs a value")
            joiner = " AND " if op == "neq" else " OR "
            out.append(("(" + joiner.join(f"{key} {_OPS[op]} ?" for _ in values) + ")", values))
        else:
            raise err.bad_query(f"filters: unknown operator {op!r} (eq, neq, contains, lt, gt)")
    return out


def _bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("true", "1"):
        return True
    if str(value).lower() in ("false", "0"):
        return False
    raise err.bad_query(f"{key}: must be true or false")


def _number(key: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise err.bad_query(f"{key}: must be a number") from None
