"""Every templated Worker: /health, the reviewed code, honest JSON errors, auth, no secrets."""

from __future__ import annotations

import re
from pathlib import Path

from cfai.contract._http import assert_json_error, json_body
from cfai.contract._outputs import WorkerTarget
from cfai.contract.plugin import ClientFactory
from cfai.kinds import kind_for
from cfai.render import module_path, module_sha256

_MAX_BYTES = re.compile(r"const MAX_REQUEST_BYTES = (\d+);")


def _main_route(worker: WorkerTarget) -> str:
    """The JSON route of the Worker's kind (`Kind.main_route`) the checks below probe."""
    route = kind_for(worker.kind).main_route
    assert route is not None, f"kind {worker.kind} declares no main route"
    return route.path


def _reviewed_module(project: Path, worker: WorkerTarget) -> str:
    path = module_path(project / "workers", worker.name)
    assert path.is_file(), f"{path} does not exist: the deployed Worker has no reviewed source"
    return path.read_text(encoding="utf-8")


def test_health_reports_kind(worker: WorkerTarget, anon_client: ClientFactory) -> None:
    body = json_body(anon_client(worker.name).get("/health"))
    assert body.get("kind") == worker.kind, (
        f"/health says kind {body.get('kind')!r}, declared {worker.kind!r}"
    )
    assert body.get("worker") == worker.name, f"/health says worker {body.get('worker')!r}"
    assert isinstance(body.get("models"), list | dict), f"/health models: {body.get('models')!r}"


def test_health_template_sha256_matches_workers_dir(
    worker: WorkerTarget, anon_client: ClientFactory, cfai_project: Path
) -> None:
    expected = module_sha256(_reviewed_module(cfai_project, worker))
    running = json_body(anon_client(worker.name).get("/health")).get("template_sha256")
    assert running == expected, (
        f"the Worker runs template {str(running)[:12]}, "
        f"{module_path(Path('workers'), worker.name)} "
        f"is {expected[:12]}: what runs is not what was reviewed"
    )


def test_unknown_route_404(worker: WorkerTarget, worker_client: ClientFactory) -> None:
    r = worker_client(worker.name).post("/no-such-route-cfai", json={})
    assert_json_error(r, 404)


def test_wrong_method_405(worker: WorkerTarget, worker_client: ClientFactory) -> None:
    r = worker_client(worker.name).delete(_main_route(worker))
    assert_json_error(r, 405)


def test_malformed_json_400(worker: WorkerTarget, worker_client: ClientFactory) -> None:
    r = worker_client(worker.name).post(
        _main_route(worker),
        content=b'{"prompt": "unterminated',
        headers={"content-type": "application/json"},
    )
    assert_json_error(r, 400)


def test_missing_field_400(worker: WorkerTarget, worker_client: ClientFactory) -> None:
    r = worker_client(worker.name).post(_main_route(worker), json={})
    assert_json_error(r, 400)


def test_oversize_body_413(
    worker: WorkerTarget, worker_client: ClientFactory, cfai_project: Path
) -> None:
    # The limit is the one in the reviewed code (the hash check proves it is what runs).
    found = _MAX_BYTES.search(_reviewed_module(cfai_project, worker))
    assert found, f"{module_path(Path('workers'), worker.name)} declares no MAX_REQUEST_BYTES"
    limit = int(found.group(1))
    body = b'{"prompt": "' + b"x" * limit + b'"}'
    r = worker_client(worker.name).post(
        _main_route(worker), content=body, headers={"content-type": "application/json"}
    )
    assert_json_error(r, 413)


def test_missing_token_401(auth_worker: WorkerTarget, anon_client: ClientFactory) -> None:
    r = anon_client(auth_worker.name).post(_main_route(auth_worker), json={"prompt": "hi"})
    assert_json_error(r, 401)


def test_wrong_token_401(auth_worker: WorkerTarget, anon_client: ClientFactory) -> None:
    r = anon_client(auth_worker.name).post(
        _main_route(auth_worker),
        json={"prompt": "hi"},
        headers={"authorization": "Bearer not-the-token-cfai"},
    )
    assert_json_error(r, 401)


def test_error_responses_leak_no_secret(
    worker: WorkerTarget, worker_client: ClientFactory, anon_client: ClientFactory
) -> None:
    # Every client's SecretGuard fails the request that leaks; these are the answers most
    # likely to echo configuration: errors, auth failures, health.
    client, anon = worker_client(worker.name), anon_client(worker.name)
    route = _main_route(worker)
    answers = [
        anon.get("/health"),
        anon.post(route, json={"prompt": "x"}, headers={"authorization": "Bearer wrong"}),
        client.post(route, content=b"[", headers={"content-type": "application/json"}),
        client.post(route, json={"prompt": 12}),
        client.get("/AUTH_TOKEN"),
        client.get("/env"),
    ]
    assert all(r.status_code < 500 for r in answers), [r.status_code for r in answers]
