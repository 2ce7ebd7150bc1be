"""Applying committed mutations to the ``vectors`` table, oldest first.

Insert keeps an existing id (``INSERT OR IGNORE``: first wins, judged at apply time), upsert
replaces the whole row, delete removes ids. Each applied mutation drops its payload and
becomes the index's ``processedUpToMutation``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def apply_mutations(db: sqlite3.Connection, name: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """Apply ``(seq, id, kind, created_at, payload, vals)`` mutation rows in order."""
    dims = db.execute("SELECT dimensions FROM indexes WHERE name=?", (name,)).fetchone()[0]
    for seq, mid, kind, created_at, payload, vals in rows:
        records = json.loads(payload) if payload else []
        if kind == "delete":
            db.executemany(
                "DELETE FROM vectors WHERE index_name=? AND id=?",
                [(name, r["id"]) for r in records],
            )
        elif kind in ("insert", "upsert"):
            matrix = np.frombuffer(vals or b"", dtype=np.float32).reshape(-1, dims)
            verb = "INSERT OR IGNORE" if kind == "insert" else "INSERT OR REPLACE"
            db.executemany(
                f"{verb} INTO vectors VALUES (?,?,?,?,?,?)",
                [
                    (
                        name,
                        r["id"],
                        r["namespace"],
                        matrix[i].tobytes(),
                        json.dumps(r["metadata"]) if r["metadata"] is not None else None,
                        json.dumps(r["indexed"]),
                    )
                    for i, r in enumerate(records)
                ],
            )
        db.execute("UPDATE mutations SET applied=1, payload=NULL, vals=NULL WHERE seq=?", (seq,))
        db.execute(
            "UPDATE indexes SET processed_mutation=?, processed_at=? WHERE name=?",
            (mid, iso(created_at), name),
        )
