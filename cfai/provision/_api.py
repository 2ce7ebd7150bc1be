"""What the per-service API classes (``_gateway_api``, ``_vectorize_api``,
``_workers_api``) need of the REST client: a typed view of
`cfai.provision.rest.CloudflareClient`, so they do not import it (the client imports them)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class Requester(Protocol):
    """`CloudflareClient.request` and `account_path`."""

    def account_path(self, *parts: str) -> str:
        """``accounts/<account_id>/<parts...>``, each part percent-encoded."""

    def request(
        self,
        method: str,
        path: str,
        *,
        action: str,
        resource: str,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str | int] | None = None,
    ) -> Any:
        """One API call (with retries); the envelope's ``result``."""

    def request_bytes(
        self,
        method: str,
        path: str,
        *,
        action: str,
        resource: str,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str | int] | None = None,
    ) -> tuple[bytes, Mapping[str, str]]:
        """An API call answering raw bytes (script content), with its headers."""
