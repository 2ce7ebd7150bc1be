"""The base of every declaration model and the patterns its fields share (re-exported by
`cfai.kinds.base`; here so `cfai.kinds.assets` can use them without importing the base)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["BINDING_NAME", "DATE", "ConfigModel"]

BINDING_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
DATE = r"^\d{4}-\d{2}-\d{2}$"


class ConfigModel(BaseModel):
    """Base of every declaration model: frozen, and closed so a misspelt key is an error."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)
