"""Static assets of the Workers scripts API: the upload session, the upload, and the
``assets`` of a script upload's metadata.

The flow is Cloudflare's direct upload
(https://developers.cloudflare.com/workers/static-assets/direct-upload/):

1. ``POST /workers/scripts/{name}/assets-upload-session`` ``{"manifest": {"/path": {hash,
   size}}}`` (API token) answers ``{jwt, buckets}``: the hashes not stored yet, in buckets;
   with none missing, ``jwt`` is already the completion token;
2. ``POST /workers/assets/upload?base64=true`` authenticated with that session token, one
   multipart part per file named by its hash: ``202`` while files are missing, then ``201``
   with the completion token ``{jwt}``;
3. the script upload's ``metadata.assets`` is ``{jwt: <completion token>, config}``
   (``keep_assets: true`` keeps the previous version's); the version stores the manifest.

Tokens are opaque random strings valid for an hour, as Cloudflare's JWTs are. File contents
are stored once by hash (`AssetStore`); Cloudflare's limits hold: 20,000 files per version
and 25 MiB per file (https://developers.cloudflare.com/workers/platform/limits/).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cfai.local.services._sqlite import SqliteStore
from cfai.local.services.frontdoor import ApiError, Part
from cfai.local.services.workers_scripts import _errors as E

__all__ = [
    "MAX_FILES",
    "MAX_FILE_BYTES",
    "AssetStore",
    "check_assets",
    "check_manifest",
    "store_upload",
]

MAX_FILES = 20_000
MAX_FILE_BYTES = 25 * 1024 * 1024
TOKEN_SECONDS = 3600
BUCKET = 50
_HASH = re.compile(r"^[0-9a-f]{32}$")
_HTML = ("auto-trailing-slash", "force-trailing-slash", "drop-trailing-slash", "none")
_NOT_FOUND = ("none", "404-page", "single-page-application")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS blobs (
  hash TEXT PRIMARY KEY, content_type TEXT NOT NULL, content BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
  token TEXT PRIMARY KEY, kind TEXT NOT NULL, script TEXT NOT NULL, manifest TEXT NOT NULL,
  expires REAL NOT NULL);
"""


def expired_token() -> ApiError:
    return ApiError(
        401, 10000, "Authentication error: the assets upload token is invalid or expired"
    )


class AssetStore(SqliteStore):
    """Asset files by hash, and the upload sessions' tokens."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, _SCHEMA, rows=True)

    def missing(self, hashes: Sequence[str]) -> list[str]:
        with self._lock:
            have = {
                r["hash"]
                for r in self._db.execute(
                    "SELECT hash FROM blobs WHERE hash IN (SELECT value FROM json_each(?))",
                    (json.dumps(list(hashes)),),
                )
            }
        return [h for h in dict.fromkeys(hashes) if h not in have]

    def put(self, digest: str, content_type: str, content: bytes) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO blobs (hash, content_type, content) VALUES (?,?,?)",
                (digest, content_type, content),
            )

    def blob(self, digest: str) -> tuple[str, bytes] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT content_type, content FROM blobs WHERE hash=?", (digest,)
            ).fetchone()
        return None if row is None else (str(row["content_type"]), bytes(row["content"]))

    def reset(self) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM blobs")
            db.execute("DELETE FROM sessions")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def session(self, kind: str, script: str, manifest: Mapping[str, Any]) -> str:
        token = secrets.token_urlsafe(32)
        with self._tx() as db:
            db.execute("DELETE FROM sessions WHERE expires < ?", (time.time(),))
            db.execute(
                "INSERT INTO sessions (token, kind, script, manifest, expires) VALUES (?,?,?,?,?)",
                (token, kind, script, json.dumps(dict(manifest)), time.time() + TOKEN_SECONDS),
            )
        return token

    def redeem(self, token: str, kind: str) -> tuple[str, dict[str, Any]] | None:
        """(script, manifest) of a live token of `kind`, else None."""
        with self._lock:
            row = self._db.execute(
                "SELECT script, manifest, expires FROM sessions WHERE token=? AND kind=?",
                (token, kind),
            ).fetchone()
        if row is None or float(row["expires"]) < time.time():
            return None
        return str(row["script"]), dict(json.loads(row["manifest"]))


def check_manifest(body: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The manifest of a session request, checked as Cloudflare takes it."""
    manifest = body.get("manifest")
    if not isinstance(manifest, dict) or not manifest:
        raise E.invalid("manifest: expected an object of /path -> {hash, size}")
    if len(manifest) > MAX_FILES:
        raise E.invalid(
            f"manifest: {len(manifest)} files; a Worker version takes at most {MAX_FILES}"
        )
    out = {}
    for path, entry in manifest.items():
        if not path.startswith("/") or "\0" in path or len(path) > 4096:
            raise E.invalid(f"manifest: {path[:200]!r} is not an absolute path")
        if not isinstance(entry, dict) or not _HASH.fullmatch(str(entry.get("hash", ""))):
            raise E.invalid(f"manifest[{path}].hash: expected 32 hexadecimal characters")
        size = entry.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_FILE_BYTES:
            raise E.invalid(
                f"manifest[{path}].size: expected bytes from 0 to {MAX_FILE_BYTES} (25 MiB)"
            )
        out[path] = {"hash": entry["hash"], "size": size}
    return out


