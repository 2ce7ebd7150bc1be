"""Workers AI finetunes REST driven by Cloudflare's Python SDK on the shared local platform:
create, upload both assets by name, list the public finetunes."""

from __future__ import annotations

import uuid
from pathlib import Path

import cloudflare
import pytest

from cfai.finetunes.demo import write_adapter

AI = "/accounts/{account_id}/ai"
LLAMA = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"


def _name(stem: str) -> str:
    return f"{stem}-{uuid.uuid4().hex[:8]}"  # the platform is shared by the session's tests


@pytest.mark.parity(f"POST {AI}/finetunes", client="python-sdk")
def test_sdk_creates_a_finetune(cf: cloudflare.Cloudflare, account: str) -> None:
    name = _name("sdk")
    made = cf.ai.finetunes.create(account_id=account, model=LLAMA, name=name, description="d")

    assert (made.name, made.model, made.description, made.public) == (name, LLAMA, "d", False)
    assert made.id and made.created_at
    with pytest.raises(cloudflare.ConflictError) as taken:  # a name is taken once per account
        cf.ai.finetunes.create(account_id=account, model=LLAMA, name=name)
    assert taken.value.body["errors"][0]["code"] == 10040  # type: ignore[index]


@pytest.mark.parity(f"POST {AI}/finetunes/{{finetune_id}}/finetune-assets", client="python-sdk")
def test_sdk_uploads_both_assets_and_a_run_applies_them(
    cf: cloudflare.Cloudflare, account: str, tmp_path: Path
) -> None:
    name = _name("sdk-assets")
    cf.ai.finetunes.create(account_id=account, model=LLAMA, name=name)
    for path in write_adapter(tmp_path / "adapter"):
        done = cf.ai.finetunes.assets.create(
            name, account_id=account, file=(path.name, path.read_bytes()), file_name=path.name
        )
        assert done.success is True

    out = cf.ai.run(LLAMA, account_id=account, prompt="hello", lora=name)
    assert isinstance(out, dict)
    assert str(out["response"]).startswith(f"[cfai stand-in] [LoRA {name}] ")


@pytest.mark.parity(f"GET {AI}/finetunes/public", client="python-sdk")
def test_sdk_lists_the_public_finetunes(cf: cloudflare.Cloudflare, account: str) -> None:
    public, private = _name("pub"), _name("priv")
    cf.ai.finetunes.create(account_id=account, model=LLAMA, name=public, public=True)
    cf.ai.finetunes.create(account_id=account, model=LLAMA, name=private)

    names = [ft.name for ft in cf.ai.finetunes.public.list(account_id=account, order_by="name")]
    assert public in names and private not in names
    assert names == sorted(names)
