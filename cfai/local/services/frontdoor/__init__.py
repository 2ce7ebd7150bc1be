"""The front door of the emulated Cloudflare services.

Every route of every service is an `Endpoint` declaration; `FrontDoor.app` serves them all
through one chain: routing, authentication (API token and account, or a binding token),
the body read within the route's limit and parsed as declared, the handler, and the answer
or error in the route's shape. A route cannot skip a step: there is no other way to serve
one.

Who may call what:

==============================  ==========================================================
route                           caller
==============================  ==========================================================
``/client/v4/accounts/{a}/...``  ``Authorization: Bearer <API token>`` and ``a`` = account
``/v1/{a}/{gateway}/...``       the same (the gateway URL form)
``/__cfai/*`` (admin)           ``Authorization: Bearer <API token>``; health is open
                                (``/__cfai/openapi.json``: this table and every route)
binding hosts                   a binding token of the route's binding type (`tokens`)
==============================  ==========================================================

Wherever the API token is accepted, so is the older ``X-Auth-Email`` + ``X-Auth-Key`` pair
the API reference lists beside it: the key is the API token, the email any well-formed
address (the local platform has no users to match it against).

Example::

    door = FrontDoor(account_id=account, api_token=token, binding_key=BindingKey.generate())
    app = door.app(endpoints)
"""

from cfai.local.services.frontdoor.body import loads
from cfai.local.services.frontdoor.door import FrontDoor
from cfai.local.services.frontdoor.errors import (
    JSON,
    ApiError,
    Shape,
    envelope,
    json_response,
)
from cfai.local.services.frontdoor.multipart import Part, parse_multipart
from cfai.local.services.frontdoor.openapi import ERROR_SCHEMAS, openapi_document
from cfai.local.services.frontdoor.routes import (
    DEFAULT_LIMIT,
    ApiToken,
    BindingToken,
    Call,
    Endpoint,
    Handler,
    JsonBody,
    MultipartBody,
    NdjsonBody,
    NoBody,
    Open,
    RawMedia,
    Unparsable,
)
from cfai.local.services.frontdoor.tokens import (
    BINDING_HEADER,
    KEY_FILE,
    BindingKey,
    BindingScope,
)

__all__ = [
    "BINDING_HEADER",
    "DEFAULT_LIMIT",
    "ERROR_SCHEMAS",
    "JSON",
    "KEY_FILE",
    "ApiError",
    "ApiToken",
    "BindingKey",
    "BindingScope",
    "BindingToken",
    "Call",
    "Endpoint",
    "FrontDoor",
    "Handler",
    "JsonBody",
    "MultipartBody",
    "NdjsonBody",
    "NoBody",
    "Open",
    "Part",
    "RawMedia",
    "Shape",
    "Unparsable",
    "envelope",
    "json_response",
    "loads",
    "openapi_document",
    "parse_multipart",
]
