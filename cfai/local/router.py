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
import re
import socket
from pathlib import Path

import h11
import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from cfai.local._forward import forward
from cfai.local.state import WorkerRoute, read_routes

__all__ = ["VERSION_HEADER", "Router", "overrides", "pick"]

VERSION_HEADER = "x-cfai-version-id"
_OVERRIDE = re.compile(r'\s*([^=,\s]+)\s*=\s*"([^"]*)"\s*')
_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host"}


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
    """The ASGI app: the listening port says which Worker a request is for."""

    def __init__(self, routes_path: Path) -> None:
        self.path = routes_path
        self.stamp: int | None = None
        self.by_port: dict[int, WorkerRoute] = {}
        self.counter = itertools.count()

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
        request = Request(scope, receive)
        worker = self.by_port.get(int(scope["server"][1]))
        if worker is None:
            return await _error(404, "no_worker", "no Worker on this port")(scope, receive, send)
        vid = pick(
            worker, next(self.counter), request.headers.get("cloudflare-workers-version-overrides")
        )
        if vid is None:
            return await _error(503, "no_version", "the Worker has no deployed version")(
                scope, receive, send
            )
        response = await self._forward(request, worker.versions[vid].upstream, vid)
        await response(scope, receive, send)

    async def _forward(self, request: Request, upstream: str, vid: str) -> Response:
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in _HOP]
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        host, _, port = upstream.rpartition(":")
        body = await request.body()
        try:
            answer = await forward(host, int(port), request.method, target, headers, body)
        except (OSError, h11.ProtocolError) as err:
            response: Response = _error(502, "upstream_unreachable", type(err).__name__)
            response.headers[VERSION_HEADER] = vid
            return response
        out = [(k, v) for k, v in answer.headers if k.lower() not in _HOP]
        out.append((VERSION_HEADER, vid))
        response = StreamingResponse(answer.body, status_code=answer.status)
        # Raw headers: repeated ones (set-cookie) kept, no content-type default added.
        response.raw_headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in out]
        return response


def _error(status: int, code: str, message: str) -> Response:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


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
        # None: a port that could not be opened (logged once, not retried).
        self.by_port: dict[int, asyncio.Server | None] = {}

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=[])
        self.follower = asyncio.create_task(self._follow())

    async def _follow(self) -> None:
        while not self.should_exit:
            self.router._reload()
            await self._open(set(self.router.by_port))
            await asyncio.sleep(0.02)

    async def _open(self, wanted: set[int]) -> None:
        loop = asyncio.get_running_loop()
        for port in sorted(wanted - set(self.by_port)):
            try:
                sock = _listen(port)
            except OSError as err:
                print(f"router: cannot listen on 127.0.0.1:{port}: {err}", flush=True)
                self.by_port[port] = None
                continue
            server = await loop.create_server(self._protocol, sock=sock, backlog=2048)
            self.by_port[port] = server
            self.servers.append(server)
        for port in sorted(set(self.by_port) - wanted):
            gone = self.by_port.pop(port)
            if gone is not None:
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
    router = Router(args.routes)
    config = uvicorn.Config(router, log_level="warning", lifespan="off", access_log=False)
    asyncio.run(_Server(config, router).serve())


if __name__ == "__main__":
    main()
