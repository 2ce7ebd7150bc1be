"""The finetunes' system of record: SQLite rows, asset files beside it.

``finetunes.sqlite3`` holds one row per finetune and one per uploaded asset; the asset's
bytes live in ``finetunes/<id>/<file name>`` under the state directory. An asset file is
written to a temporary name and renamed before its row commits, so a committed row always
has its whole file, and a file without a row (a kill mid-upload) is simply written again by
the next upload. Assets are immutable once their row exists, as on Cloudflare ("you can't
edit a fine tune's asset files after you upload it",
https://developers.cloudflare.com/workers-ai/features/fine-tunes/loras/).

Example::

    store = FinetuneStore(Path(".cfai/local"))
    ft = store.create("acme-tone-1a2b3c4d", "@cf/google/gemma-3-12b-it", description="")
    store.add_asset(ft.id, "adapter_config.json", b"{...}")
    store.find("acme-tone-1a2b3c4d").id == ft.id
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cfai.finetunes import MAX_FINETUNES_PER_ACCOUNT
from cfai.local.services._sqlite import SqliteStore

__all__ = ["AssetExists", "Finetune", "FinetuneExists", "FinetuneStore", "TooManyFinetunes"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS finetunes (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    model TEXT NOT NULL,
    description TEXT NOT NULL,
    public INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    modified_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS assets (
    finetune_id TEXT NOT NULL REFERENCES finetunes(id),
    file_name TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    PRIMARY KEY (finetune_id, file_name)
);
"""
#: Columns `GET /ai/finetunes/public` may order by (``orderBy``).
ORDER_COLUMNS = ("created_at", "modified_at", "name", "model", "id")


class FinetuneExists(Exception):
    """A finetune of that name exists."""


class TooManyFinetunes(Exception):
    """The account holds as many finetunes as Workers AI allows."""


class AssetExists(Exception):
    """That asset was uploaded already (assets are immutable)."""


@dataclass(frozen=True)
class Finetune:
    """One finetune as the REST API describes it."""

    id: str
    name: str
    model: str
    description: str
    public: bool
    created_at: str
    modified_at: str

    def listed(self) -> dict[str, Any]:
        """The shape `GET /ai/finetunes` lists (no ``public``)."""
        return {
            "id": self.id,
            "name": self.name,
            "model": self.model,
            "description": self.description,
            "created_at": self.created_at,
            "modified_at": self.modified_at,
        }

    def created(self) -> dict[str, Any]:
        """The shape `POST /ai/finetunes` and the public list answer."""
        return {**self.listed(), "public": self.public}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _row(row: sqlite3.Row) -> Finetune:
    return Finetune(
        row["id"],
        row["name"],
        row["model"],
        row["description"],
        bool(row["public"]),
        row["created_at"],
        row["modified_at"],
    )


class FinetuneStore(SqliteStore):
    """Finetunes and their assets under `state_dir`."""

    def __init__(self, state_dir: Path) -> None:
        super().__init__(state_dir / "finetunes.sqlite3", _SCHEMA, rows=True)
        self._files = state_dir / "finetunes"

    def create(self, name: str, model: str, *, description: str, public: bool = False) -> Finetune:
        """A new finetune; raises `FinetuneExists` or `TooManyFinetunes`."""
        now = _now()
        ft = Finetune(str(uuid.uuid4()), name, model, description, public, now, now)
        with self._tx() as db:
            (count,) = db.execute("SELECT COUNT(*) FROM finetunes").fetchone()
            if count >= MAX_FINETUNES_PER_ACCOUNT:
                raise TooManyFinetunes
            try:
                db.execute(
                    "INSERT INTO finetunes VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (ft.id, name, model, description, int(public), now, now),
                )
            except sqlite3.IntegrityError:
                raise FinetuneExists(name) from None
        return ft

    def every(self) -> list[Finetune]:
        """Every finetune, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM finetunes ORDER BY created_at, id").fetchall()
        return [_row(r) for r in rows]

    def public(self, *, limit: int | None, offset: int, order_by: str) -> list[Finetune]:
        """The public finetunes ordered by `order_by` (one of `ORDER_COLUMNS`)."""
        if order_by not in ORDER_COLUMNS:
            raise ValueError(order_by)
        sql = f"SELECT * FROM finetunes WHERE public = 1 ORDER BY {order_by}, id LIMIT ? OFFSET ?"
        with self._lock:
            rows = self._db.execute(sql, (-1 if limit is None else limit, offset)).fetchall()
        return [_row(r) for r in rows]

    def find(self, id_or_name: str) -> Finetune | None:
        """The finetune with that id or name (both work wherever Cloudflare takes one)."""
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM finetunes WHERE id = ? OR name = ? ORDER BY id = ? DESC LIMIT 1",
                (id_or_name, id_or_name, id_or_name),
            ).fetchone()
        return _row(row) if row else None

    def assets(self, finetune_id: str) -> set[str]:
        """The file names uploaded to the finetune."""
        with self._lock:
            rows = self._db.execute(
                "SELECT file_name FROM assets WHERE finetune_id = ?", (finetune_id,)
            ).fetchall()
        return {r["file_name"] for r in rows}

    def asset_path(self, finetune_id: str, file_name: str) -> Path:
        return self._files / finetune_id / file_name

    def add_asset(self, finetune_id: str, file_name: str, data: bytes) -> None:
        """Store an asset; raises `AssetExists` when it was uploaded before."""
        if file_name in self.assets(finetune_id):
            raise AssetExists(file_name)
        path = self.asset_path(finetune_id, file_name)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{file_name}.{os.getpid()}.{uuid.uuid4().hex}")
        tmp.write_bytes(data)
        with self._tx() as db:
            if db.execute(
                "SELECT 1 FROM assets WHERE finetune_id = ? AND file_name = ?",
                (finetune_id, file_name),
            ).fetchone():
                tmp.unlink()
                raise AssetExists(file_name)
            os.replace(tmp, path)
            db.execute(
                "INSERT INTO assets VALUES (?, ?, ?, ?)",
                (finetune_id, file_name, hashlib.sha256(data).hexdigest(), len(data)),
            )
            db.execute("UPDATE finetunes SET modified_at = ? WHERE id = ?", (_now(), finetune_id))

    def reset(self) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM assets")
            db.execute("DELETE FROM finetunes")
        shutil.rmtree(self._files, ignore_errors=True)

    def close(self) -> None:
        with self._lock:
            self._db.close()
