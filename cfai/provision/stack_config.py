"""What the Pulumi program reads from Pulumi's config, by Pulumi's conventions.

The declaration is the stack config object ``cfai:platform``, read through
``pulumi.Config("cfai")``: whatever put it there applies — the stack file, a Pulumi ESC
environment (``environment:`` in the stack file), ``pulumi config set --path``, or the
Automation API's ``set_config`` — and no ``Pulumi.<stack>.yaml`` needs to exist on disk.
Physical names default to ``<project>-<stack>`` from ``pulumi.get_project()`` and
``pulumi.get_stack()``. (The CLI loads ``Pulumi.<stack>.yaml`` itself, without Pulumi:
`cfai.config.load_stack`.)

The Cloudflare API endpoint is the pulumi-cloudflare provider's own setting: the default
provider reads ``cloudflare:baseUrl`` and ``cloudflare:apiToken`` (or the environment
variables ``CLOUDFLARE_BASE_URL`` and ``CLOUDFLARE_API_TOKEN``; names from the installed
``pulumi_cloudflare/config/vars.py``). `cloudflare_base_url` reads the same base URL for
what that provider does not manage (the Vectorize dynamic provider, gateway log URLs), so
``pulumi config set cloudflare:baseUrl http://127.0.0.1:8787/client/v4`` points the whole
program at the local platform.

Example (what ``__main__.py`` does)::

    platform = declaration(Path.cwd())          # ConfigError naming cfai:platform if unset
    base_url = cloudflare_base_url()            # None: Cloudflare's own API
"""

from __future__ import annotations

import os
from pathlib import Path

import pulumi

from cfai.config import CONFIG_KEY, PlatformConfig, load_declaration
from cfai.errors import ConfigError, Problem

__all__ = [
    "BASE_URL_ENV",
    "BASE_URL_KEY",
    "TOKEN_ENV",
    "TOKEN_KEY",
    "cloudflare_base_url",
    "declaration",
]

BASE_URL_KEY = "cloudflare:baseUrl"
BASE_URL_ENV = "CLOUDFLARE_BASE_URL"
TOKEN_KEY = "cloudflare:apiToken"
TOKEN_ENV = "CLOUDFLARE_API_TOKEN"


def declaration(base_dir: Path) -> PlatformConfig:
    """The stack's platform from Pulumi's config ``cfai:platform``, validated; `base_dir`
    anchors custom Workers' modules. `ConfigError` when it is missing, not an object, or
    invalid (every problem, by path)."""
    stack, project = pulumi.get_stack(), pulumi.get_project()
    namespace, key = CONFIG_KEY.split(":", 1)
    source = f"Pulumi config {CONFIG_KEY!r} of stack {stack!r}"
    try:
        data = pulumi.Config(namespace).require_object(key)
    except pulumi.ConfigMissingError:
        raise ConfigError(
            [
                Problem(
                    CONFIG_KEY,
                    f"not set for stack {stack!r}: declare the platform under "
                    f"`config: {CONFIG_KEY}:` in Pulumi.{stack}.yaml (or an ESC environment, "
                    f"or `pulumi config set --path '{CONFIG_KEY}.account_id' ...`)",
                )
            ]
        ) from None
    except pulumi.ConfigTypeError:
        raise ConfigError([Problem(CONFIG_KEY, "must be an object (the platform)")]) from None
    return load_declaration(data, project=project, stack=stack, base_dir=base_dir, source=source)


def cloudflare_base_url() -> str | None:
    """The Cloudflare API root the program's provider talks to (``cloudflare:baseUrl``, else
    ``$CLOUDFLARE_BASE_URL``); None: Cloudflare's own."""
    namespace, key = BASE_URL_KEY.split(":", 1)
    value = pulumi.Config(namespace).get(key) or os.environ.get(BASE_URL_ENV)
    return value.rstrip("/") if value else None
