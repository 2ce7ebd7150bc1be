"""What `--remote-ai` hands the emulator: settings naming the remote Workers AI REST API,
and its token in the emulator's environment only (never argv, files or logs).

Read from ``CLOUDFLARE_API_TOKEN`` and ``CLOUDFLARE_ACCOUNT_ID``; the base URL is
``https://api.cloudflare.com/client/v4`` unless ``CFAI_REMOTE_AI_BASE_URL`` says otherwise
(tests point it at a second emulator).

Example::

    settings, env = remote_ai_options(os.environ)
    LocalPlatform(Path("."), settings=settings, emulator_env=env).up()
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cfai.errors import ConfigError, Problem
from cfai.local.services.workers_ai.remote import TOKEN_ENV

__all__ = ["DEFAULT_BASE_URL", "remote_ai_options"]

DEFAULT_BASE_URL = "https://api.cloudflare.com/client/v4"


def remote_ai_options(environ: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """(emulator settings, emulator environment) for remote AI; every missing variable reported."""
    problems = [
        Problem(name, "not set; --remote-ai needs the account's API token and id")
        for name in ("CLOUDFLARE_API_TOKEN", "CLOUDFLARE_ACCOUNT_ID")
        if not environ.get(name)
    ]
    if problems:
        raise ConfigError(problems, source="the environment")
    base_url = environ.get("CFAI_REMOTE_AI_BASE_URL") or DEFAULT_BASE_URL
    settings = {"remote_ai": {"base_url": base_url, "account_id": environ["CLOUDFLARE_ACCOUNT_ID"]}}
    return settings, {TOKEN_ENV: environ["CLOUDFLARE_API_TOKEN"]}
