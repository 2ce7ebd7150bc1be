"""The local platform: the declared Workers on workerd, Cloudflare's services emulated beside
them, on this machine and offline.

`LocalPlatform` is the public face (up, down, status, outputs, versions); the modules below
it (supervisor, versions, state, router, emulator, services) are its parts.

Example::

    from cfai.local import LocalPlatform

    platform = LocalPlatform(Path("."))
    outputs = platform.up()
    platform.down()

`LocalPlatform` is imported on first use: the router and the emulator run as
``python -m cfai.local.<module>`` and start faster without the renderer and the REST client it
brings in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cfai.local.platform import LocalPlatform
    from cfai.local.status import LocalStatus

__all__ = ["LocalPlatform", "LocalStatus"]


def __getattr__(name: str) -> Any:
    if name == "LocalPlatform":
        from cfai.local.platform import LocalPlatform

        return LocalPlatform
    if name == "LocalStatus":
        from cfai.local.status import LocalStatus

        return LocalStatus
    raise AttributeError(f"module 'cfai.local' has no attribute {name!r}")
