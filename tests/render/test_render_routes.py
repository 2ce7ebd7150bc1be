"""Each kind's declared routes (`cfai.kinds.Kind.routes`, used for docs, the contract suite
and curl examples) are exactly what its template serves, with the declared auth."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import FIXTURE, TOKEN, env_for, make_platform, render
from node_harness import request, run_worker

from cfai.kinds import KINDS, kind_for
from cfai.render import Templates

TEMPLATED = [k.name for k in KINDS if k.templated]
# `{ path: "/chat", methods: { POST: handleChat } }` or `{ prefix: "/documents/", ... }`
_SERVED = re.compile(r'\{ (path|prefix): "([^"]+)", methods: \{ ([A-Z]+): ')
# The fixture platform's Worker of each kind it has.
FIXTURE_KEYS = {w["kind"]: key for key, w in FIXTURE["workers"].items()}


@pytest.mark.parametrize("kind", TEMPLATED)
def test_declared_routes_are_the_served_routes(kind: str) -> None:
    template = kind_for(kind).template
    assert template is not None
    source = (Templates.packaged().root / template).read_text(encoding="utf-8")
    served = {("GET", "/health")} | {
        (method, f"{path}{{id}}" if form == "prefix" else path)
        for form, path, method in _SERVED.findall(source)
    }
    declared = {(r.method, r.path) for r in kind_for(kind).routes}
    assert declared == served


@pytest.mark.parametrize("kind", [k for k in TEMPLATED if k in FIXTURE_KEYS])
def test_declared_routes_answer_with_the_declared_auth(kind: str, tmp_path: Path) -> None:
    worker = render(make_platform(), FIXTURE_KEYS[kind])
    routes = kind_for(kind).routes
    requests = []
    for r in routes:
        path = r.path.replace("{id}", "doc-1")
        body = None if r.method in ("GET", "DELETE") else {}
        requests += [request(r.method, path, body, token=TOKEN), request(r.method, path, body)]
    replies, _ = run_worker(tmp_path, worker.source, {"env": env_for(worker), "requests": requests})
    for i, r in enumerate(routes):
        with_token, without = replies[2 * i], replies[2 * i + 1]
        assert with_token.status not in (401, 404, 405), (r, with_token.status, with_token.body)
        assert (without.status == 401) is r.auth, (r, without.status, without.body)
