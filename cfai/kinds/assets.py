"""Static assets of a Worker: the ``assets:`` declaration, its checks, and the files it
uploads.

The settings are Cloudflare's (https://developers.cloudflare.com/workers/static-assets/
binding/ and .../static-assets/routing/): ``directory`` (inside the project), ``binding``
(the ``env`` name Worker code fetches assets through), ``html_handling``,
``not_found_handling`` and ``run_worker_first`` (true, or route globs with ``!/``
negations). The limits are Cloudflare's too (https://developers.cloudflare.com/workers/
platform/limits/#static-assets): 20,000 files per Worker version on the Free plan and
25 MiB per file.

Files are hashed as the direct-upload docs allow (https://developers.cloudflare.com/workers/
static-assets/direct-upload/: "a 32 hexadecimal character hash"; their example takes the
first 32 of a SHA-256); each is sent with its media type, text types in UTF-8.

Example::

    found = collect(Path("."), AssetsConfig(directory="public", binding="ASSETS"), "workers.chat")
    found.manifest()      # {"/index.html": {"hash": "9f2c...", "size": 512}, ...}
"""

from __future__ import annotations

import fnmatch
import hashlib
import mimetypes
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from cfai.errors import ConfigError, Problem
from cfai.kinds._config import BINDING_NAME, ConfigModel

__all__ = [
    "MAX_FILES",
    "MAX_FILE_BYTES",
    "AssetFile",
    "AssetSet",
    "AssetsConfig",
    "asset_problems",
    "collect",
    "media_type",
    "packaged",
]

#: Files per Worker version (Workers Free; Paid allows 100,000).
MAX_FILES = 20_000
#: Bytes per file.
MAX_FILE_BYTES = 25 * 1024 * 1024
# Files wrangler reads as configuration, never uploads as assets.
_NOT_ASSETS = (".assetsignore", "_headers", "_redirects", "_worker.js")
_TEXT = ("text/", "application/javascript", "application/json", "image/svg+xml")


class AssetsConfig(ConfigModel):
    """A Worker's static assets, served before its code (unless `run_worker_first`)."""

    directory: str = Field(description="folder of the files, relative to the project root")
    binding: str | None = Field(
        None, pattern=BINDING_NAME, description="env name of the assets Fetcher (e.g. ASSETS)"
    )
    html_handling: Literal[
        "auto-trailing-slash", "force-trailing-slash", "drop-trailing-slash", "none"
    ] = "auto-trailing-slash"
    not_found_handling: Literal["none", "404-page", "single-page-application"] = "none"
    run_worker_first: bool | tuple[str, ...] = Field(
        False, description="true, or route globs (`/api/*`, `!/api/docs/*`) sent to the Worker"
    )

    def config(self) -> dict[str, Any]:
        """Cloudflare's ``assets.config`` of the upload metadata."""
        out: dict[str, Any] = {
            "html_handling": self.html_handling,
            "not_found_handling": self.not_found_handling,
        }
        if self.run_worker_first:
            first = self.run_worker_first
            out["run_worker_first"] = list(first) if isinstance(first, tuple) else True
        return out


def media_type(path: str) -> str:
    """The Content-Type an asset is served with (text types in UTF-8), as wrangler sends it."""
    guessed = mimetypes.guess_type(path, strict=False)[0] or "application/octet-stream"
    if guessed.startswith(_TEXT):
        return f"{guessed}; charset=utf-8"
    return guessed


@dataclass(frozen=True)
class AssetFile:
    """One file: its served path (``/css/site.css``), size, hash and media type."""

    path: str
    size: int
    hash: str
    content_type: str
    source: Path = field(repr=False)

    def read(self) -> bytes:
        return self.source.read_bytes()


