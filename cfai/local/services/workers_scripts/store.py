"""The Workers scripts store: scripts, versions with their modules, deployments, in SQLite.

Every change is one transaction committed before the API answers (WAL; see `SqliteStore`),
so what a client was told was stored survives a kill -9 of the emulator. The file holds the
texts of ``secret_text`` bindings, so it is created with mode 600 (SQLite gives its WAL and
shared-memory files the database file's mode).

A version uploaded after the latest deployment, and not deployed since, is *pending*
(``versions.after_deployment`` is the deployment that was latest when it was uploaded):
the runtime keeps the newest pending version running, so deploying it is instant.

Example::

    store = ScriptsStore(Path(".cfai/local/workers_scripts.sqlite3"))
    version = store.add_version("hello", metadata, modules, source="api", startup_ms=7)
    store.add_deployment("hello", [(version.id, 100.0)], source="api")
    store.latest_deployment("hello").split   # {version.id: 100}
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cfai.local.services._sqlite import SqliteStore
from cfai.local.services.workers_scripts._model import Deployment, Module, Script, Version

__all__ = ["AUTHOR", "ScriptsStore", "now"]

# Who uploads on a local platform (Cloudflare answers the token owner's email).
AUTHOR = "local@localhost"
DEFAULT_SETTINGS: dict[str, Any] = {
    "logpush": False,
    "observability": {"enabled": False},
    "tags": [],
    "tail_consumers": [],
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS scripts (
  name TEXT PRIMARY KEY, id TEXT NOT NULL, tag TEXT NOT NULL, created_on TEXT NOT NULL,
  modified_on TEXT NOT NULL, subdomain_enabled INTEGER NOT NULL DEFAULT 0,
  previews_enabled INTEGER NOT NULL DEFAULT 0, settings TEXT NOT NULL,
  next_number INTEGER NOT NULL DEFAULT 1);
CREATE TABLE IF NOT EXISTS versions (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, script TEXT NOT NULL,
  number INTEGER NOT NULL, created_on TEXT NOT NULL, source TEXT NOT NULL,
  author_email TEXT NOT NULL, annotations TEXT NOT NULL, metadata TEXT NOT NULL,
  etag TEXT NOT NULL, startup_time_ms INTEGER NOT NULL, after_deployment TEXT);
CREATE INDEX IF NOT EXISTS versions_script ON versions (script, seq);
CREATE TABLE IF NOT EXISTS modules (
  version_id TEXT NOT NULL, position INTEGER NOT NULL, name TEXT NOT NULL,
  content_type TEXT NOT NULL, content BLOB NOT NULL, PRIMARY KEY (version_id, position));
CREATE TABLE IF NOT EXISTS deployments (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, script TEXT NOT NULL,
  created_on TEXT NOT NULL, source TEXT NOT NULL, author_email TEXT NOT NULL,
  versions TEXT NOT NULL, annotations TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS deployments_script ON deployments (script, seq);
CREATE TABLE IF NOT EXISTS account (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def now() -> str:
    """An ISO 8601 UTC timestamp as Cloudflare writes them (microseconds, ``Z``)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def etag(modules: Sequence[Module]) -> str:
    """A hash of a version's modules (Cloudflare: "hashed script content")."""
    h = hashlib.sha256()
    for m in modules:
        for piece in (m.name.encode(), m.content_type.encode(), m.content):
            h.update(len(piece).to_bytes(8, "big") + piece)
    return h.hexdigest()


