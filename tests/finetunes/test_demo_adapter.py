"""The committed demo adapter (src/adapters/tone) is what the generator writes, and valid."""

from __future__ import annotations

from pathlib import Path

from cfai.finetunes import inspect_folder
from cfai.finetunes.demo import main

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "src" / "adapters" / "tone"


def test_committed_demo_adapter_is_the_generators_output(tmp_path: Path) -> None:
    main([str(tmp_path)])
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        assert (tmp_path / name).read_bytes() == (COMMITTED / name).read_bytes(), name
    size = (COMMITTED / "adapter_model.safetensors").stat().st_size
    assert 1024 < size < 16 * 1024  # a few KB, not a model


def test_committed_demo_adapter_fits_its_declared_base_model() -> None:
    assert inspect_folder(COMMITTED, "@cf/meta/llama-3.3-70b-instruct-fp8-fast") == []
