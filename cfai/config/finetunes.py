"""The ``finetunes`` section: LoRA adapters declared as resources, and their checks.

A finetune is a folder in the repository holding ``adapter_config.json`` and
``adapter_model.safetensors``, trained elsewhere for `base_model`. cfai uploads it as a
Workers AI finetune (https://developers.cloudflare.com/workers-ai/features/fine-tunes/loras/)
named by its physical name (`PlatformConfig.physical_name`) plus a digest
(`cfai.finetunes.naming`), and a chat Worker uses it with ``lora: <key>``.

Checked at load, every problem at once, each at its path: the base model is one Cloudflare
serves LoRA for; both files are present; ``adapter_config.json`` parses, its rank is at
most 32 and its ``model_type`` is the base model's family; the safetensors header is valid;
each file is under 300 MB; at most 100 finetunes are declared (Cloudflare's per-account
limit).

Example::

    finetunes:
      tone:
        base_model: "@cf/meta/llama-3.3-70b-instruct-fp8-fast"
        path: src/adapters/tone
        description: Answers in the Acme support team's tone
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Set
from pathlib import Path, PurePosixPath

from pydantic import Field, field_validator

from cfai.errors import Problem, RenderError
from cfai.finetunes import (
    LORA_BASES,
    MAX_FINETUNES_PER_ACCOUNT,
    digest_folder,
    finetune_name,
    inspect_folder,
)
from cfai.finetunes.naming import SUFFIX_HEX
from cfai.kinds.base import ConfigModel

__all__ = ["FinetuneConfig", "finetune_bases", "finetune_problems", "physical_finetune_name"]

# Cloudflare publishes no rule for finetune names; cfai asks what it asks of Worker names
# (the name is also a path segment of the asset upload route).
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_MAX_NAME = 64


class FinetuneConfig(ConfigModel):
    """A LoRA adapter uploaded as a Workers AI finetune."""

    base_model: str = Field(
        description="the Workers AI model the adapter was trained for (one Cloudflare serves "
        "LoRA adapters on, see cfai.finetunes.bases)"
    )
    path: str = Field(
        min_length=1,
        description="folder, relative to the project, with adapter_config.json and "
        "adapter_model.safetensors",
    )
    description: str = Field(
        "",
        max_length=1024,
        description="shown by `wrangler ai finetune list` (1024 characters is cfai's bound: "
        "Cloudflare publishes none)",
    )

    @field_validator("base_model")
    @classmethod
    def _served(cls, value: str) -> str:
        if value not in LORA_BASES:
            known = ", ".join(sorted(LORA_BASES))
            raise ValueError(
                f"{value!r} is not a model Cloudflare serves LoRA adapters for (one of: {known})"
            )
        return value

    @field_validator("path")
    @classmethod
    def _relative(cls, value: str) -> str:
        pure = PurePosixPath(value)
        if pure.is_absolute() or ".." in pure.parts:
            raise ValueError(f"{value!r} must be a folder inside the project (a relative path)")
        return value


def finetune_problems(
    finetunes: Mapping[str, FinetuneConfig],
    physical_name: Callable[[str], str],
    base_dir: Path | None,
) -> Iterator[Problem]:
    """The count limit, the physical names and (with `base_dir`) each adapter's files."""
    if len(finetunes) > MAX_FINETUNES_PER_ACCOUNT:
        yield Problem(
            "finetunes",
            f"{len(finetunes)} finetunes declared; Cloudflare allows "
            f"{MAX_FINETUNES_PER_ACCOUNT} LoRA adapters per account",
        )
    for key, finetune in finetunes.items():
        where = f"finetunes.{key}"
        name = physical_name(key)
        if not _NAME.match(name):
            yield Problem(
                where, f"finetune name {name!r} must use lowercase letters, digits, '-' and '_'"
            )
        if len(name) + 1 + SUFFIX_HEX > _MAX_NAME:
            yield Problem(
                where,
                f"finetune name {name!r} plus cfai's {SUFFIX_HEX + 1}-character digest suffix "
                f"exceeds {_MAX_NAME} characters (shorten the key or name_prefix)",
            )
        if base_dir is None:
            continue
        for finding in inspect_folder(base_dir / finetune.path, finetune.base_model):
            yield Problem(f"{where}.path", str(finding))


def physical_finetune_name(
    key: str, finetune: FinetuneConfig, base_name: str, base_dir: Path
) -> str:
    """The Cloudflare name of finetune `key`: `base_name` (its physical name) plus the digest
    of its base model, description and files. Raises `RenderError` when the files cannot be
    read (the declaration was not validated against `base_dir`)."""
    folder = base_dir / finetune.path
    try:
        digest = digest_folder(folder)
    except OSError as err:
        raise RenderError(
            f"finetunes.{key}.path: cannot read the adapter in {folder}: {err}"
        ) from None
    return finetune_name(
        base_name, model=finetune.base_model, description=finetune.description, digest=digest
    )


def finetune_bases(
    finetunes: Mapping[str, FinetuneConfig], declared: Set[str]
) -> dict[str, str | None]:
    """Each declared finetune key -> its base model (None when its entry is invalid)."""
    return {
        key: (finetunes[key].base_model if key in finetunes else None)
        for key in {*declared, *finetunes}
    }
