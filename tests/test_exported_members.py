"""The public surface: every public module says what it exports, and what it names exists."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import cfai

PUBLIC = [
    "cfai.config",
    "cfai.errors",
    "cfai.finetunes",
    "cfai.catalog",
    "cfai.kinds",
    "cfai.kinds.base",
    "cfai.kinds.registry",
    "cfai.render",
    "cfai.local",
    "cfai.local.platform",
    "cfai.local.services",
    "cfai.local.state",
    "cfai.local.supervisor",
    "cfai.outputs",
    "cfai.provision.rest",
    "cfai.provision.settings",
    "cfai.provision.vectorize_index",
    "cfai.provision.finetune",
    "cfai.cli",
]


def all_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(cfai.__path__, "cfai."):
        # Contract checks are pytest modules collected by the plugin, not an API.
        if ".contract.checks" in info.name or info.name == "cfai.__main__":
            continue
        names.append(info.name)
    return sorted(names)


@pytest.mark.parametrize("name", PUBLIC)
def test_public_module_declares_all(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported, f"{name} has no __all__"
    assert len(set(exported)) == len(exported), f"{name}.__all__ repeats a name"


@pytest.mark.parametrize("name", all_modules())
def test_every_exported_name_exists(name: str) -> None:
    module = importlib.import_module(name)
    missing = [n for n in getattr(module, "__all__", []) if not hasattr(module, n)]
    assert missing == [], f"{name}.__all__ names undefined {missing}"
