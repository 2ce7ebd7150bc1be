"""Workers AI finetunes (LoRA adapters) driven by Cloudflare's Python SDK:
``client.ai.finetunes.create`` and ``list``, ``.assets.create``, ``.public.list``
(https://developers.cloudflare.com/api/resources/ai/subresources/finetunes/); and, over
plain HTTP, the trailing-slash spellings of Cloudflare's LoRA guide that no client calls
(https://developers.cloudflare.com/workers-ai/features/fine-tunes/loras/).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import cloudflare
import httpx
import pytest
from cloudflare.types.ai import FinetuneCreateResponse
from conftest import LORA_MODEL, unique
from parity_routes import REPO_ROOT

from cfai.config import load_stack
from cfai.finetunes.demo import write_adapter

FINETUNES = "/accounts/{account_id}/ai/finetunes"
ASSETS = f"{FINETUNES}/{{finetune_id}}/finetune-assets"
SDK = "python-sdk"
CONFIG, WEIGHTS = "adapter_config.json", "adapter_model.safetensors"
NO_LORA_MODEL = "@cf/meta/llama-3.1-8b-instruct"

NewFinetune = Callable[..., FinetuneCreateResponse]


@pytest.fixture(scope="module")
def adapter(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid adapter folder (rank 8, llama): the two files Cloudflare takes."""
    folder = tmp_path_factory.mktemp("adapter")
    write_adapter(folder)
    return folder


def names(cf: cloudflare.Cloudflare, account: str) -> dict[str, object]:
    """The account's finetunes by name, as the SDK lists them."""
    return {f.name: f for f in cf.ai.finetunes.list(account_id=account)}  # type: ignore[attr-defined]


def run_with(cf: cloudflare.Cloudflare, account: str, lora: str) -> str:
    out = cf.ai.run(LORA_MODEL, account_id=account, prompt="hello", lora=lora)
    assert isinstance(out, dict)
    return str(out["response"])


def refusal(code: int, message: str) -> dict[str, object]:
    """Cloudflare's v4 error envelope."""
    return {
        "result": None,
        "success": False,
        "errors": [{"code": code, "message": message}],
        "messages": [],
    }


# -- create -----------------------------------------------------------------------------------


@pytest.mark.parity(f"POST {FINETUNES}", client=SDK)
def test_create_finetune(cf: cloudflare.Cloudflare, account: str) -> None:
    name = unique("parity")

    made = cf.ai.finetunes.create(
        account_id=account, model=LORA_MODEL, name=name, description="Acme tone"
    )

    assert uuid.UUID(made.id).version == 4
    assert (made.name, made.model, made.description, made.public) == (
        name, LORA_MODEL, "Acme tone", False,
    )  # fmt: skip
    assert made.created_at == made.modified_at
    assert names(cf, account)[name].id == made.id  # type: ignore[attr-defined]


@pytest.mark.parity(f"POST {FINETUNES}", client=SDK)
def test_create_a_finetune_named_twice_is_refused(
    cf: cloudflare.Cloudflare, account: str, new_finetune: NewFinetune
) -> None:
    first = new_finetune()

    with pytest.raises(cloudflare.ConflictError) as refused:
        cf.ai.finetunes.create(account_id=account, model=LORA_MODEL, name=first.name)

    error = refused.value.body["errors"][0]  # type: ignore[index]
    assert error["code"] == 10040 and first.name in error["message"]
    listed = [f for f in cf.ai.finetunes.list(account_id=account) if f.name == first.name]  # type: ignore[attr-defined]
    assert [f.id for f in listed] == [first.id]


@pytest.mark.parity(f"POST {FINETUNES}", client=SDK)
def test_create_a_finetune_for_a_model_without_lora_is_5005(
    cf: cloudflare.Cloudflare, account: str
) -> None:
    name = unique("parity")

    with pytest.raises(cloudflare.APIStatusError) as refused:
        cf.ai.finetunes.create(account_id=account, model=NO_LORA_MODEL, name=name)

    assert refused.value.status_code == 405
    assert refused.value.body == refusal(
        5005, f"The model {NO_LORA_MODEL} does not support LoRa inference"
    )
    assert name not in names(cf, account)


