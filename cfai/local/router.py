"""The local platform's front door: one public port per Worker, traffic split across its
deployed versions, Cloudflare's version override header honoured.

Each version of a Worker runs in workerd on a private port; this process owns the public
ports written to ``outputs.json`` and never restarts during a deploy. It reads the routing
table, ``routes.json`` in the state directory (`cfai.local.state.Routes`), whenever the file
changes (checked per request, and every 20 ms to open the ports of scripts added to it and
close those of scripts removed), so a deployment moves traffic by rewriting that file
atomically. Responses stream through unbuffered (SSE works) and carry
``x-cfai-version-id``, the version that answered.

Routing, per request to a Worker:

- ``Cloudflare-Workers-Version-Overrides: <script>="<version id>"`` naming a version of
  this Worker's deployment sends the request there (an unknown version is ignored, as on
  Cloudflare);
- otherwise the split: request n goes to slot ``(n * 37) % 100`` of the percentages laid
  end to end, so a 10% version gets exactly 10 of every 100 requests, spread out.

Example (what the supervisor runs)::

    python -m cfai.local.router --routes .cfai/local/routes.json
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import uvicorn
from starlette.types import Message, Receive, Scope, Send

from cfai.local._forward import BodyTooLarge, ClientGone, Pool, forward
from cfai.local._http import fast_json_errors
from cfai.local.state import VersionRoute, WorkerRoute, read_routes

__all__ = ["METHODS", "VERSION_HEADER", "Router", "overrides", "pick"]

log = logging.getLogger("cfai.local.router")

VERSION_HEADER = "x-cfai-version-id"
_OVERRIDE = re.compile(r'\s*([^=,\s]+)\s*=\s*"([^"]*)"\s*')
# Hop-by-hop headers (RFC 9110 section 7.6.1) and the ones this hop rewrites: the body's
# framing is set again for the upstream, and an `expect: 100-continue` was answered here.
_HOP = {
    b"connection",
    b"keep-alive",
    b"transfer-encoding",
    b"te",
    b"trailer",
    b"upgrade",
    b"host",
    b"content-length",
    b"expect",
    b"proxy-connection",
}
#: The methods workerd's HTTP server parses (kj ``KJ_HTTP_FOR_EACH_METHOD`` in
#: capnproto ``c++/src/kj/compat/http.h``); it answers any other with a text/plain 501.
# fmt: off
METHODS = frozenset({
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "PURGE", "OPTIONS", "TRACE",
    "COPY", "LOCK", "MKCOL", "MOVE", "PROPFIND", "PROPPATCH", "SEARCH", "UNLOCK", "ACL",
    "REPORT", "MKACTIVITY", "CHECKOUT", "MERGE", "MSEARCH", "NOTIFY", "SUBSCRIBE", "UNSUBSCRIBE",
})
# fmt: on
# What a request the HTTP parser refuses gets (the Workers' error shape).
_BAD_REQUEST = json.dumps(
    {"error": {"code": "bad_request", "message": "malformed HTTP request"}}
).encode()


def overrides(header: str) -> dict[str, str]:
    """``a="1", b="2"`` -> {"a": "1", "b": "2"} (malformed members ignored)."""
    found = {}
    for member in header.split(","):
        m = _OVERRIDE.fullmatch(member)
        if m:
            found[m.group(1)] = m.group(2)
    return found


def pick(worker: WorkerRoute, n: int, override: str | None) -> str | None:
    """The version id request `n` to `worker` goes to (None: nothing deployed)."""
    if override:
        wanted = overrides(override).get(worker.script_name)
        if wanted in worker.versions:
            return wanted
    slot, edge = (n * 37) % 100, 0
    for vid, pct in sorted(worker.split.items()):
        edge += int(pct)
        if slot < edge:
            return str(vid)
    return None


class Router:
    """The ASGI app: the listening port says which Worker a request is for.

    The request goes upstream exactly as it came: the raw path and query, percent-encoding
    untouched (``/documents/%2541`` is not ``/documents/%41``), and the body relayed as it
    streams in, cut off at the version's ``max_request_bytes`` with the Worker's own 413.
    Every error this hop makes is JSON in the Workers' shape ``{"error": {"code",
    "message"}}`` and names no internals."""

    def __init__(self, routes_path: Path) -> None:
        self.path = routes_path
        self.stamp: int | None = None
        self.by_port: dict[int, WorkerRoute] = {}
        self.counter = itertools.count()
        # Kept-alive connections to the versions' workerd: a new TCP connection a request
        # was a sixth of the router's time a request.
        self.pool = Pool()

    def _reload(self) -> None:
        try:
            stamp = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return
        if stamp != self.stamp:
            workers = read_routes(self.path).workers
            self.by_port = {w.port: w for w in workers.values()}
            self.stamp = stamp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        self._reload()
        worker = self.by_port.get(int(scope["server"][1]))
        if worker is None:
            return await _error(send, 404, "not_found", "no Worker on this port")
        if scope["method"] not in METHODS:
            return await _error(
                send, 501, "not_implemented", f"method {scope['method'][:32]} is not supported"
            )
        headers: list[tuple[bytes, bytes]] = list(scope["headers"])
        vid = pick(
            worker, next(self.counter), _header(headers, b"cloudflare-workers-version-overrides")
        )
        if vid is None:
            return await _error(send, 503, "no_version", "the Worker has no deployed version")
        await self._forward(scope, receive, send, headers, worker.versions[vid], vid)

    async def _forward(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        headers: list[tuple[bytes, bytes]],
        version: VersionRoute,
        vid: str,
    ) -> None:
        extra = [(VERSION_HEADER.encode(), vid.encode())]
        limit = version.max_request_bytes
        declared = _header(headers, b"content-length")
        if declared is not None and int(declared) > limit:
            # Refused before a byte of the body is read, as the Worker itself would.
            return await _too_large(send, limit, extra)
        framing = [(b"content-length", (declared or "0").encode())]
        if declared is None and _header(headers, b"transfer-encoding") is not None:
            framing = [(b"transfer-encoding", b"chunked")]
        upstream = [(k, v) for k, v in headers if k.lower() not in _HOP] + framing
        target = scope.get("raw_path") or scope["path"].encode()
        if scope.get("query_string"):
            target += b"?" + scope["query_string"]
        host, _, port = version.upstream.rpartition(":")
        try:
            answer = await forward(
                host,
                int(port),
                scope["method"],
                target,
                upstream,
                _body(receive),
                limit=limit,
                client_gone=lambda: _disconnect(receive),
                pool=self.pool,
            )
        except BodyTooLarge:
            return await _too_large(send, limit, extra)
        except ClientGone:
            return None
        except OSError as err:
            log.warning("version %s at %s did not answer: %r", vid, version.upstream, err)
            return await _error(
                send, 502, "upstream_unreachable", "the Worker did not answer", extra
            )
        out = [(k, v) for k, v in answer.headers if k.lower() not in _HOP - {b"content-length"}]
        # Raw headers: repeated ones (set-cookie) kept, no content-type default added.
        await send({"type": "http.response.start", "status": answer.status, "headers": out + extra})
        try:
            async for chunk in answer.body:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except OSError as err:
            # Cut off: the client left (the exchange was cut) or the upstream broke off, and
            # then the client sees the response end short, as from workerd itself.
            log.info("version %s stopped mid-response: %r", vid, err)
            return None
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


async def _body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


async def _disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _too_large(send: Send, limit: int, extra: list[tuple[bytes, bytes]]) -> None:
    # The Workers' own answer (templates/workers/_partials/http.js.j2 `tooLarge`).
    await _error(send, 413, "payload_too_large", f"request body exceeds {limit} bytes", extra)


async def _error(
    send: Send,
    status: int,
    code: str,
    message: str,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _listen(port: int) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit it: a response's head and body go out at once
    # (else Nagle + the client's delayed ACK stall every keep-alive request ~40 ms).
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.bind(("127.0.0.1", port))
    return s


class _Server(uvicorn.Server):
    """uvicorn serving the router on the table's ports, opening a port when a script is
    added to the table and closing it when one leaves (the emulator's runtime adds scripts
    uploaded while the platform runs)."""

    def __init__(self, config: uvicorn.Config, router: Router) -> None:
        super().__init__(config)
        self.router = router
        self.by_port: dict[int, asyncio.Server] = {}
        # Ports that could not be opened yet (logged once): retried on every pass, since
        # what holds one may be a passing outgoing connection's ephemeral port.
        self.refused: set[int] = set()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=[])
        self.follower = asyncio.create_task(self._follow())

    async def _follow(self) -> None:
        while not self.should_exit:
            self.router._reload()
            self.router.pool.sweep()
            await self._open(set(self.router.by_port))
            await asyncio.sleep(0.02)

    async def _open(self, wanted: set[int]) -> None:
        loop = asyncio.get_running_loop()
        for port in sorted(wanted - set(self.by_port)):
            try:
                sock = _listen(port)
            except OSError as err:
                if port not in self.refused:
                    log.warning("cannot listen on 127.0.0.1:%d yet (retrying): %s", port, err)
                    self.refused.add(port)
                continue
            self.refused.discard(port)
            server = await loop.create_server(self._protocol, sock=sock, backlog=2048)
            self.by_port[port] = server
            self.servers.append(server)
        self.refused &= wanted
        for port in sorted(set(self.by_port) - wanted):
            gone = self.by_port.pop(port)
            gone.close()
            self.servers.remove(gone)

    def _protocol(self) -> asyncio.Protocol:
        # What uvicorn's own startup builds for each connection (uvicorn/server.py).
        return self.config.http_protocol_class(  # type: ignore[call-arg]
            config=self.config, server_state=self.server_state, app_state=self.lifespan.state
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="cfai local router")
    parser.add_argument("--routes", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    router = Router(args.routes)
    config = uvicorn.Config(
        router,
        log_level="warning",
        lifespan="off",
        access_log=False,
        http=fast_json_errors(_BAD_REQUEST),
    )
    asyncio.run(_Server(config, router).serve())


if __name__ == "__main__":
    main()
