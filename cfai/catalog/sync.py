"""``cfai models sync``: Cloudflare's current models into the project's ``catalog.json``.

Reads ``GET /accounts/{account_id}/ai/models/search`` page by page through the one REST
client (`cfai.provision.rest.CloudflareClient`) until a page comes back short or empty (the
way both the Python SDK and wrangler end), and writes every model whose task cfai knows as
a `CatalogFile`. It works the same against the local platform's API.

Example::

    with CloudflareClient(base_url, token=token, account_id=account) as cf:
        report = sync_catalog(cf, Path("."))
    print(report.written, len(report.models), report.skipped)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cfai.catalog._project import CATALOG_FILE, CatalogFile, SyncedModel
from cfai.catalog.search import synced_model
from cfai.errors import CloudflareApiError
from cfai.provision.rest import CloudflareClient

__all__ = ["MAX_PAGES", "PER_PAGE", "SyncReport", "search_models", "sync_catalog"]

PER_PAGE = 50
#: A bound on pages (50,000 models): an API that ignored `page` would otherwise never end.
MAX_PAGES = 1000


@dataclass(frozen=True)
class SyncReport:
    """What a sync wrote: the file, its models, and the names skipped (a task cfai does not
    know), and the pages read."""

    written: Path
    models: tuple[SyncedModel, ...]
    skipped: tuple[str, ...]
    pages: int


def search_models(client: CloudflareClient, *, per_page: int = PER_PAGE) -> tuple[list[Any], int]:
    """Every model object of the account's model search, all pages; and the pages read."""
    found: list[Any] = []
    seen: set[str] = set()
    for page in range(1, MAX_PAGES + 1):
        batch = client.request(
            "GET",
            client.account_path("ai", "models", "search"),
            action="search",
            resource="Workers AI models",
            params={"page": page, "per_page": per_page},
        )
        if not isinstance(batch, list):
            raise CloudflareApiError(
                200, None, "the model search answered no list", "search", "Workers AI models"
            )
        names = {str(m.get("name")) for m in batch if isinstance(m, dict)}
        if names and names <= seen:
            raise CloudflareApiError(
                200, None, f"page {page} repeats earlier models (page ignored?)", "search",
                "Workers AI models",
            )  # fmt: skip
        seen |= names
        found += batch
        if len(batch) < per_page:
            return found, page
    raise CloudflareApiError(
        200, None, f"more than {MAX_PAGES} pages of models", "search", "Workers AI models"
    )


def sync_catalog(client: CloudflareClient, project_dir: Path, *, source: str = "") -> SyncReport:
    """Write ``<project_dir>/catalog.json`` from the account's model search."""
    objects, pages = search_models(client)
    models: list[SyncedModel] = []
    skipped: list[str] = []
    for obj in objects:
        model = synced_model(obj) if isinstance(obj, dict) else None
        if model is None:
            skipped.append(str(obj.get("name")) if isinstance(obj, dict) else repr(obj)[:60])
        else:
            models.append(model)
    models.sort(key=lambda m: m.name)
    path = Path(project_dir) / CATALOG_FILE
    CatalogFile(
        source=source or client.base_url,
        synced_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        models=tuple(models),
    ).write(path)
    return SyncReport(path, tuple(models), tuple(sorted(skipped)), pages)
