"""`Finetune`: a Workers AI finetune (a LoRA adapter) as a Pulumi resource.

pulumi-cloudflare (6.23.1) has no finetune resource, so this is a dynamic provider over the
finetunes REST API (`cfai.provision.rest.CloudflareClient.finetunes`). Its type is
``pulumi-python:dynamic/cloudflare:Finetune``.

Lifecycle (Cloudflare's API has create, list and asset upload; no get-one, no update, no
delete: https://developers.cloudflare.com/api/resources/ai/subresources/finetunes/):

- create reads both files, checks they still have the declared sha256, then adopts the
  finetune of that name when its model and description are the declared ones, or creates
  it, and uploads ``adapter_config.json`` and ``adapter_model.safetensors`` (an asset
  already there counts as uploaded);
- ``accountId``, ``finetuneName``, ``model``, ``description`` and either file's sha256
  replace it: a finetune cannot change ("you can't edit a fine tune's asset files after you
  upload it", https://developers.cloudflare.com/workers-ai/features/fine-tunes/loras/). The
  name carries a digest of all of them (`cfai.finetunes.naming`), so the replacement is
  created under its new name before the old one is let go;
- the file paths and ``baseUrl`` update in place (nothing to send);
- delete sends nothing: there is no delete call. The finetune stays in the account (it
  counts toward the 100 per account) and Pulumi forgets it; an identical one declared
  again is adopted. Refresh reports a finetune missing from the list as gone.
- The API token is read when a method runs, from the stack config ``cloudflare:apiToken``
  or ``CLOUDFLARE_API_TOKEN``: never an input, an output or pickled state.

File paths are relative to the directory Pulumi runs the program in (the project), so state
is the same on every machine.

Example::

    tone = Finetune("tone", FinetuneArgs(
        account_id=account_id, finetune_name="acme-prod-tone-1a2b3c4d",
        model="@cf/meta/llama-3.3-70b-instruct-fp8-fast",
        config_path="src/adapters/tone/adapter_config.json", config_sha256="...",
        model_path="src/adapters/tone/adapter_model.safetensors", model_sha256="..."))
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi.dynamic as dyn

from cfai.errors import ConfigError, Problem
from cfai.finetunes import CONFIG_FILE, MODEL_FILE
from cfai.provision.rest import DEFAULT_BASE_URL, CloudflareApiError, CloudflareClient
from cfai.provision.stack_config import BASE_URL_ENV, TOKEN_ENV
from cfai.provision.stack_config import TOKEN_KEY as TOKEN_CONFIG

__all__ = ["REPLACES", "Finetune", "FinetuneArgs", "FinetuneProvider"]

TO_ENGINE = {
    "account_id": "accountId",
    "finetune_name": "finetuneName",
    "config_path": "configPath",
    "model_path": "modelPath",
    "config_sha256": "configSha256",
    "model_sha256": "modelSha256",
    "base_url": "baseUrl",
    "finetune_id": "finetuneId",
    "created_at": "createdAt",
    "modified_at": "modifiedAt",
}
TO_PYTHON = {v: k for k, v in TO_ENGINE.items()}
INPUTS = (
    "accountId",
    "finetuneName",
    "model",
    "description",
    "configPath",
    "modelPath",
    "configSha256",
    "modelSha256",
    "baseUrl",
)
REQUIRED = tuple(k for k in INPUTS if k not in ("description", "baseUrl"))
REPLACES = ("accountId", "finetuneName", "model", "description", "configSha256", "modelSha256")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _default_client(base_url: str, token: str, account_id: str) -> CloudflareClient:
    return CloudflareClient(base_url, token=token, account_id=account_id)


# The factory the provider builds its client with; tests swap it. Module-level (not on the
# provider) so it is never pickled into state.
_new_client: Callable[[str, str, str], CloudflareClient] = _default_client


def _inputs(props: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: props[k] for k in INPUTS if props.get(k) is not None}
    out.setdefault("description", "")
    return out


def _resource(props: Mapping[str, Any]) -> str:
    return f"finetune '{props.get('finetuneName', '?')}'"


def _files(props: Mapping[str, Any]) -> dict[str, bytes]:
    """Both assets, each checked against its declared sha256 (`ConfigError` naming the file
    when it cannot be read or has changed since the program hashed it)."""
    files = {}
    for file_name, path_key, sha_key in (
        (CONFIG_FILE, "configPath", "configSha256"),
        (MODEL_FILE, "modelPath", "modelSha256"),
    ):
        path = Path(str(props[path_key]))
        try:
            data = path.read_bytes()
        except OSError as err:
            raise ConfigError([Problem(str(path), f"cannot read it: {err.strerror}")]) from None
        if hashlib.sha256(data).hexdigest() != props[sha_key]:
            raise ConfigError(
                [Problem(str(path), "changed after the program hashed it; run `pulumi up` again")]
            )
        files[file_name] = data
    return files


def _outs(inputs: Mapping[str, Any], finetune: Mapping[str, Any]) -> dict[str, Any]:
    return {
        **_inputs(inputs),
        "finetuneId": finetune.get("id"),
        "createdAt": finetune.get("created_at"),
        "modifiedAt": finetune.get("modified_at"),
    }


class FinetuneProvider(dyn.ResourceProvider):
    """Create/adopt, refresh and forget a Workers AI finetune for the Pulumi engine.

    Pickled *by reference* (``cfai.provision.finetune.FinetuneProvider``) into every
    resource's state: moving or renaming it breaks existing stacks. It holds no client and
    no token; a token set by `configure` is dropped when pickled.
    """

    def __init__(self) -> None:
        super().__init__()
        self._configured_token: str | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def __setstate__(self, state: Mapping[str, Any]) -> None:
        self._configured_token = None

    def configure(self, req: dyn.ConfigureRequest) -> None:
        token = req.config.get(TOKEN_CONFIG)
        self._configured_token = str(token) if token else None

    def _client(self, props: Mapping[str, Any]) -> CloudflareClient:
        token = self._configured_token or os.environ.get(TOKEN_ENV)
        if not token:
            raise CloudflareApiError(
                401,
                None,
                f"no API token: set {TOKEN_ENV} or `pulumi config set --secret {TOKEN_CONFIG}`",
                "authenticate for",
                _resource(props),
            )
        base_url = props.get("baseUrl") or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
        return _new_client(str(base_url), token, str(props["accountId"]))

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> dyn.CheckResult:
        failures = [dyn.CheckFailure(k, "required") for k in REQUIRED if not news.get(k)]
        for key in ("configSha256", "modelSha256"):
            value = news.get(key)
            if isinstance(value, str) and value and not _SHA256.match(value):
                failures.append(dyn.CheckFailure(key, "must be 64 lowercase hex digits"))
        return dyn.CheckResult(_inputs(news), failures)

    def create(self, props: dict[str, Any]) -> dyn.CreateResult:
        inputs = _inputs(props)
        files = _files(inputs)
        with self._client(inputs) as cf:
            finetune = cf.finetunes.ensure(
                str(inputs["finetuneName"]),
                model=str(inputs["model"]),
                description=str(inputs["description"]),
                files=files,
            )
        return dyn.CreateResult(str(finetune["id"]), _outs(inputs, finetune))

    def read(self, id_: str, props: dict[str, Any]) -> dyn.ReadResult:
        with self._client(props) as cf:
            found = cf.finetunes.find(id_)
        if found is None:
            return dyn.ReadResult(None, {})
        actual = {
            **_inputs(props),
            "finetuneName": found.get("name"),
            "model": found.get("model"),
            "description": found.get("description") or "",
        }
        return dyn.ReadResult(id_, _outs(actual, found), _inputs(actual))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dyn.DiffResult:
        old, new = _inputs(olds), _inputs(news)
        replaces = [k for k in REPLACES if old.get(k) != new.get(k)]
        updates = [k for k in ("configPath", "modelPath", "baseUrl") if old.get(k) != new.get(k)]
        return dyn.DiffResult(
            changes=bool(replaces or updates), replaces=replaces, delete_before_replace=False
        )

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> dyn.UpdateResult:
        # Only paths or the base URL changed: nothing to send, the finetune is the same.
        kept = {
            "id": id_,
            "created_at": olds.get("createdAt"),
            "modified_at": olds.get("modifiedAt"),
        }
        return dyn.UpdateResult(_outs(news, kept))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        # Cloudflare has no call that deletes a finetune: it stays in the account.
        return None


@dataclass(frozen=True)
class FinetuneArgs:
    """What a `Finetune` is declared with: its Cloudflare name, base model, description and
    the two files (paths relative to the project, and their sha256)."""

    account_id: pulumi.Input[str]
    finetune_name: pulumi.Input[str]
    model: pulumi.Input[str]
    config_path: pulumi.Input[str]
    config_sha256: pulumi.Input[str]
    model_path: pulumi.Input[str]
    model_sha256: pulumi.Input[str]
    description: pulumi.Input[str] = ""
    base_url: pulumi.Input[str] | None = None


class Finetune(dyn.Resource, module="cloudflare", name="Finetune"):
    """A Workers AI finetune (see the module docstring for its lifecycle)."""

    account_id: pulumi.Output[str]
    finetune_name: pulumi.Output[str]
    model: pulumi.Output[str]
    description: pulumi.Output[str]
    config_path: pulumi.Output[str]
    model_path: pulumi.Output[str]
    config_sha256: pulumi.Output[str]
    model_sha256: pulumi.Output[str]
    base_url: pulumi.Output[str | None]
    finetune_id: pulumi.Output[str]
    created_at: pulumi.Output[str]
    modified_at: pulumi.Output[str]

    def __init__(
        self, resource_name: str, args: FinetuneArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        props: dict[str, Any] = {
            "account_id": args.account_id,
            "finetune_name": args.finetune_name,
            "model": args.model,
            "description": args.description,
            "config_path": args.config_path,
            "model_path": args.model_path,
            "config_sha256": args.config_sha256,
            "model_sha256": args.model_sha256,
            "base_url": args.base_url,
            "finetune_id": None,
            "created_at": None,
            "modified_at": None,
        }
        super().__init__(FinetuneProvider(), resource_name, props, opts)

    def translate_input_property(self, prop: str) -> str:
        return TO_ENGINE.get(prop, prop)

    def translate_output_property(self, prop: str) -> str:
        return TO_PYTHON.get(prop, prop)
