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
binding hosts                   a binding token of the route's binding type (`tokens`)
==============================  ==========================================================

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
from cfai.local.services.frontdoor.routes import (
    DEFAULT_LIMIT,
    ApiToken,
    BindingToken,
    Call,
    Endpoint,
    Handler,
    JsonBody,
    NdjsonBody,
    NoBody,
    Open,
    RawBody,
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
    "NdjsonBody",
    "NoBody",
    "Open",
    "RawBody",
    "Shape",
    "Unparsable",
    "envelope",
    "json_response",
    "loads",
]