def _private(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.fchmod(fd, 0o600)
    os.close(fd)


class ScriptsStore(SqliteStore):
    """Every Worker script of one emulator."""

    def __init__(self, path: Path) -> None:
        _private(path)
        super().__init__(path, _SCHEMA, rows=True)

    # -- scripts -------------------------------------------------------------------------

    def script(self, name: str) -> Script | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM scripts WHERE name=?", (name,)).fetchone()
        return None if row is None else _script(row)

    def scripts(self) -> list[Script]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM scripts ORDER BY created_on, name").fetchall()
        return [_script(r) for r in rows]

    def set_subdomain(self, name: str, enabled: bool, previews: bool) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE scripts SET subdomain_enabled=?, previews_enabled=?, modified_on=?"
                " WHERE name=?",
                (int(enabled), int(previews), now(), name),
            )

    def patch_settings(self, name: str, changes: Mapping[str, Any]) -> None:
        with self._tx() as db:
            row = db.execute("SELECT settings FROM scripts WHERE name=?", (name,)).fetchone()
            settings = {**json.loads(row["settings"]), **changes}
            db.execute(
                "UPDATE scripts SET settings=?, modified_on=? WHERE name=?",
                (json.dumps(settings), now(), name),
            )

    def delete_script(self, name: str) -> None:
        with self._tx() as db:
            db.execute(
                "DELETE FROM modules WHERE version_id IN (SELECT id FROM versions WHERE script=?)",
                (name,),
            )
            for table, column in (("versions", "script"), ("deployments", "script")):
                db.execute(f"DELETE FROM {table} WHERE {column}=?", (name,))
            db.execute("DELETE FROM scripts WHERE name=?", (name,))

    # -- versions ------------------------------------------------------------------------

    def add_version(
        self,
        script: str,
        metadata: Mapping[str, Any],
        modules: Sequence[Module],
        *,
        source: str,
        startup_ms: int,
        annotations: Mapping[str, Any] | None = None,
        version_id: str | None = None,
        deploy: bool = False,
    ) -> Version:
        """Store a new version of `script` (created if new); with `deploy`, a deployment
        sending it 100% of the traffic in the same transaction."""
        vid = version_id or str(uuid.uuid4())
        stamp = now()
        with self._tx() as db:
            row = db.execute("SELECT next_number FROM scripts WHERE name=?", (script,)).fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO scripts (name, id, tag, created_on, modified_on, settings)"
                    " VALUES (?,?,?,?,?,?)",
                    (script, script, uuid.uuid4().hex, stamp, stamp, json.dumps(DEFAULT_SETTINGS)),
                )
                number = 1
            else:
                number = int(row["next_number"])
            latest = db.execute(
                "SELECT id FROM deployments WHERE script=? ORDER BY seq DESC LIMIT 1", (script,)
            ).fetchone()
            db.execute(
                "INSERT INTO versions (id, script, number, created_on, source, author_email,"
                " annotations, metadata, etag, startup_time_ms, after_deployment)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    vid,
                    script,
                    number,
                    stamp,
                    source,
                    AUTHOR,
                    json.dumps(dict(annotations or {})),
                    json.dumps(dict(metadata)),
                    etag(modules),
                    startup_ms,
                    latest["id"] if latest else None,
                ),
            )
            db.executemany(
                "INSERT INTO modules (version_id, position, name, content_type, content)"
                " VALUES (?,?,?,?,?)",
                [(vid, i, m.name, m.content_type, m.content) for i, m in enumerate(modules)],
            )
            db.execute(
                "UPDATE scripts SET next_number=?, modified_on=? WHERE name=?",
                (number + 1, stamp, script),
            )
            if deploy:
                self._insert_deployment(db, script, [(vid, 100.0)], source, {})
        version = self.version(script, vid)
        assert version is not None
        return version

    def version(self, script: str, version_id: str) -> Version | None:
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM versions WHERE script=? AND id=?", (script, version_id)
            ).fetchone()
        return None if row is None else _version(row)

    def versions(self, script: str, *, offset: int = 0, limit: int = -1) -> list[Version]:
        """Newest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM versions WHERE script=? ORDER BY seq DESC LIMIT ? OFFSET ?",
                (script, limit, offset),
            ).fetchall()
        return [_version(r) for r in rows]

    def count_versions(self, script: str) -> int:
        with self._lock:
            (n,) = self._db.execute(
                "SELECT count(*) FROM versions WHERE script=?", (script,)
            ).fetchone()
        return int(n)

    def pending(self, script: str) -> Version | None:
        """The newest version uploaded since the latest deployment and not deployed."""
        latest = self.latest_deployment(script)
        newest = self.versions(script, limit=1)
        if not newest:
            return None
        v = newest[0]
        with self._lock:
            (after,) = self._db.execute(
                "SELECT after_deployment FROM versions WHERE id=?", (v.id,)
            ).fetchone()
        if after != (latest.id if latest else None):
            return None
        return None if latest is not None and v.id in latest.split else v

    def modules(self, version_id: str) -> list[Module]:
        with self._lock:
            rows = self._db.execute(
                "SELECT name, content_type, content FROM modules WHERE version_id=?"
                " ORDER BY position",
                (version_id,),
            ).fetchall()
        return [Module(r["name"], r["content_type"], bytes(r["content"])) for r in rows]

    # -- deployments ---------------------------------------------------------------------

    def add_deployment(
        self,
        script: str,
        versions: Sequence[tuple[str, float]],
        *,
        source: str,
        annotations: Mapping[str, Any] | None = None,
    ) -> Deployment:
        with self._tx() as db:
            did = self._insert_deployment(db, script, versions, source, annotations or {})
        found = self.deployment(script, did)
        assert found is not None
        return found

    def _insert_deployment(
        self,
        db: sqlite3.Connection,
        script: str,
        versions: Sequence[tuple[str, float]],
        source: str,
        annotations: Mapping[str, Any],
    ) -> str:
        did = str(uuid.uuid4())
        db.execute(
            "INSERT INTO deployments (id, script, created_on, source, author_email, versions,"
            " annotations) VALUES (?,?,?,?,?,?,?)",
            (
                did,
                script,
                now(),
                source,
                AUTHOR,
                json.dumps([[v, p] for v, p in versions]),
                json.dumps(dict(annotations)),
            ),
        )
        return did

    def deployments(self, script: str) -> list[Deployment]:
        """Newest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM deployments WHERE script=? ORDER BY seq DESC", (script,)
            ).fetchall()
        return [_deployment(r) for r in rows]

    def latest_deployment(self, script: str) -> Deployment | None:
        found = self.deployments(script)
        return found[0] if found else None

    def deployment(self, script: str, deployment_id: str) -> Deployment | None:
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM deployments WHERE script=? AND id=?", (script, deployment_id)
            ).fetchone()
        return None if row is None else _deployment(row)

    def delete_deployment(self, deployment_id: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM deployments WHERE id=?", (deployment_id,))

    # -- account -------------------------------------------------------------------------

    def account_value(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM account WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row["value"])

    def set_account_value(self, key: str, value: str) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO account (key, value) VALUES (?,?)"
                " ON CONFLICT (key) DO UPDATE SET value=excluded.value",
                (key, value),
            )

    def reset(self) -> None:
        with self._tx() as db:
            for table in ("modules", "versions", "deployments", "scripts", "account"):
                db.execute(f"DELETE FROM {table}")

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _script(row: sqlite3.Row) -> Script:
    return Script(
        name=row["name"],
        id=row["id"],
        tag=row["tag"],
        created_on=row["created_on"],
        modified_on=row["modified_on"],
        subdomain_enabled=bool(row["subdomain_enabled"]),
        previews_enabled=bool(row["previews_enabled"]),
        settings=json.loads(row["settings"]),
    )


def _version(row: sqlite3.Row) -> Version:
    return Version(
        id=row["id"],
        script=row["script"],
        number=int(row["number"]),
        created_on=row["created_on"],
        source=row["source"],
        author_email=row["author_email"],
        annotations=json.loads(row["annotations"]),
        metadata=json.loads(row["metadata"]),
        etag=row["etag"],
        startup_time_ms=int(row["startup_time_ms"]),
    )


def _deployment(row: sqlite3.Row) -> Deployment:
    return Deployment(
        id=row["id"],
        script=row["script"],
        created_on=row["created_on"],
        source=row["source"],
        author_email=row["author_email"],
        versions=tuple((str(v), float(p)) for v, p in json.loads(row["versions"])),
        annotations=json.loads(row["annotations"]),
    )
