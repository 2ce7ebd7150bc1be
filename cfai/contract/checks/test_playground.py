"""Workers with a playground page (``playground: true``): the page and its files are static
assets served with the right media types and Cloudflare's cache headers, hold no token, and
the API behind the page is unchanged (still behind the token)."""

from __future__ import annotations

import re

from cfai.contract._http import assert_json_error, describe
from cfai.contract._outputs import Target, WorkerTarget
from cfai.contract.plugin import ClientFactory
from cfai.kinds import kind_for

# What Cloudflare answers for a static asset: revalidate every time, by ETag
# (https://developers.cloudflare.com/workers/static-assets/#caching-behavior).
CACHE = "public, max-age=0, must-revalidate"
FILES = {
    "/": "text/html; charset=utf-8",
    "/playground.css": "text/css; charset=utf-8",
    "/playground.js": "text/javascript; charset=utf-8",
}


def test_page_and_files_have_their_types_and_cache_headers(
    playground_worker: WorkerTarget, anon_client: ClientFactory
) -> None:
    client = anon_client(playground_worker.name)
    files = {**FILES, f"/{playground_worker.kind}.js": FILES["/playground.js"]}
    for path, media in files.items():
        r = client.get(path)
        assert r.status_code == 200, f"GET {path}: {describe(r)}"
        assert r.headers.get("content-type") == media, (
            f"GET {path}: content-type {r.headers.get('content-type')!r}, expected {media!r}"
        )
        assert r.headers.get("cache-control") == CACHE, (
            f"GET {path}: cache-control {r.headers.get('cache-control')!r}, expected {CACHE!r}"
        )
        etag = r.headers.get("etag", "")
        assert re.fullmatch(r'"[^"]+"', etag), f"GET {path}: no strong ETag ({etag!r})"
        again = client.get(path, headers={"if-none-match": etag})
        assert again.status_code == 304, f"GET {path} with its ETag: {describe(again)}"


def test_page_holds_no_token_and_labels_its_token_field(
    playground_worker: WorkerTarget, anon_client: ClientFactory, cfai_target: Target
) -> None:
    page = anon_client(playground_worker.name).get("/").text
    token = cfai_target.auth_token
    assert token is None or token not in page, "the page embeds the bearer token"
    assert '<label for="token">' in page and 'id="token" type="password"' in page


def test_api_behind_the_page_still_needs_the_token(
    playground_worker: WorkerTarget, anon_client: ClientFactory
) -> None:
    route = kind_for(playground_worker.kind).main_route
    assert route is not None
    r = anon_client(playground_worker.name).post(route.path, json={})
    if playground_worker.auth:
        assert_json_error(r, 401)
    health = anon_client(playground_worker.name).get("/health")
    assert health.status_code == 200 and health.json().get("kind") == playground_worker.kind
