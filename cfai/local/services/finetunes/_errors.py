"""How the emulated finetunes API refuses, in the v4 envelope.

Cloudflare documents the Workers AI codes used here
(https://developers.cloudflare.com/workers-ai/platform/errors/): 3003 (incomplete request,
"Request is missing headers or body: {what}"), 3006 (request too large), 5005 (the model
"does not support LoRa inference"). A finetune that does not exist is 3037 with the text
Cloudflare answers for it ("Finetune <id> not found", seen in
cloudflare/cloudflare-docs#14757; its HTTP status is not shown there, 404 is the
emulator's). The API's other refusals have no published code or text; the 1004x codes
below are the emulator's own, like the front door's 10001 and 10013.
"""

from __future__ import annotations

from cfai.finetunes import FILE_NAMES, MAX_FINETUNES_PER_ACCOUNT
from cfai.local.services.frontdoor import ApiError

INCOMPLETE = 3003
TOO_LARGE = 3006
NOT_FOUND = 3037
NO_LORA = 5005
EXISTS = 10040
LIMIT = 10041
ASSET_EXISTS = 10042
BAD_ASSET = 10043


def incomplete(what: str) -> ApiError:
    return ApiError(400, INCOMPLETE, f"Request is missing headers or body: {what}")


def too_large(limit: int) -> ApiError:
    return ApiError(413, TOO_LARGE, f"Request is too large: body over {limit} bytes")


def not_found(finetune: str) -> ApiError:
    return ApiError(404, NOT_FOUND, f"Finetune {finetune} not found")


def no_lora(model: str) -> ApiError:
    return ApiError(405, NO_LORA, f"The model {model} does not support LoRa inference")


def exists(name: str) -> ApiError:
    return ApiError(409, EXISTS, f"Finetune creation failed: a finetune named {name!r} exists")


def over_limit() -> ApiError:
    return ApiError(
        400,
        LIMIT,
        f"Finetune creation failed: the account has {MAX_FINETUNES_PER_ACCOUNT} finetunes, "
        "the most Workers AI allows",
    )


def asset_exists(finetune: str, file_name: str) -> ApiError:
    return ApiError(
        409,
        ASSET_EXISTS,
        f"Finetune {finetune} already has {file_name}; assets cannot be edited after upload "
        "(create a new finetune)",
    )


def bad_asset(file_name: str, why: str) -> ApiError:
    """An upload Cloudflare's documented rules refuse (`cfai.finetunes.upload_problems`)."""
    return ApiError(400, BAD_ASSET, f"{file_name}: {why}" if file_name in FILE_NAMES else why)
