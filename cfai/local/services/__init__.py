"""Emulated Cloudflare services, one package each, behind one registry and one front door.

The emulator app, the supervisor and the workerd config loop over `REGISTRY`; nothing
outside a service's own package names it. Every route is served through the front door
(`cfai.local.services.frontdoor`).
"""

from __future__ import annotations

from cfai.local.services.ai_gateway import GatewayService
from cfai.local.services.base import (
    EmulatorContext,
    Service,
    ServiceSettings,
    WorkerdBinding,
    WorkerdService,
)
from cfai.local.services.finetunes import FinetunesService
from cfai.local.services.vectorize import VectorizeService
from cfai.local.services.workers_ai import WorkersAIService

__all__ = [
    "REGISTRY",
    "EmulatorContext",
    "FinetunesService",
    "GatewayService",
    "Service",
    "ServiceSettings",
    "VectorizeService",
    "WorkerdBinding",
    "WorkerdService",
    "WorkersAIService",
]

REGISTRY: tuple[type[Service], ...] = (
    WorkersAIService,
    GatewayService,
    VectorizeService,
    FinetunesService,
)
