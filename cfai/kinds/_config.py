"""The base of every declaration model and the patterns its fields share (re-exported by
`cfai.kinds.base`; here so `cfai.kinds.assets` can use them without importing the base)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["BINDING_NAME", "DATE", "NAME_PREFIX", "PATTERN_RULES", "URL_PATH", "ConfigModel"]

BINDING_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
DATE = r"^\d{4}-\d{2}-\d{2}$"
NAME_PREFIX = r"^[a-z0-9][a-z0-9-]*$"
URL_PATH = r"^/[^\s?#]*$"
# Each pattern of the declaration in words, for error messages: users read rules, not regexes.
PATTERN_RULES: dict[str, str] = {
    BINDING_NAME: "letters, digits and '_', not starting with a digit",
    DATE: "a date written YYYY-MM-DD",
    NAME_PREFIX: "lowercase letters, digits and '-', starting with a letter or digit",
    URL_PATH: "a URL path starting with '/', without spaces, '?' or '#'",
}


class ConfigModel(BaseModel):
    """Base of every declaration model: frozen, and closed so a misspelt key is an error."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)
