"""Workers AI finetunes driven by wrangler's ``ai finetune create`` and ``list`` (the pinned
wrangler from node_modules) on the session's local platform, each outcome checked with
Cloudflare's Python SDK. wrangler reports API errors on stderr and still exits 0, so the
tests read what it prints.

``wrangler ai finetune create <model> <name> <folder>`` makes two kinds of call: one
``POST .../finetunes``, then one ``POST .../finetune-assets`` per adapter file; one run of
it (`created`) serves the test of each.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import cloudflare
import pytest
from cloudflare.types.ai import FinetuneCreateResponse
from conftest import LORA_MODEL, Wrangler, unique

from cfai.finetunes.demo import write_adapter

FINETUNES = "/accounts/{account_id}/ai/finetunes"
ASSETS = f"{FINETUNES}/{{finetune_id}}/finetune-assets"
WRANGLER = "wrangler"


def said(result: subprocess.CompletedProcess[str]) -> str:
    """All wrangler printed (its API errors go to stderr with exit code 0)."""
    return result.stdout + result.stderr


def json_list(result: subprocess.CompletedProcess[str]) -> list[dict[str, object]]:
    assert result.returncode == 0, said(result)
    listed = json.loads(result.stdout[result.stdout.index("[") :])
    assert isinstance(listed, list)
    return listed


@pytest.fixture(scope="module")
def created(
    wrangler: Wrangler, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, subprocess.CompletedProcess[str]]:
    """One ``wrangler ai finetune create`` of a valid adapter: (finetune name, the process)."""
    folder = tmp_path_factory.mktemp("adapter")
    write_adapter(folder)
    name = unique("parity-wr")
    return name, wrangler("ai", "finetune", "create", LORA_MODEL, name, str(folder))


@pytest.mark.parity(f"POST {FINETUNES}", client=WRANGLER)
def test_wrangler_finetune_create(
    created: tuple[str, subprocess.CompletedProcess[str]], cf: cloudflare.Cloudflare, account: str
) -> None:
    name, result = created
    out = said(result)

    assert result.returncode == 0 and "ERROR" not in out, out
    assert f'Creating new finetune "{name}" for model "{LORA_MODEL}"' in out
    (made,) = [f for f in cf.ai.finetunes.list(account_id=account) if f.name == name]
    assert (made.model, made.description) == (LORA_MODEL, "")


@pytest.mark.parity(f"POST {ASSETS}", client=WRANGLER)
def test_wrangler_finetune_create_uploads_the_adapter(
    created: tuple[str, subprocess.CompletedProcess[str]], cf: cloudflare.Cloudflare, account: str
) -> None:
    name, out = created[0], said(created[1])

    assert out.count('Uploading file "') == 2 and "Couldn't upload" not in out, out
    assert f'✅ Assets uploaded, finetune "{name}" is ready to use.' in out
    # What wrangler uploaded is an adapter a model run applies.
    run = cf.ai.run(LORA_MODEL, account_id=account, prompt="hello", lora=name)
    assert isinstance(run, dict)
    assert run["response"].startswith(f"[cfai stand-in] [LoRA {name}] ")


@pytest.mark.parity(f"GET {FINETUNES}", client=WRANGLER)
def test_wrangler_finetune_list(
    wrangler: Wrangler, created: tuple[str, subprocess.CompletedProcess[str]],
    cf: cloudflare.Cloudflare, account: str,
    new_finetune: Callable[..., FinetuneCreateResponse],
) -> None:  # fmt: skip
    name, _ = created
    described = new_finetune(description="made with the SDK")

    listed = json_list(wrangler("ai", "finetune", "list", "--json"))
    table = wrangler("ai", "finetune", "list")

    by_name = {f["name"]: f for f in listed}
    assert (by_name[name]["model"], by_name[name]["description"]) == (LORA_MODEL, "")
    assert by_name[described.name]["description"] == "made with the SDK"
    assert {f["id"] for f in listed} == {f.id for f in cf.ai.finetunes.list(account_id=account)}
    assert table.returncode == 0, said(table)
    assert "finetune_id" in table.stdout
    assert str(by_name[name]["id"]) in table.stdout and described.id in table.stdout


@pytest.mark.parity(f"POST {ASSETS}", client=WRANGLER)
def test_wrangler_reports_an_adapter_cloudflare_refuses(
    wrangler: Wrangler, cf: cloudflare.Cloudflare, account: str, tmp_path: Path
) -> None:
    write_adapter(tmp_path / "adapter", rank=64)
    name = unique("parity-wr")

    out = said(wrangler("ai", "finetune", "create", LORA_MODEL, name, str(tmp_path / "adapter")))

    assert "Couldn't upload file" in out
    assert "rank r=64 exceeds Cloudflare's limit of 32" in out
    assert "ready to use" not in out
    # The finetune exists without its assets, so a run with it is Cloudflare's 3039.
    with pytest.raises(cloudflare.BadRequestError) as refused:
        cf.ai.run(LORA_MODEL, account_id=account, prompt="hello", lora=name)
    assert refused.value.body["errors"][0]["code"] == 3039  # type: ignore[index]


@pytest.mark.parity(f"POST {FINETUNES}", client=WRANGLER)
def test_wrangler_reports_a_model_without_lora(wrangler: Wrangler, tmp_path: Path) -> None:
    write_adapter(tmp_path / "adapter")
    name = unique("parity-wr")

    out = said(
        wrangler(
            "ai", "finetune", "create", "@cf/meta/llama-3.1-8b-instruct", name,
            str(tmp_path / "adapter"),
        )
    )  # fmt: skip

    assert "Finetune couldn't be created" in out
    assert "does not support LoRa inference" in out
    listed = json_list(wrangler("ai", "finetune", "list", "--json"))
    assert name not in {f["name"] for f in listed}