# -- list -------------------------------------------------------------------------------------


@pytest.mark.parity(f"GET {FINETUNES}", client=SDK)
def test_list_finetunes(cf: cloudflare.Cloudflare, account: str, new_finetune: NewFinetune) -> None:
    made = new_finetune(description="listed by the SDK")
    declared = load_stack("local", REPO_ROOT).finetune_name("tone", REPO_ROOT)

    listed = names(cf, account)

    mine, tone = listed[made.name], listed[declared]
    assert (mine.id, mine.model, mine.description) == (  # type: ignore[attr-defined]
        made.id, LORA_MODEL, "listed by the SDK",
    )  # fmt: skip
    assert mine.created_at == made.created_at  # type: ignore[attr-defined]
    # The finetune the local stack declares, uploaded by `cfai local up`.
    assert (tone.model, tone.description) == (  # type: ignore[attr-defined]
        LORA_MODEL, "Acme support tone (demo adapter)",
    )  # fmt: skip


# -- assets -----------------------------------------------------------------------------------


@pytest.mark.parity(f"POST {ASSETS}", client=SDK)
def test_upload_assets_makes_the_finetune_usable(
    cf: cloudflare.Cloudflare, account: str, new_finetune: NewFinetune, adapter: Path
) -> None:
    made = new_finetune()
    with pytest.raises(cloudflare.BadRequestError) as before:
        run_with(cf, account, made.name)

    # By id, then by name: Cloudflare takes either.
    config = cf.ai.finetunes.assets.create(
        made.id, account_id=account, file=(adapter / CONFIG).read_bytes(), file_name=CONFIG
    )
    weights = cf.ai.finetunes.assets.create(
        made.name, account_id=account, file=(adapter / WEIGHTS).read_bytes(), file_name=WEIGHTS
    )

    assert before.value.body["errors"][0]["code"] == 3039  # type: ignore[index]
    assert config.success is True and weights.success is True
    assert run_with(cf, account, made.name).startswith(f"[cfai stand-in] [LoRA {made.name}] ")


