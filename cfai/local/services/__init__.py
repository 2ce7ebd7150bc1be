"""Emulated Cloudflare services, one module each, behind one registry.

The emulator app, the supervisor and the workerd config loop over `REGISTRY`; nothing
outside a service's own module names it.
"""

from __future__ import annotations

from cfai.local.services.ai_gateway import AiGateway
from cfai.local.services.base import EmulatorContext, Service, WorkerdBinding, WorkerdService
from cfai.local.services.vectorize import Vectorize
from cfai.local.services.workers_ai import WorkersAI

__all__ = ["REGISTRY", "EmulatorContext", "Service", "WorkerdBinding", "WorkerdService"]

REGISTRY: tuple[type[Service], ...] = (WorkersAI, AiGateway, Vectorize)