def store_upload(store: AssetStore, token: str, parts: Sequence[Part], b64: bool) -> str | None:
    """Store the files of one upload request; the completion token once the session's
    manifest is complete (None while files are missing)."""
    found = store.redeem(token, "upload")
    if found is None:
        raise expired_token()
    script, manifest = found
    wanted = {e["hash"] for e in manifest.values()}
    for p in parts:
        digest = p.name
        if digest not in wanted:
            raise E.invalid(f"file {digest[:64]!r} is not in this upload session's manifest")
        data = p.data
        if b64:
            try:
                data = base64.b64decode(data, validate=True)
            except (binascii.Error, ValueError):
                raise E.invalid(f"file {digest}: not valid base64") from None
        if len(data) > MAX_FILE_BYTES:
            raise E.invalid(f"file {digest}: over the 25 MiB an asset may weigh")
        store.put(digest, p.content_type or "", data)
    if store.missing(sorted(wanted)):
        return None
    return store.session("completion", script, manifest)


def check_assets(
    metadata: Mapping[str, Any],
    store: AssetStore,
    script: str,
    previous: Mapping[str, Any] | None,
) -> dict[str, Any] | None:
    """The ``assets`` a version keeps (``{config, manifest}``) from an upload's metadata:
    a completion token's manifest, or the previous version's with ``keep_assets``."""
    raw = metadata.get("assets")
    if raw is None:
        if metadata.get("keep_assets") is True and previous is not None:
            return dict(previous)
        return None
    if not isinstance(raw, dict):
        raise E.invalid("assets: expected {jwt, config}")
    config = raw.get("config") or {}
    if not isinstance(config, dict):
        raise E.invalid("assets.config: expected an object")
    if config.get("html_handling", "auto-trailing-slash") not in _HTML:
        raise E.invalid(f"assets.config.html_handling: expected one of {', '.join(_HTML)}")
    if config.get("not_found_handling", "none") not in _NOT_FOUND:
        raise E.invalid(
            f"assets.config.not_found_handling: expected one of {', '.join(_NOT_FOUND)}"
        )
    first = config.get("run_worker_first", False)
    if not isinstance(first, bool) and not (
        isinstance(first, list)
        and all(isinstance(g, str) and g.startswith(("/", "!/")) for g in first)
    ):
        raise E.invalid("assets.config.run_worker_first: expected a boolean or route globs")
    jwt = raw.get("jwt")
    if jwt is None and previous is not None and metadata.get("keep_assets") is True:
        return {**previous, "config": config}
    found = store.redeem(str(jwt or ""), "completion")
    if found is None or found[0] != script:
        raise E.invalid(
            "assets.jwt: not a completion token of an assets upload session of this Worker "
            "(or it expired); upload the assets again"
        )
    return {"config": config, "manifest": found[1]}
