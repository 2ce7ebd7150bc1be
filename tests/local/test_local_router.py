"""The router between the public ports and workerd: paths forwarded exactly, bodies streamed
within the Worker's limit, and its own errors JSON without internals.

Reproductions from issue 11: "the router decodes percent-encoding before forwarding" (ingest
``A`` and ``%41``, ``DELETE /documents/%2541`` deleted ``A``; ``my%20doc``, ``caf%C3%A9``,
``/chat%20x`` and ``50%`` never reached workerd), "router buffers any body before auth"
(a 300 MB chunked POST without a token grew the router by a gigabyte) and "router error
bodies" (``upstream_unreachable: OSError``, text/plain 400/501).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.stack import local_stack

from cfai.config import load_file
from cfai.local import LocalPlatform
from cfai.local.ports import free_port
from cfai.local.processes import spawn, stop
from cfai.local.router import METHODS
from cfai.local.state import Routes, StateFiles, VersionRoute, WorkerRoute

pytestmark = pytest.mark.platform

REPO = Path(__file__).resolve().parents[2]
MiB = 1024 * 1024

# Reads the whole body as it streams and says how much came: no limit of its own.
COUNTER_JS = """\
export default {
  async fetch(request) {
    if (new URL(request.url).pathname === "/health") return Response.json({ ok: true });
    let size = 0;
    if (request.body) for await (const chunk of request.body) size += chunk.byteLength;
    const url = new URL(request.url);
    return Response.json({ size, path: url.pathname, search: url.search });
  },
};
"""

# Streams a chunk every 50 ms for as long as someone reads.
TICKER_JS = """\
export default {
  async fetch(request) {
    if (new URL(request.url).pathname === "/health") return Response.json({ ok: true });
    let timer;
    const body = new ReadableStream({
      start(controller) {
        timer = setInterval(() => controller.enqueue(new TextEncoder().encode("tick\\n")), 50);
      },
      cancel() { clearInterval(timer); },
    });
    return new Response(body, { headers: { "content-type": "text/plain" } });
  },
};
"""


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """assistant (chat), kb (rag), a custom `counter` declaring a 64 KiB body limit and a
    custom `ticker` streaming without end."""
    src = tmp_path_factory.mktemp("router")
    (src / "counter.js").write_text(COUNTER_JS)
    (src / "ticker.js").write_text(TICKER_JS)
    data = local_stack(src)
    del data["gateways"]["main"]["rate_limit"]
    del data["workers"]["studio"]
    data["workers"]["counter"] = {
        "kind": "custom",
        "main": "counter.js",
        "max_request_bytes": 65536,
    }
    data["workers"]["ticker"] = {"kind": "custom", "main": "ticker.js"}
    (src / "platform.yaml").write_text(yaml.safe_dump(data))
    local = LocalPlatform(REPO, f"pytest-router-{os.getpid()}", source_dir=src)
    try:
        out = local.up(load_file(src / "platform.yaml"), timeout=60).to_json()
        out["router_pid"] = local.status().processes["router"].pid
        out["upstreams"] = {
            key: [v.port for v in w.versions.values()] for key, w in local.routes().workers.items()
        }
        yield out
    finally:
        local.down()
        shutil.rmtree(local.state_dir, ignore_errors=True)


def auth(outputs: dict[str, Any]) -> dict[str, str]:
    return {"authorization": f"Bearer {outputs['auth_token']}"}


def raw_exchange(port: int, data: bytes, timeout: float = 20) -> bytes:
    """Send `data` as is; everything the server answers until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