@dataclass(frozen=True)
class AssetSet:
    """The files of a Worker's assets and how they are served."""

    directory: str
    files: tuple[AssetFile, ...]
    settings: AssetsConfig
    #: cfai's own files (a playground page), not a folder of the project.
    packaged: bool = False

    @property
    def binding(self) -> str | None:
        return self.settings.binding

    def manifest(self) -> dict[str, dict[str, Any]]:
        """The upload session's manifest: served path -> ``{hash, size}``."""
        return {f.path: {"hash": f.hash, "size": f.size} for f in self.files}

    def by_hash(self) -> Mapping[str, AssetFile]:
        return {f.hash: f for f in self.files}

    @property
    def digest(self) -> str:
        """One hash of every path, file hash and the serving config (changes on any edit)."""
        h = hashlib.sha256()
        for f in self.files:
            h.update(f"{f.path}\0{f.hash}\n".encode())
        h.update(repr(sorted(self.settings.config().items())).encode())
        return h.hexdigest()


def _escapes(base_dir: Path, directory: str) -> bool:
    return not (base_dir / directory).resolve().is_relative_to(base_dir.resolve())


def asset_problems(path: str, assets: AssetsConfig, base_dir: Path | None) -> Iterator[Problem]:
    """What is wrong with `assets` (declared at `path`, e.g. ``workers.chat.assets``)."""
    where = f"{path}.directory"
    folder = Path(assets.directory)
    if folder.is_absolute() or ".." in folder.parts:
        yield Problem(where, f"{assets.directory!r} must be a folder inside the project")
        return
    if base_dir is None:
        return
    if _escapes(base_dir, assets.directory):
        yield Problem(
            where, f"{assets.directory!r} resolves outside the project (a symbolic link?)"
        )
        return
    if not (base_dir / folder).is_dir():
        yield Problem(where, f"folder {assets.directory!r} not found in {base_dir}")
        return
    count = 0
    for file, served in _walk(base_dir / folder):
        count += 1
        if _escapes(base_dir, str(file.relative_to(base_dir))):
            yield Problem(where, f"{served} resolves outside the project (a symbolic link?)")
        elif file.stat().st_size > MAX_FILE_BYTES:
            mib = file.stat().st_size / (1024 * 1024)
            yield Problem(
                where,
                f"{served} is {mib:.1f} MiB; Cloudflare serves asset files of at most 25 MiB",
            )
    if count > MAX_FILES:
        yield Problem(
            where,
            f"{count} files; Cloudflare takes at most {MAX_FILES:,} asset files per Worker "
            "version (list the others in .assetsignore)",
        )


def _ignored(root: Path) -> list[str]:
    ignore = root / ".assetsignore"
    if not ignore.is_file():
        return []
    lines = ignore.read_text(encoding="utf-8", errors="replace").splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


def _walk(root: Path) -> Iterator[tuple[Path, str]]:
    """(file, served path) for every asset under `root`, in path order."""
    patterns = _ignored(root)
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = file.relative_to(root).as_posix()
        if rel in _NOT_ASSETS:
            continue
        if any(fnmatch.fnmatch(rel, p.strip("/")) or rel.startswith(p.strip("/") + "/")
               for p in patterns):  # fmt: skip
            continue
        yield file, "/" + rel


def collect(base_dir: Path, assets: AssetsConfig, path: str) -> AssetSet:
    """Every file of `assets` under `base_dir`, hashed; `ConfigError` naming `path` when
    the folder is not one Cloudflare would take."""
    problems = list(asset_problems(path, assets, base_dir))
    if problems:
        raise ConfigError(problems)
    files = tuple(_hashed(file, served) for file, served in _walk(base_dir / assets.directory))
    return AssetSet(assets.directory, files, assets)


def _hashed(file: Path, served: str) -> AssetFile:
    data = file.read_bytes()
    digest = hashlib.sha256(data).hexdigest()[:32]
    return AssetFile(served, len(data), digest, media_type(served), file)


def packaged(label: str, folders: Sequence[Path]) -> AssetSet:
    """cfai's own static files from `folders` (a later folder's file wins a served path),
    served with the default settings (a playground page at ``/``)."""
    found: dict[str, Path] = {}
    for folder in folders:
        found.update((served, file) for file, served in _walk(folder))
    files = tuple(_hashed(found[p], p) for p in sorted(found))
    return AssetSet(label, files, AssetsConfig(directory=label), packaged=True)