@pytest.mark.parity(f"POST {ASSETS}", client=SDK)
def test_upload_an_adapter_of_rank_64_is_refused_and_nothing_is_kept(
    cf: cloudflare.Cloudflare, account: str, new_finetune: NewFinetune, adapter: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    made = new_finetune()
    write_adapter(tmp_path / "wide", rank=64)

    with pytest.raises(cloudflare.BadRequestError) as refused:
        cf.ai.finetunes.assets.create(
            made.id, account_id=account, file=(tmp_path / "wide" / CONFIG).read_bytes(),
            file_name=CONFIG,
        )  # fmt: skip

    assert refused.value.body == refusal(
        10043, f"{CONFIG}: rank r=64 exceeds Cloudflare's limit of 32; retrain with r <= 32"
    )
    # The refused file took no slot: the right adapter still uploads and applies.
    for file_name in (CONFIG, WEIGHTS):
        cf.ai.finetunes.assets.create(
            made.id, account_id=account, file=(adapter / file_name).read_bytes(),
            file_name=file_name,
        )  # fmt: skip
    assert f"[LoRA {made.name}]" in run_with(cf, account, made.name)


@pytest.mark.parity(f"POST {ASSETS}", client=SDK)
def test_upload_an_asset_twice_is_refused(
    cf: cloudflare.Cloudflare, account: str, new_finetune: NewFinetune, adapter: Path
) -> None:
    made = new_finetune()
    data = (adapter / CONFIG).read_bytes()
    cf.ai.finetunes.assets.create(made.id, account_id=account, file=data, file_name=CONFIG)

    with pytest.raises(cloudflare.ConflictError) as refused:
        cf.ai.finetunes.assets.create(made.id, account_id=account, file=data, file_name=CONFIG)

    message = refused.value.body["errors"][0]["message"]  # type: ignore[index]
    assert CONFIG in message and "cannot be edited" in message


@pytest.mark.parity(f"POST {ASSETS}", client=SDK)
def test_upload_to_an_unknown_finetune_is_3037(
    cf: cloudflare.Cloudflare, account: str, adapter: Path
) -> None:
    nobody = unique("parity-none")

    with pytest.raises(cloudflare.NotFoundError) as refused:
        cf.ai.finetunes.assets.create(
            nobody, account_id=account, file=(adapter / CONFIG).read_bytes(), file_name=CONFIG
        )

    assert refused.value.body == refusal(3037, f"Finetune {nobody} not found")


# -- public -----------------------------------------------------------------------------------


@pytest.mark.parity(f"GET {FINETUNES}/public", client=SDK)
def test_list_public_finetunes(
    cf: cloudflare.Cloudflare, account: str, new_finetune: NewFinetune
) -> None:
    shared = new_finetune(description="for everyone", public=True)
    private = new_finetune()

    every = list(cf.ai.finetunes.public.list(account_id=account, order_by="name"))
    pages = [
        list(cf.ai.finetunes.public.list(account_id=account, order_by="name", limit=1, offset=i))
        for i in range(len(every) + 1)
    ]

    by_name = {f.name: f for f in every}
    assert private.name not in by_name and all(f.public for f in every)
    assert by_name[shared.name].model_dump() == shared.model_dump()
    assert [f.name for f in every] == sorted(by_name)
    assert [p[0].id for p in pages[:-1]] == [f.id for f in every] and pages[-1] == []


@pytest.mark.parity(f"GET {FINETUNES}/public", client=SDK)
def test_list_public_finetunes_by_an_unknown_column_is_refused(
    cf: cloudflare.Cloudflare, account: str
) -> None:
    with pytest.raises(cloudflare.BadRequestError) as refused:
        cf.ai.finetunes.public.list(account_id=account, order_by="colour")

    error = refused.value.body["errors"][0]  # type: ignore[index]
    assert error["code"] == 3003 and "orderBy" in error["message"]


# -- the trailing-slash spellings (no client calls them) --------------------------------------


@pytest.mark.platform
def test_trailing_slash_spellings_answer_as_the_sdk_spellings(
    api: dict[str, str], cf: cloudflare.Cloudflare, account: str, adapter: Path
) -> None:
    name = unique("parity-slash")
    with httpx.Client(
        base_url=f"{api['base_url']}/accounts/{account}/ai/finetunes",
        headers={"authorization": f"Bearer {api['token']}"}, timeout=30,
    ) as http:  # fmt: skip
        made = http.post("/", json={"model": LORA_MODEL, "name": name, "public": True})
        uploads = [
            http.post(
                f"/{name}/finetune-assets/",
                data={"file_name": file_name},
                files={"file": (file_name, (adapter / file_name).read_bytes())},
            )
            for file_name in (CONFIG, WEIGHTS)
        ]
        listed, listed_bare = http.get("/"), http.get("")
        public, public_bare = http.get("/public/"), http.get("/public")

    assert made.status_code == 200 and made.json()["result"]["name"] == name, made.text
    assert [(u.status_code, u.json()["success"]) for u in uploads] == [(200, True)] * 2
    assert listed.json() == listed_bare.json() and listed.json()["success"] is True
    assert name in {f["name"] for f in listed.json()["result"]}
    assert public.json() == public_bare.json()
    assert name in {f["name"] for f in public.json()["result"]}
    # What the slashed spellings made is what the SDK sees and a run applies.
    assert names(cf, account)[name].id == made.json()["result"]["id"]  # type: ignore[attr-defined]
    assert f"[LoRA {name}]" in run_with(cf, account, name)