def split(answer: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


def assert_worker_error(status: int, headers: dict[str, str], body: bytes, code: str) -> str:
    assert headers["content-type"] == "application/json", body
    error = json.loads(body)["error"]
    assert error["code"] == code, body
    assert "Error" not in error["message"] and "Exception" not in error["message"], body
    return str(error["message"])


def vector_ids(outputs: dict[str, Any], ids: list[str]) -> set[str]:
    a = outputs["api"]
    index = outputs["indexes"]["docs"]["name"]
    r = httpx.post(
        f"{a['base_url']}/accounts/{a['account_id']}/vectorize/v2/indexes/{index}/get_by_ids",
        json={"ids": ids},
        headers={"authorization": f"Bearer {a['token']}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return {v["id"] for v in r.json()["result"]}


# -- paths go upstream exactly -------------------------------------------------------------


def test_delete_of_an_encoded_percent_deletes_that_document(platform: dict[str, Any]) -> None:
    kb = platform["endpoints"]["kb"]
    docs = [{"id": "A", "text": "alpha letter"}, {"id": "%41", "text": "percent four one"}]
    r = httpx.post(f"{kb}/documents", json={"documents": docs}, headers=auth(platform), timeout=30)
    assert r.status_code == 200, r.text
    assert vector_ids(platform, ["A#0", "%41#0"]) == {"A#0", "%41#0"}
    r = httpx.delete(f"{kb}/documents/%2541", headers=auth(platform), timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["document"] == "%41"
    assert vector_ids(platform, ["A#0", "%41#0"]) == {"A#0"}


@pytest.mark.parametrize(
    ("encoded", "document"),
    [("my%20doc", "my doc"), ("caf%C3%A9", "café"), ("50%25", "50%")],
)
def test_encoded_document_ids_are_deleted_as_workerd_decodes_them(
    platform: dict[str, Any], encoded: str, document: str
) -> None:
    kb = platform["endpoints"]["kb"]
    docs = [{"id": document, "text": f"the document called {document}"}]
    r = httpx.post(f"{kb}/documents", json={"documents": docs}, headers=auth(platform), timeout=30)
    assert r.status_code == 200, r.text
    port = int(kb.rsplit(":", 1)[1])
    request = (
        f"DELETE /documents/{encoded} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n"
        f"authorization: Bearer {platform['auth_token']}\r\n\r\n"
    ).encode()
    status, _, body = split(raw_exchange(port, request))
    assert status == 200, body
    assert json.loads(body)["document"] == document
    assert vector_ids(platform, [f"{document}#0"]) == set()


def test_a_path_with_an_encoded_space_reaches_the_worker(platform: dict[str, Any]) -> None:
    r = httpx.post(
        f"{platform['endpoints']['assistant']}/chat%20x", json={}, headers=auth(platform)
    )
    assert r.status_code == 404, r.text
    assert r.json()["error"]["code"] == "not_found"
    assert "/chat%20x" in r.json()["error"]["message"]


def test_query_strings_go_upstream_untouched(platform: dict[str, Any]) -> None:
    port = int(platform["endpoints"]["counter"].rsplit(":", 1)[1])
    request = b"GET /a%2Fb%3F?x=%2541&y=%zz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    status, _, body = split(raw_exchange(port, request))
    assert status == 200, body
    assert json.loads(body)["path"] == "/a%2Fb%3F"
    assert json.loads(body)["search"] == "?x=%2541&y=%zz"


# -- bodies stream through within the Worker's limit ------------------------------------


def _peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for {pid}")


def _chunks(total: int, size: int = MiB) -> Iterator[bytes]:
    block = b"x" * size
    for _ in range(total // size):
        yield block


@pytest.mark.parametrize("token", [False, True])
def test_a_huge_chunked_body_is_refused_while_streaming_in_bounded_memory(
    platform: dict[str, Any], token: bool
) -> None:
    before = _peak_rss(platform["router_pid"])
    r = httpx.post(
        f"{platform['endpoints']['assistant']}/chat",
        content=_chunks(96 * MiB),
        headers={"content-type": "application/json", **(auth(platform) if token else {})},
        timeout=120,
    )
    # Without a token the Worker may answer 401 before the router has counted past its limit.
    assert r.status_code == 413 or (not token and r.status_code == 401), r.text
    if r.status_code == 413:
        assert r.json()["error"] == {
            "code": "payload_too_large",
            "message": "request body exceeds 1048576 bytes",
        }
    # The router held a few chunks at a time, not the 96 MiB it was sent.
    assert _peak_rss(platform["router_pid"]) - before < 32 * MiB
    assert httpx.get(f"{platform['endpoints']['assistant']}/health").status_code == 200


def test_a_declared_length_over_the_limit_is_refused_before_the_body(
    platform: dict[str, Any],
) -> None:
    port = int(platform["endpoints"]["assistant"].rsplit(":", 1)[1])
    head = (
        b"POST /chat HTTP/1.1\r\nhost: x\r\ncontent-length: 314572800\r\nconnection: close\r\n\r\n"
    )
    status, headers, body = split(raw_exchange(port, head))  # no body is ever sent
    assert status == 413
    assert "1048576" in assert_worker_error(status, headers, body, "payload_too_large")


def test_the_router_holds_a_custom_worker_to_its_declared_limit(
    platform: dict[str, Any],
) -> None:
    url = platform["endpoints"]["counter"]
    small = httpx.post(url, content=_chunks(65536, 4096), timeout=30)
    assert small.status_code == 200 and small.json()["size"] == 65536
    big = httpx.post(url, content=_chunks(MiB, 4096), timeout=30)
    assert big.status_code == 413, big.text  # the Worker itself would have counted it all
    assert big.json()["error"]["code"] == "payload_too_large"


def _established_to(port: int) -> int:
    """Open TCP connections to 127.0.0.1:`port` (from /proc/net/tcp)."""
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "01" and int(fields[2].split(":")[1], 16) == port:
            count += 1
    return count


def _settles(upstream: int, open_connections: bool) -> bool:
    """Whether the router's connections to `upstream` come to be open (or all closed), seen
    so in three reads in a row: /proc/net/tcp is read in pages, and on a busy machine one
    read can miss a socket."""
    deadline, streak = time.monotonic() + 30, 0
    while time.monotonic() < deadline and streak < 3:
        streak = streak + 1 if (_established_to(upstream) > 0) == open_connections else 0
        time.sleep(0.05)
    return streak == 3


def test_a_client_leaving_an_endless_stream_closes_it_upstream(platform: dict[str, Any]) -> None:
    (upstream,) = platform["upstreams"]["ticker"]
    with httpx.stream("GET", platform["endpoints"]["ticker"], timeout=30) as r:
        assert r.status_code == 200
        lines = r.iter_lines()  # kept: a dropped iterator closes the response
        assert next(lines) == "tick"
        assert _settles(upstream, open_connections=True)  # the router's, to workerd
    assert _settles(upstream, open_connections=False), "the router kept an unread stream"


def test_every_method_the_router_forwards_is_one_workerd_knows(platform: dict[str, Any]) -> None:
    port = int(platform["endpoints"]["assistant"].rsplit(":", 1)[1])
    for method in sorted(METHODS):
        request = f"{method} /chat HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".encode()
        status, headers, body = split(raw_exchange(port, request))
        # The Worker answers (405 for all but POST; HEAD has no body), never workerd's 501.
        assert status == (401 if method == "POST" else 405), (method, body)
        assert headers["content-type"] == "application/json", (method, body)


# -- the router's own errors -----------------------------------------------------------------


@pytest.fixture
def lone_router(tmp_path: Path) -> Iterator[int]:
    """A router alone, its one Worker's version on a port nobody listens on."""
    public, dead = free_port(), free_port()
    version = VersionRoute(upstream=f"127.0.0.1:{dead}", sha256="0" * 64, process="workerd")
    files = StateFiles(tmp_path)
    files.write_routes(
        Routes(
            workers={
                "w": WorkerRoute(
                    script_name="w", port=public, versions={"v1": version}, split={"v1": 100}
                )
            }
        )
    )
    argv = [sys.executable, "-m", "cfai.local.router", "--routes", str(files.routes_path)]
    pid = spawn(argv, cwd=tmp_path, log=tmp_path / "router.log", env={})
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", public), timeout=1).close()
                break
            time.sleep(0.05)
        yield public
    finally:
        stop(pid)


def test_an_unreachable_version_is_a_json_502_naming_no_internals(lone_router: int) -> None:
    r = httpx.get(f"http://127.0.0.1:{lone_router}/anything", timeout=30)
    assert r.status_code == 502
    assert r.headers["x-cfai-version-id"] == "v1"
    message = assert_worker_error(r.status_code, dict(r.headers), r.content, "upstream_unreachable")
    assert "OSError" not in message and "Refused" not in message


@pytest.mark.platform
def test_a_public_port_held_by_another_socket_is_opened_once_it_is_free(tmp_path: Path) -> None:
    """A Worker's planned port can be held for a moment by something else (an outgoing
    connection's ephemeral port): the router keeps trying instead of leaving it dead."""
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    public = holder.getsockname()[1]
    version = VersionRoute(upstream=f"127.0.0.1:{free_port()}", sha256="0" * 64, process="w")
    files = StateFiles(tmp_path)
    files.write_routes(
        Routes(
            workers={
                "w": WorkerRoute(
                    script_name="w", port=public, versions={"v1": version}, split={"v1": 100}
                )
            }
        )
    )
    argv = [sys.executable, "-m", "cfai.local.router", "--routes", str(files.routes_path)]
    log = tmp_path / "router.log"
    pid = spawn(argv, cwd=tmp_path, log=log, env={})
    try:
        deadline = time.monotonic() + 30
        while "cannot listen" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert f"cannot listen on 127.0.0.1:{public} yet (retrying)" in log.read_text()
        holder.close()
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", public), timeout=1).close()
                break
            time.sleep(0.05)
        r = httpx.get(f"http://127.0.0.1:{public}/anything", timeout=30)
        assert r.status_code == 502 and r.headers["x-cfai-version-id"] == "v1"
    finally:
        holder.close()
        stop(pid)


@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [
        (
            b"POST /x HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\n{}",
            400,
            "bad_request",
        ),
        (b"FOO /x HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n", 501, "not_implemented"),
        (b"GET /x y HTTP/1.1\r\nhost: x\r\n\r\n", 400, "bad_request"),
    ],
    ids=["duplicate-content-length", "unknown-method", "malformed-request-line"],
)
def test_requests_the_router_refuses_get_json_errors(
    lone_router: int, request_bytes: bytes, status: int, code: str
) -> None:
    got, headers, body = split(raw_exchange(lone_router, request_bytes))
    assert got == status, body
    assert_worker_error(got, headers, body, code)


# -- the property test --------------------------------------------------------------------

#: Generated cases in all (`tests/local/test_emulator_fuzz.py`); the router takes a fifth.
CASES = int(os.environ.get("CFAI_FUZZ_CASES", "300"))
ROUTES = ["/", "/health", "/chat", "/documents", "/documents/", "/query", "/image"]
_SEGMENT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12).map(
    lambda t: quote(t, safe="/:@!$&'()*+,;=~")
)
_RAW = st.sampled_from(["%", "%2", "%zz", "%2541", "%00", "%C3%A9", "%FF", "..", "//", ";x"])


@st.composite
def requests_to(draw: st.DrawFn, outputs: dict[str, Any]) -> dict[str, Any]:
    """One request to one of the platform's Workers, through the router."""
    worker = draw(st.sampled_from(sorted(set(outputs["endpoints"]) - {"ticker"})))  # endless
    path = draw(st.sampled_from(ROUTES))
    if path.endswith("/") or draw(st.integers(0, 3)) == 0:
        path += "".join(draw(st.lists(_SEGMENT | _RAW, min_size=1, max_size=3)))
    if draw(st.booleans()):
        path += "?" + "&".join(draw(st.lists(_SEGMENT | _RAW, max_size=3)))
    headers = {}
    token = draw(st.sampled_from(["valid", "valid", "wrong", "none"]))
    if token != "none":
        headers["authorization"] = "Bearer " + (outputs["auth_token"] if token == "valid" else "x")
    if draw(st.booleans()):
        headers["content-type"] = draw(
            st.sampled_from(["application/json", "text/plain", "application/x-ndjson", "a/b;c"])
        )
    if draw(st.integers(0, 9)) == 0:
        headers["cloudflare-workers-version-overrides"] = draw(_SEGMENT)
    body: bytes | None = draw(
        st.one_of(
            st.none(),
            st.binary(max_size=64),
            st.dictionaries(_SEGMENT, st.integers() | st.text() | st.booleans(), max_size=4).map(
                lambda d: json.dumps(d).encode()
            ),
            st.sampled_from([b"{}", b'{"prompt": 1}', b"[]", b"null", b'{"documents": []}']),
        )
    )
    common = st.sampled_from(["POST", "POST", "GET", "DELETE", "HEAD", "OPTIONS"])
    rare = st.sampled_from([*sorted(METHODS), "FOO", "get", "CONNECT"])
    return {
        "worker": worker,
        "method": draw(st.one_of(common, common, common, rare)),
        "path": path,
        "headers": headers,
        "body": body,
    }


def test_every_request_through_the_router_is_answered_or_refused_as_json(
    platform: dict[str, Any],
) -> None:
    statuses: Counter[int] = Counter()
    peak = _peak_rss(platform["router_pid"])
    clients = {
        key: httpx.Client(limits=httpx.Limits(max_connections=1), timeout=60)
        for key in set(platform["endpoints"]) - {"ticker"}
    }
    last: dict[str, tuple[int, bool]] = {}  # worker -> (client port, may close)

    @settings(
        max_examples=max(1, CASES // 5),
        deadline=None,
        database=None,
        derandomize=CASES <= 300,
        suppress_health_check=list(HealthCheck),
    )
    @given(spec=requests_to(platform))
    def run(spec: dict[str, Any]) -> None:
        port = int(platform["endpoints"][spec["worker"]].rsplit(":", 1)[1])
        url = httpx.URL(scheme="http", host="127.0.0.1", port=port, raw_path=spec["path"].encode())
        client = clients[spec["worker"]]
        try:
            r = client.request(spec["method"], url, headers=spec["headers"], content=spec["body"])
        except httpx.LocalProtocolError:
            last.pop(spec["worker"], None)
            return  # the client would not send it (a header or method it refuses)
        except httpx.TransportError as err:
            last.pop(spec["worker"], None)
            raise AssertionError(f"{spec}: no answer ({err!r})") from None
        statuses[r.status_code] += 1
        mine = _client_port(r)
        before = last.get(spec["worker"])
        assert before is None or before[0] == mine or before[1], f"connection dropped before {spec}"
        closing = "close" in r.headers.get("connection", "").lower()
        last[spec["worker"]] = (mine, closing or spec["method"] == "CONNECT")
        assert r.status_code < 500 or r.status_code == 501, (spec, r.status_code, r.text[:300])
        if r.status_code >= 400 and spec["method"] != "HEAD":
            assert r.headers["content-type"] == "application/json", (spec, r.text[:300])
            error = r.json()["error"]
            assert isinstance(error["code"], str) and isinstance(error["message"], str), r.text

    try:
        run()
    finally:
        for client in clients.values():
            client.close()
        print(
            f"\nrouter: {sum(statuses.values())} requests by status {dict(sorted(statuses.items()))}"
        )
    assert _peak_rss(platform["router_pid"]) - peak < 64 * MiB
    assert statuses and any(400 <= s < 500 for s in statuses)


def _client_port(r: httpx.Response) -> int:
    return int(r.extensions["network_stream"].get_extra_info("client_addr")[1])
