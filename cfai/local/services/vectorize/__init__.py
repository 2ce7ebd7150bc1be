"""The emulated Vectorize service: binding wire for workerd, v2 REST API, SQLite store.

Example::

    ctx = EmulatorContext(state_dir=Path(".cfai/local"), account_id="0" * 32, api_token="t")
    vectorize = VectorizeService(ctx)
    vectorize.store.create_index("docs", dimensions=384, metric="cosine")
    routes = vectorize.endpoints()  # the binding wire and the REST API, for the front door
"""

from __future__ import annotations

from cfai.local.services.vectorize.service import VectorizeService, VectorizeSettings
from cfai.local.services.vectorize.state import VectorizeStore

__all__ = ["VectorizeService", "VectorizeSettings", "VectorizeStore"]
