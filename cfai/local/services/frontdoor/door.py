"""The front door: one ASGI app serving every emulated route through the same chain.

For every request, in this order (as LocalStack's handler chain and miniflare's entry
worker do for theirs):

1. routing: the `Endpoint` for (host, method, path); an unknown path is 404 and a known
   path with another method 405, both in the v4 envelope;
2. authentication (`ApiToken`, `BindingToken`, `Open`), including the account check;
3. the body, read within the route's limit (413) and parsed as declared;
4. the handler;
5. its value in the route's `Shape`; an `ApiError` in the route's error shape; any other
   exception logged with its traceback and answered as a 500 in the route's error shape,
   so the connection stays usable and no Python text reaches the client.

Example::

    door = FrontDoor(account_id="0" * 32, api_token="t", binding_key=BindingKey.generate())
    app = door.app([Endpoint("GET", "/__cfai/health", health, auth=Open())])
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Host, Route, Router
from starlette.types import Receive, Scope, Send

from cfai.local.services.frontdoor import errors as E
from cfai.local.services.frontdoor.body import read_body
from cfai.local.services.frontdoor.errors import ApiError, Shape, answer
from cfai.local.services.frontdoor.routes import ApiToken, BindingToken, Call, Endpoint, Open
from cfai.local.services.frontdoor.tokens import BINDING_HEADER, BindingKey, BindingScope

__all__ = ["FrontDoor"]

log = logging.getLogger("cfai.local.emulator")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")


class FrontDoor:
    """Serves `Endpoint`s with authentication, body limits, parsing and error shaping done
    once. `binding_key` None refuses every binding route (nothing can hold a token)."""

    def __init__(self, *, account_id: str, api_token: str, binding_key: BindingKey | None) -> None:
        self.account_id = account_id
        self._api_token = api_token.encode()
        self._binding_key = binding_key

    # -- the app --------------------------------------------------------------------------

    def app(self, endpoints: Sequence[Endpoint], **starlette: Any) -> Starlette:
        """A Starlette app serving `endpoints` (binding hosts first, then the emulator's own
        address); `starlette` goes to its constructor (a lifespan, say)."""
        by_host: dict[str | None, dict[str, list[Endpoint]]] = {}
        for ep in endpoints:
            by_host.setdefault(ep.host, {}).setdefault(ep.path, []).append(ep)
        routes: list[BaseRoute] = [
            Host(host, app=Router(self._routes(paths), default=_not_found))
            for host, paths in by_host.items()
            if host is not None
        ]
        routes += self._routes(by_host.get(None, {}))
        app = Starlette(routes=routes, **starlette)
        app.router.default = _not_found
        return app

    def _routes(self, paths: dict[str, list[Endpoint]]) -> list[BaseRoute]:
        # One Starlette route per path whatever its methods (an ASGI app, not a function, so
        # Starlette leaves every method to it): a wrong method gets a shaped 405 here rather
        # than Starlette's text/plain one.
        return [Route(path, _Dispatch(self, eps)) for path, eps in paths.items()]

    # -- the chain ------------------------------------------------------------------------

    async def serve(self, ep: Endpoint, request: Request) -> Response:
        """Steps 2-5 of the chain for one request to `ep`."""
        try:
            caller = self._authenticate(ep, request)
            body = await read_body(request, ep.body)
            value = await ep.handler(Call(request, body, caller))
        except ApiError as refusal:
            return refusal.response(ep.shape)
        except Exception:
            log.exception("%s %s failed in the emulator", request.method, ep.path)
            return E.internal().response(ep.shape)
        if isinstance(value, Response):
            return value
        try:
            return answer(ep.shape, value, ep.status)
        except (TypeError, ValueError):
            log.exception("%s %s: the answer is not JSON", request.method, ep.path)
            return E.internal().response(ep.shape)

    def _authenticate(self, ep: Endpoint, request: Request) -> BindingScope | None:
        auth = ep.auth
        if isinstance(auth, Open):
            return None
        if isinstance(auth, BindingToken):
            return self._binding_scope(auth, request)
        if auth.account and auth.account_first:
            self._check_account(auth, request)
        self._check_token(request)
        if auth.account and not auth.account_first:
            self._check_account(auth, request)
        return None

    def _check_token(self, request: Request) -> None:
        values = request.headers.getlist("authorization")
        header = values[0] if len(values) == 1 else ""
        if not header and ("x-auth-key" in request.headers or "x-auth-email" in request.headers):
            return self._check_key(request)
        if not header.lower().startswith("bearer "):
            raise E.not_authenticated()
        if not hmac.compare_digest(header[7:].strip().encode(), self._api_token):
            raise E.invalid_token()

    def _check_key(self, request: Request) -> None:
        """The older scheme the API reference lists beside tokens for every route here
        (e.g. https://developers.cloudflare.com/api/resources/vectorize/subresources/indexes/methods/insert/):
        ``X-Auth-Email`` + ``X-Auth-Key``, a Global API key. The local platform has no
        users, so the key is its API token and any well-formed email is accepted."""
        keys = request.headers.getlist("x-auth-key")
        emails = request.headers.getlist("x-auth-email")
        if len(keys) != 1 or len(emails) != 1:
            raise E.not_authenticated()
        if not _EMAIL.fullmatch(emails[0].strip()):
            raise E.bad_auth_email()
        if not hmac.compare_digest(keys[0].strip().encode(), self._api_token):
            raise E.unknown_auth_key()

    def _check_account(self, auth: ApiToken, request: Request) -> None:
        if request.path_params.get("account_id") == self.account_id:
            return
        if auth.wrong_account is not None:
            raise auth.wrong_account(request.path_params)
        raise E.wrong_account()

    def _binding_scope(self, auth: BindingToken, request: Request) -> BindingScope:
        # Exactly one header: workerd replaces a Worker-set one, but should it ever append,
        # a Worker's own value must not be able to stand in for the injected one.
        values = request.headers.getlist(BINDING_HEADER)
        scope = None
        if len(values) == 1 and self._binding_key is not None:
            scope = self._binding_key.verify(values[0])
        if scope is None:
            raise E.not_authenticated()
        if scope.type != auth.type:
            raise E.wrong_binding(scope.type, auth.type)
        return scope


class _Dispatch:
    """The ASGI app of one path: picks the endpoint by method and serves it."""

    def __init__(self, door: FrontDoor, endpoints: list[Endpoint]) -> None:
        self.door = door
        self.shape = endpoints[0].shape
        self.by_method = {ep.method: ep for ep in endpoints}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)
        method = "GET" if request.method == "HEAD" else request.method  # as Starlette does
        ep = self.by_method.get(method)
        if ep is None:
            refusal = E.method_not_allowed(request.method, sorted(self.by_method))
            response = refusal.response(self.shape)
        else:
            response = await self.door.serve(ep, request)
        await response(scope, receive, send)


async def _not_found(scope: Scope, receive: Receive, send: Send) -> None:
    request = Request(scope)
    await E.no_route(request.method, request.url.path).response(Shape.ENVELOPE)(
        scope, receive, send
    )
