"""Log records: what is written for a request through a gateway, and how a stored log is
answered (REST ``logs/{id}`` and the binding's ``getLog``)."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cfai.local.services.ai_gateway import _errors as err

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


@dataclass
class NewLog:
    """One request through a gateway, as it is logged."""

    model: str
    path: str
    status_code: int
    success: bool
    cached: bool
    duration: int
    provider: str = "workers-ai"
    model_type: str | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    event_id: str | None = None
    request_content_type: str = "application/json"
    response_content_type: str | None = None
    request_body: bytes = b""
    response_body: bytes = b""
    response_size: int | None = None
    step: int = 0


def timestamp(now: float) -> str:
    """Cloudflare's ISO 8601 form, millisecond precision, UTC `Z`."""
    return (
        datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        + f"{int(now * 1000) % 1000:03d}Z"
    )


def new_log_id(now: float) -> str:
    """A ULID: sortable by creation time, like Cloudflare's log ids."""
    value = (int(now * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def log_answer(
    row: sqlite3.Row, *, heads: bool = True, metadata_text: bool = True
) -> dict[str, Any]:
    """A log as Cloudflare answers it (REST get/list and the binding's `getLog`).

    Over REST ``metadata`` is JSON *text*: the API schema and both SDKs type it as a string
    (cloudflare-python ``types/ai_gateway/log_list_response.py``: ``metadata: Optional[str]``).
    workerd's ``AiGatewayLog`` types it as a record, so the binding (`metadata_text` False)
    gets the object."""
    out: dict[str, Any] = {
        "id": row["id"], "provider": row["provider"], "model": row["model"], "path": row["path"],
        "duration": row["duration"], "status_code": row["status_code"],
        "success": bool(row["success"]), "cached": bool(row["cached"]),
        "tokens_in": row["tokens_in"], "tokens_out": row["tokens_out"],
        "step": row["step"], "cost": 0,
        "feedback": row["feedback"], "score": row["score"], "created_at": row["created_at"],
        "request_content_type": row["request_content_type"],
        "response_content_type": row["response_content_type"],
        "request_size": row["request_size"], "response_size": row["response_size"],
    }  # fmt: skip
    metadata = json.loads(row["metadata"] or "{}")
    if not metadata_text:
        out["metadata"] = metadata
    elif metadata:
        out["metadata"] = json.dumps(metadata, separators=(",", ":"))
    if row["model_type"]:
        out["model_type"] = row["model_type"]
    if row["event_id"]:
        out["event_id"] = row["event_id"]
    if heads:
        for which in ("request", "response"):
            text = bytes(row[f"{which}_body"] or b"").decode("utf-8", "replace")
            out[f"{which}_head"] = text[: err.HEAD_CHARS]
            out[f"{which}_head_complete"] = (
                len(text) <= err.HEAD_CHARS and row[f"{which}_size"] <= err.BODY_LIMIT
            )
    return out
