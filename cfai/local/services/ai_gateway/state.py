"""Durable state of the emulated AI Gateway: gateways and their logs, in SQLite (WAL).

The response cache and the rate-limit counters are in memory (`memory.py`): Cloudflare's
cache is volatile too, and counters only matter within an interval.

A request's log row is written off the request path: `insert_log` queues it and a writer
thread commits what is queued in one transaction, a few milliseconds later (one commit and
no wait for the store's lock a request, where 200 requests at once queued behind each
other's commits). Everything that reads or changes logs writes the queue first, so a log is
there for whoever asks once its request was answered (``cf-aig-log-id``, the REST API,
``cfai logs``); `close` writes it too. What a kill -9 can lose is the last few milliseconds
of logs, as AI Gateway's own logs arrive a little after the answer. Gateways are read from
memory, kept in step by every write of the table.

Example::

    store = GatewayStore(Path(".cfai/local/ai_gateway.sqlite3"))
    store.create_gateway({"id": "gw", ...}, now=time.time())
    log_id = store.insert_log("gw", NewLog(model="@cf/...", ...), now=time.time())
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from cfai.local.services._sqlite import SqliteStore
from cfai.local.services.ai_gateway import _errors as err
from cfai.local.services.ai_gateway._logquery import LogQuery
from cfai.local.services.ai_gateway._records import NewLog, log_answer, new_log_id, timestamp

_SCHEMA = """
CREATE TABLE IF NOT EXISTS gateways (
  id TEXT PRIMARY KEY, seq INTEGER NOT NULL, internal_id TEXT NOT NULL, config TEXT NOT NULL,
  created_at TEXT NOT NULL, modified_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS logs (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, gateway TEXT NOT NULL,
  created_at TEXT NOT NULL, provider TEXT NOT NULL, model TEXT NOT NULL, model_type TEXT,
  path TEXT NOT NULL, duration INTEGER NOT NULL, status_code INTEGER NOT NULL,
  success INTEGER NOT NULL, cached INTEGER NOT NULL, tokens_in INTEGER, tokens_out INTEGER,
  metadata TEXT, feedback INTEGER, score REAL, event_id TEXT, step INTEGER NOT NULL,
  request_content_type TEXT, response_content_type TEXT, request_size INTEGER NOT NULL,
  response_size INTEGER NOT NULL, request_body BLOB, response_body BLOB);
CREATE INDEX IF NOT EXISTS logs_by_gateway ON logs(gateway, seq);
"""
_INSERT_LOG = (
    "INSERT INTO logs (id, gateway, created_at, provider, model, model_type, path, duration,"
    " status_code, success, cached, tokens_in, tokens_out, metadata, event_id, step,"
    " request_content_type, response_content_type, request_size, response_size,"
    " request_body, response_body) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
_logger = logging.getLogger("cfai.local.emulator")
# How long the log writer waits after a row is queued, so rows of requests arriving
# together are committed together.
_BATCH_WINDOW = 0.005


class GatewayStore(SqliteStore):
    """Gateways and logs. Thread-safe: routes run service logic in a thread pool."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, _SCHEMA, rows=True)
        self._gateways: dict[str, dict[str, Any] | None] = {}  # id -> gateway, None: none
        self._queued: list[tuple[Any, ...]] = []
        self._queue_lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = False
        self._writer = threading.Thread(target=self._write_queued, name="gateway-logs", daemon=True)
        self._writer.start()

    # -- gateways ---------------------------------------------------------------------------

    def create_gateway(self, config: Mapping[str, Any], *, now: float) -> dict[str, Any]:
        with self._tx() as db:
            gid = config["id"]
            if db.execute("SELECT 1 FROM gateways WHERE id=?", (gid,)).fetchone():
                raise err.gateway_exists(gid)
            seq = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM gateways").fetchone()[0]
            stamp = timestamp(now)
            db.execute(
                "INSERT INTO gateways VALUES (?,?,?,?,?,?)",
                (gid, seq, str(uuid.uuid4()), json.dumps(dict(config)), stamp, stamp),
            )
            self._gateways.pop(gid, None)
        return self._require(gid)

    def get_gateway(self, gateway_id: str) -> dict[str, Any] | None:
        try:
            known = self._gateways[gateway_id]
        except KeyError:
            with self._lock:
                row = self._db.execute(
                    "SELECT * FROM gateways WHERE id=?", (gateway_id,)
                ).fetchone()
                known = None if row is None else _gateway(row)
                self._gateways[gateway_id] = known
        return None if known is None else dict(known)

    def list_gateways(
        self, *, search: str | None, page: int, per_page: int
    ) -> tuple[list[dict[str, Any]], int]:
        pattern = f"%{search or ''}%"
        with self._lock:
            total = self._db.execute(
                "SELECT COUNT(*) FROM gateways WHERE id LIKE ?", (pattern,)
            ).fetchone()[0]
            rows = self._db.execute(
                "SELECT * FROM gateways WHERE id LIKE ? ORDER BY seq DESC LIMIT ? OFFSET ?",
                (pattern, per_page, (page - 1) * per_page),
            ).fetchall()
        return [_gateway(r) for r in rows], total

    def replace_gateway(self, config: Mapping[str, Any], *, now: float) -> dict[str, Any]:
        with self._tx() as db:
            cur = db.execute(
                "UPDATE gateways SET config=?, modified_at=? WHERE id=?",
                (json.dumps(dict(config)), timestamp(now), config["id"]),
            )
            self._gateways.pop(config["id"], None)
            if cur.rowcount == 0:
                raise err.gateway_not_found(config["id"])
        return self._require(config["id"])

    def delete_gateway(self, gateway_id: str) -> dict[str, Any]:
        gateway = self._require(gateway_id)
        self.write_queued()
        with self._tx() as db:
            db.execute("DELETE FROM gateways WHERE id=?", (gateway_id,))
            db.execute("DELETE FROM logs WHERE gateway=?", (gateway_id,))
            self._gateways.pop(gateway_id, None)
        return gateway

    def _require(self, gateway_id: str) -> dict[str, Any]:
        gateway = self.get_gateway(gateway_id)
        if gateway is None:
            raise err.gateway_not_found(gateway_id)
        return gateway

    # -- logs -------------------------------------------------------------------------------

    def insert_log(
        self,
        gateway_id: str,
        log: NewLog,
        *,
        now: float,
        cap: int | None = None,
        strategy: str | None = None,
    ) -> str | None:
        """Store `log` (queued without a cap, see the module's docstring); None when the
        gateway's log cap is reached under STOP_INSERTING."""
        log_id = new_log_id(now)
        row = _row_values(log_id, gateway_id, log, now)
        if cap is None:
            with self._queue_lock:
                self._queued.append(row)
            self._wake.set()
            return log_id
        # A cap counts rows: the queued ones first, then this one in the same transaction.
        self.write_queued()
        with self._tx() as db:
            count = db.execute(
                "SELECT COUNT(*) FROM logs WHERE gateway=?", (gateway_id,)
            ).fetchone()[0]
            if count >= cap:
                if strategy != "DELETE_OLDEST":
                    return None
                db.execute(
                    "DELETE FROM logs WHERE seq IN (SELECT seq FROM logs WHERE gateway=? ORDER BY seq LIMIT ?)",
                    (gateway_id, count - cap + 1),
                )
            db.execute(_INSERT_LOG, row)
        return log_id

    def write_queued(self) -> None:
        """Commit the queued log rows now (in the order they were queued)."""
        with self._lock:  # one writer at a time, so rows land in order
            with self._queue_lock:
                rows, self._queued = self._queued, []
            if rows:
                with self._tx() as db:
                    db.executemany(_INSERT_LOG, rows)

    def _write_queued(self) -> None:
        while not self._closing:
            self._wake.wait()
            self._wake.clear()
            if self._closing:
                return
            time.sleep(_BATCH_WINDOW)
            try:
                self.write_queued()
            except sqlite3.Error:
                # Closed under us: close() writes what is queued itself.
                if self._closing:
                    return
                # A full disk, say: said in the emulator's log; the writer carries on.
                _logger.exception("gateway logs could not be written")

    def finish_stream_log(
        self, log_id: str, *, body: bytes, size: int, duration: int, usage: Mapping[str, int] | None
    ) -> None:
        """Complete a streamed request's log once its last event was sent."""
        usage = usage or {}
        self.write_queued()
        with self._tx() as db:
            db.execute(
                "UPDATE logs SET response_body=?, response_size=?, duration=?,"
                " tokens_in=COALESCE(?, tokens_in), tokens_out=COALESCE(?, tokens_out) WHERE id=?",
                (
                    body[: err.BODY_LIMIT],
                    size,
                    duration,
                    usage.get("prompt_tokens"),
                    usage.get("completion_tokens"),
                    log_id,
                ),
            )

    def get_log(
        self, gateway_id: str, log_id: str, *, metadata_text: bool = True
    ) -> dict[str, Any]:
        """One log with its heads; `metadata_text` as `log_answer` (False for the binding)."""
        return log_answer(self._log_row(gateway_id, log_id), metadata_text=metadata_text)

    def log_body(self, gateway_id: str, log_id: str, which: str) -> tuple[str | None, bytes]:
        row = self._log_row(gateway_id, log_id)
        return row[f"{which}_content_type"], bytes(row[f"{which}_body"] or b"")

    def patch_log(self, gateway_id: str, log_id: str, patch: Mapping[str, Any]) -> None:
        self._log_row(gateway_id, log_id)  # writes the queue first
        sets = {k: (json.dumps(v) if k == "metadata" else v) for k, v in patch.items()}
        if sets:
            with self._tx() as db:
                db.execute(
                    f"UPDATE logs SET {', '.join(f'{k}=?' for k in sets)} WHERE id=?",
                    (*sets.values(), log_id),
                )

    def list_logs(
        self, gateway_id: str, query: Iterable[tuple[str, str]], *, page: int, per_page: int
    ) -> tuple[list[dict[str, Any]], int, dict[str, float]]:
        """A page of logs matching `query` (the request's query items), the total count,
        and the min/max figures `meta_info` asks for."""
        q = LogQuery(gateway_id, query, delete=False)
        self.write_queued()
        with self._lock:
            stats = self._db.execute(
                "SELECT COUNT(*), MIN(duration), MAX(duration), MIN(tokens_in), MAX(tokens_in),"
                " MIN(tokens_out), MAX(tokens_out), MIN(COALESCE(tokens_in,0)+COALESCE(tokens_out,0)),"
                f" MAX(COALESCE(tokens_in,0)+COALESCE(tokens_out,0)) FROM logs WHERE {q.where}",
                q.params,
            ).fetchone()
            rows = self._db.execute(
                f"SELECT * FROM logs WHERE {q.where} ORDER BY {q.order} LIMIT ? OFFSET ?",
                (*q.params, per_page, (page - 1) * per_page),
            ).fetchall()
        names = ("duration", "tokens_in", "tokens_out", "total_tokens")
        meta = {"min_cost": 0.0, "max_cost": 0.0}
        for i, name in enumerate(names):
            meta[f"min_{name}"], meta[f"max_{name}"] = stats[1 + 2 * i] or 0, stats[2 + 2 * i] or 0
        return [log_answer(r, heads=False) for r in rows], stats[0], meta

    def delete_logs(self, gateway_id: str, query: Iterable[tuple[str, str]], *, limit: int) -> int:
        """Delete up to `limit` logs matching `query`, in its order; the count deleted."""
        q = LogQuery(gateway_id, query, delete=True)
        self.write_queued()
        with self._tx() as db:
            cur = db.execute(
                f"DELETE FROM logs WHERE seq IN (SELECT seq FROM logs WHERE {q.where} ORDER BY {q.order} LIMIT ?)",
                (*q.params, limit),
            )
        return cur.rowcount

    def _log_row(self, gateway_id: str, log_id: str) -> sqlite3.Row:
        self.write_queued()
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM logs WHERE gateway=? AND id=?", (gateway_id, log_id)
            ).fetchone()
        if row is None:
            raise err.log_not_found(log_id)
        return row  # type: ignore[no-any-return]

    def reset(self) -> None:
        self.write_queued()
        with self._tx() as db:
            db.execute("DELETE FROM gateways")
            db.execute("DELETE FROM logs")
            self._gateways.clear()

    def close(self) -> None:
        self._closing = True
        self._wake.set()
        self._writer.join(timeout=5)
        with self._lock:
            self.write_queued()
            self._db.close()


def _row_values(log_id: str, gateway_id: str, log: NewLog, now: float) -> tuple[Any, ...]:
    """The values of `_INSERT_LOG` for `log`."""
    size = len(log.response_body) if log.response_size is None else log.response_size
    return (
        log_id, gateway_id, timestamp(now), log.provider, log.model, log.model_type, log.path,
        log.duration, log.status_code, int(log.success), int(log.cached), log.tokens_in,
        log.tokens_out, json.dumps(dict(log.metadata)), log.event_id, log.step,
        log.request_content_type, log.response_content_type, len(log.request_body), size,
        log.request_body[: err.BODY_LIMIT], log.response_body[: err.BODY_LIMIT],
    )  # fmt: skip


def _gateway(row: sqlite3.Row) -> dict[str, Any]:
    config: dict[str, Any] = json.loads(row["config"])
    return {
        **config,
        "internal_id": row["internal_id"],
        "created_at": row["created_at"],
        "modified_at": row["modified_at"],
    }
