"""Log list/delete query parameters -> SQL, as Cloudflare's logs API reads them.

``filters`` is an array of ``{key, operator: eq|neq|contains|lt|gt, value: [..]}`` (API
schema, cloudflare-python ``types/ai_gateway/log_list_params.py``). Both official SDKs put
it in the query in the *dotted* form, ``qs(nested_format="dots", array_format="repeat")``
(cloudflare-python ``_client.py``)::

    ?filters.key=success&filters.operator=eq&filters.value=false

The Python SDK groups the repeats (all keys, then all operators, then all values), the JS
SDK interleaves them; either way the k-th key, operator and value belong together. A filter
with several values cannot be told apart from several filters once flattened, so several
values are read as belonging to one filter only when there is one filter; otherwise the
counts must match and a mismatch is refused naming the problem (never guessed: a filtered
*delete* guessed wrong deletes the wrong logs). A JSON array in ``filters`` is read too.

The older plain parameters are applied as well: ``cached``, ``success``, ``feedback``,
``model``, ``model_type``, ``provider``, ``request_content_type``,
``response_content_type``, ``start_date``/``end_date`` (ISO 8601), ``min_``/``max_`` of
``cost``, ``duration``, ``tokens_in``, ``tokens_out``, ``total_tokens``, and ``search`` (free
text over model, path and metadata). Ordering: ``order_by`` with ``order_by_direction``
(``direction`` is its deprecated alias); the default direction is ``desc`` for a list and
``asc`` for a delete, as the schema gives them. Bad values are 400 code 7001 naming the
parameter (chanfana's input validation).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from cfai.local.services.ai_gateway import _errors as err
from cfai.local.services.ai_gateway._records import timestamp

_ORDER_LIST = ("created_at", "provider", "model", "model_type", "success", "cached")
_ORDER_DELETE = (*_ORDER_LIST, "cost", "tokens_in", "tokens_out", "duration", "feedback")
# A filter key -> its SQL expression and kind. `cost` is always 0 here (the stand-in models
# are free); `tokens` is the total.
_COLUMNS: dict[str, tuple[str, str]] = {
    "id": ("id", "text"),
    "created_at": ("created_at", "date"),
    "request_content_type": ("request_content_type", "text"),
    "response_content_type": ("response_content_type", "text"),
    "success": ("success", "bool"),
    "cached": ("cached", "bool"),
    "provider": ("provider", "text"),
    "model": ("model", "text"),
    "model_type": ("model_type", "text"),
    "cost": ("0", "number"),
    "tokens": ("(COALESCE(tokens_in, 0) + COALESCE(tokens_out, 0))", "number"),
    "tokens_in": ("tokens_in", "number"),
    "tokens_out": ("tokens_out", "number"),
    "duration": ("duration", "number"),
    "feedback": ("feedback", "number"),
    "event_id": ("event_id", "text"),
    "metadata.key": ("key", "meta"),
    "metadata.value": ("CAST(value AS TEXT)", "meta"),
}
# Keys the API accepts whose data the local platform does not record.
_UNRECORDED = ("request_type", "authentication", "wholesale", "compatibilityMode", "dlp_action",
               "user_agent", "prompts.prompt_id", "prompts.version_id")  # fmt: skip
_OPS = {"eq": "=", "neq": "!=", "lt": "<", "gt": ">"}
_PLAIN = ("model", "model_type", "provider", "request_content_type", "response_content_type")
_RANGES = {"cost": "0", "duration": "duration", "tokens_in": "tokens_in",
           "tokens_out": "tokens_out", "total_tokens": _COLUMNS["tokens"][0]}  # fmt: skip


class LogQuery:
    """One request's log selection: a WHERE condition with its parameters and an ORDER BY.

    Example::

        q = LogQuery("gw", request.query_params.multi_items(), delete=False)
        db.execute(f"SELECT * FROM logs WHERE {q.where} ORDER BY {q.order}", q.params)
    """

    def __init__(self, gateway_id: str, items: Iterable[tuple[str, str]], *, delete: bool) -> None:
        self.conds = ["gateway = ?"]
        self.params: list[Any] = [gateway_id]
        query: dict[str, list[str]] = {}
        for name, value in items:
            query.setdefault(name, []).append(value)
        one = {name: values[-1] for name, values in query.items()}
        self._plain(one)
        for key, op, values in _filters(query):
            self._filter(key, op, values)
        self.order = _order(one, delete=delete)

    @property
    def where(self) -> str:
        return " AND ".join(self.conds)

    def _plain(self, one: dict[str, str]) -> None:
        for key in ("success", "cached"):
            if key in one:
                self._add(f"{key} = ?", int(_bool(key, one[key])))
        for key in _PLAIN:
            if key in one:
                self._add(f"{key} = ?", one[key])
        if "feedback" in one:
            self._add("feedback = ?", _number("feedback", one["feedback"]))
        if "start_date" in one:
            self._add("created_at >= ?", _date("start_date", one["start_date"]))
        if "end_date" in one:
            self._add("created_at <= ?", _date("end_date", one["end_date"]))
        for name, column in _RANGES.items():
            for bound, op in (("min", ">="), ("max", "<=")):
                if f"{bound}_{name}" in one:
                    self._add(
                        f"{column} {op} ?", _number(f"{bound}_{name}", one[f"{bound}_{name}"])
                    )
        if one.get("search"):
            self.conds.append("(model LIKE ? OR path LIKE ? OR metadata LIKE ?)")
            self.params += [f"%{one['search']}%"] * 3

    def _add(self, cond: str, value: Any) -> None:
        self.conds.append(cond)
        self.params.append(value)

    def _filter(self, key: str, op: str, values: list[Any]) -> None:
        if key in _UNRECORDED:
            raise err.bad_query(f"filters: key {key!r} is not recorded by the local platform")
        if key not in _COLUMNS:
            raise err.bad_query(f"filters: unknown key {key!r} (one of {', '.join(_COLUMNS)})")
        if op not in (*_OPS, "contains"):
            raise err.bad_query(f"filters: unknown operator {op!r} (eq, neq, contains, lt, gt)")
        if not values:
            raise err.bad_query(f"filters: {key} {op} needs a value")
        column, kind = _COLUMNS[key]
        typed = [_typed(key, kind, v) for v in values]
        if op == "contains":
            if kind not in ("text", "meta"):
                raise err.bad_query(f"filters: 'contains' needs a text key, not {key!r}")
            test, typed = f"{column} LIKE ?", [f"%{v}%" for v in typed]
        else:
            test = f"{column} {_OPS[op]} ?"
        joiner = " AND " if op == "neq" else " OR "
        cond = "(" + joiner.join([test] * len(typed)) + ")"
        if kind == "meta":  # any entry of the log's metadata object
            cond = f"EXISTS (SELECT 1 FROM json_each(COALESCE(metadata, '{{}}')) WHERE {cond})"
        self.conds.append(cond)
        self.params += typed


def _filters(query: dict[str, list[str]]) -> list[tuple[str, str, list[Any]]]:
    if "filters" in query:
        return _json_filters(query["filters"][-1])
    keys, ops = query.get("filters.key", []), query.get("filters.operator", [])
    values = query.get("filters.value", [])
    if not keys and not ops and not values:
        return []
    if len(ops) != len(keys):
        raise err.bad_query(
            f"filters: {len(keys)} filters.key but {len(ops)} filters.operator; "
            "each filter needs a key and an operator"
        )
    if len(keys) == 1:
        return [(keys[0], ops[0], list(values))]
    if len(values) != len(keys):
        raise err.bad_query(
            f"filters: {len(keys)} filters with {len(values)} values cannot be matched up "
            "in the dotted query form; give each filter exactly one value (repeat a filter "
            "to match several values)"
        )
    return [(k, o, [v]) for k, o, v in zip(keys, ops, values, strict=True)]


def _json_filters(raw: str) -> list[tuple[str, str, list[Any]]]:
    try:
        items = json.loads(raw)
    except ValueError:
        raise err.bad_query("filters: must be a JSON array of {key, operator, value}") from None
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise err.bad_query("filters: must be a JSON array of {key, operator, value}")
    out = []
    for item in items:
        values = item.get("value", [])
        out.append((str(item.get("key")), str(item.get("operator", "eq")),
                    values if isinstance(values, list) else [values]))  # fmt: skip
    return out


def _typed(key: str, kind: str, value: Any) -> Any:
    if kind == "bool":
        return int(_bool(key, value))
    if kind == "number":
        return _number(key, value)
    if kind == "date":
        return _date(key, value)
    if isinstance(value, str):
        return value
    if isinstance(value, bool):  # json_each gives a JSON boolean as 1 or 0
        return "1" if value else "0"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value)  # nothing stored equals an object; it matches no log


def _order(one: dict[str, str], *, delete: bool) -> str:
    allowed = _ORDER_DELETE if delete else _ORDER_LIST
    column = one.get("order_by", "created_at")
    if column not in allowed:
        raise err.bad_query(f"order_by: must be one of {', '.join(allowed)}")
    default = "asc" if delete else "desc"
    direction = one.get("order_by_direction", one.get("direction", default)).lower()
    if direction not in ("asc", "desc"):
        raise err.bad_query("order_by_direction: must be asc or desc")
    expression = {"created_at": "seq", "cost": "0"}.get(column, column)
    return f"{expression} {direction}, seq {direction}"


def _bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("true", "1"):
        return True
    if str(value).lower() in ("false", "0"):
        return False
    raise err.bad_query(f"{key}: must be true or false")


def _number(key: str, value: Any) -> float:
    if isinstance(value, bool):
        raise err.bad_query(f"{key}: must be a number")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise err.bad_query(f"{key}: must be a number") from None


def _date(key: str, value: Any) -> str:
    """An ISO 8601 instant in the stored form (UTC, milliseconds, ``Z``), so text order is
    time order."""
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        raise err.bad_query(f"{key}: must be an ISO 8601 date-time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return timestamp(parsed.timestamp())
