"""What the Workers scripts service keeps and hands to the runtime: modules, versions,
deployments, scripts, and the `ScriptRuntime` that runs versions.

A *version* is immutable: its modules, bindings (secret texts included: the runtime needs
them; answers never show them) and compatibility settings. A *deployment* sends traffic to
one or two versions by percentage. A *script* holds the settings that are not versioned
(workers.dev, tags, logpush, observability, tail consumers).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = [
    "Deployment",
    "Module",
    "RunnableVersion",
    "Script",
    "ScriptRuntime",
    "StartupFailed",
    "Version",
    "runnable",
]


@dataclass(frozen=True)
class Module:
    """One uploaded module: its name (a path, ``lib/util.js``), content type and bytes."""

    name: str
    content_type: str
    content: bytes = field(repr=False)


@dataclass(frozen=True)
class RunnableVersion:
    """What the runtime needs to run one version of a script."""

    script: str
    version_id: str
    modules: tuple[Module, ...]
    bindings: tuple[Mapping[str, Any], ...] = field(repr=False)
    compatibility_date: str
    compatibility_flags: tuple[str, ...] = ()
    # Exactly one of: an ES module Worker's main module, or a service worker's script part.
    main_module: str | None = None
    body_part: str | None = None
    #: Static assets: ``{config, manifest: {path: {hash, size}}}`` (Cloudflare's settings).
    assets: Mapping[str, Any] | None = field(default=None, repr=False)
    #: An asset file by hash: (content type as uploaded, bytes), None when not stored.
    read_asset: Callable[[str], tuple[str, bytes] | None] | None = field(
        default=None, repr=False, compare=False
    )

    @property
    def entry(self) -> str:
        return self.main_module or self.body_part or ""


@dataclass(frozen=True)
class Version:
    """A stored version: `metadata` holds main_module/body_part, bindings (with secrets),
    compatibility_date, compatibility_flags and the other versioned settings as uploaded."""

    id: str
    script: str
    number: int
    created_on: str
    source: str
    author_email: str
    annotations: Mapping[str, Any]
    metadata: Mapping[str, Any] = field(repr=False)
    etag: str
    startup_time_ms: int

    @property
    def bindings(self) -> list[Mapping[str, Any]]:
        return list(self.metadata.get("bindings") or [])


def runnable(
    script: str,
    version_id: str,
    metadata: Mapping[str, Any],
    modules: Sequence[Module],
    read_asset: Callable[[str], tuple[str, bytes] | None] | None = None,
) -> RunnableVersion:
    """What the runtime runs of a version with this (checked) metadata and these modules;
    `read_asset` reads its asset files by hash."""
    return RunnableVersion(
        script=script,
        version_id=version_id,
        modules=tuple(modules),
        bindings=tuple(metadata.get("bindings") or ()),
        compatibility_date=str(metadata["compatibility_date"]),
        compatibility_flags=tuple(metadata.get("compatibility_flags") or ()),
        main_module=metadata.get("main_module"),
        body_part=metadata.get("body_part"),
        assets=metadata.get("assets"),
        read_asset=read_asset,
    )


@dataclass(frozen=True)
class Deployment:
    """Traffic by percentage across one or two versions (``(version id, percent)``)."""

    id: str
    script: str
    created_on: str
    source: str
    author_email: str
    versions: tuple[tuple[str, float], ...]
    annotations: Mapping[str, Any]

    @property
    def split(self) -> dict[str, int]:
        return {vid: round(pct) for vid, pct in self.versions}

    @property
    def serving(self) -> str:
        """The version at the highest percentage (the first listed on a tie)."""
        return max(self.versions, key=lambda v: v[1])[0]


@dataclass(frozen=True)
class Script:
    """A script and its non-versioned settings."""

    name: str
    id: str
    tag: str
    created_on: str
    modified_on: str
    subdomain_enabled: bool
    previews_enabled: bool
    settings: Mapping[str, Any]


class StartupFailed(Exception):
    """A version's Worker did not start (workerd's own words in `message`)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ScriptRuntime(Protocol):
    """Runs versions of scripts behind the router (`cfai.local.runtime.WorkersRuntime`).
    Calls block (processes start); the service calls them from a worker thread."""

    def start(self, version: RunnableVersion) -> float:
        """Run `version` (if it does not run yet) and return its startup time in ms;
        `StartupFailed` when its Worker does not start."""

    def route(
        self,
        script: str,
        split: Mapping[str, int],
        versions: Sequence[RunnableVersion],
        *,
        public: bool,
        keep: Collection[str] = (),
    ) -> None:
        """Serve `script` by `split` (version id -> percent; `versions` are the versions in
        it, started if needed), on a public port when `public`; its other versions stop,
        after a drain, unless listed in `keep`."""

    def discard(self, version_id: str) -> None:
        """Stop a version that was started but never stored."""

    def forget(self, script: str) -> None:
        """Stop every version of `script` and drop its route."""

    def loaded(self, version_id: str, module: str) -> bytes | None:
        """The bytes of `module` as the runtime loads it for `version_id` (None: not there)."""

    def close(self) -> None:
        """Stop everything the runtime started."""
