"""The cfai contract suite as a pytest plugin: options, fixtures and per-Worker parametrisation.

Inert unless ``--cfai-outputs`` is given: it then reads the outputs map, parametrises the
checks in `cfai/contract/checks` over the target's Workers by kind (test ids like
``test_health_reports_kind[chat[assistant]]``), and adds each Worker's own contract files
(config ``contract:``) to the run with the same fixtures. Without it, the checks directory is
not collected and the fixtures are never used.

Example::

    pytest -p cfai.contract.plugin "$(python -c 'import cfai.contract as c; print(c.CHECKS_DIR)')" \\
        --cfai-outputs .cfai/local/outputs.json

Fixtures: `cfai_outputs` (the map), `cfai_target` (it parsed), `cfai_project` (the project
root, for ``workers/``), `worker_client(name)` (authenticated `httpx.Client`),
`anon_client(name)` (no token), `consistency_wait` (seconds). A Worker's optional
``request_headers`` in the outputs map go out with every request its clients send (how
`cfai deploy` pins the suite to a new version with Cloudflare's version override header).

Parameters a check may take: `worker` (every templated Worker), `auth_worker`, `playground_worker` (Workers with a playground page), each kind's
own selections (`cfai.kinds.Kind.selections`: `chat_worker` (free-text chat),
`schema_worker` (chat Workers with a response schema), `gateway_worker` (chat Workers
behind a gateway), `rag_worker`, `image_worker`, ...), and `rate_limited_worker` (gateway
Workers whose gateway has a rate limit; marker ``cfai_rate_limit``, only run when
enabled).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cfai.contract._http import make_client
from cfai.contract._outputs import (
    OutputsError,
    Target,
    WorkerTarget,
    load_outputs,
    parse_target,
)
from cfai.kinds import KINDS, Selection
from cfai.provision.rest import NoAnswer, fetch

CHECKS_DIR = Path(__file__).parent / "checks"
_TARGET = pytest.StashKey[Target]()
#: Set in ``config.stash`` (from a plugin's `pytest_configure`) to route every client the
#: fixtures make through this transport instead of the network: how the suite's own
#: plumbing is tested against an `httpx.MockTransport` fake target.
TRANSPORT = pytest.StashKey[httpx.BaseTransport]()
_NONE = object()  # the parameter of a check with no Worker to run on (deselected)
#: Why a check was deselected (it has no Worker to run on), set on the item for the report.
NOT_RUN_REASON = pytest.StashKey[str]()
# What a parameter's Workers are, for "not run: no ..." (each kind's selections by default).
_WANTED = {
    "worker": "Worker rendered from a cfai template",
    "auth_worker": "Worker with auth on",
    "chat_worker": "chat Worker answering free text (no response_schema)",
    "schema_worker": "chat Worker with a response_schema",
    "gateway_worker": "chat Worker behind a gateway",
    "tool_worker": "chat Worker whose model calls tools",
    "reasoning_worker": "chat Worker whose model reasons",
    "stt_worker": "speech Worker with an stt_model",
    "tts_worker": "speech Worker with a tts_model",
    "voice_worker": "speech Worker with both an stt_model and a tts_model",
}


def _why_not_run(params: list[str], config: pytest.Config, target: Target) -> str:
    if "rate_limited_worker" in params:
        if not _rate_limit_on(config, target):
            return "exhausts a gateway's rate limit: on a live stack only with --rate-limit"
        return "no gateway of a Worker has a rate limit"
    wanted = [_WANTED.get(p, f"{p.removesuffix('_worker')} Worker") for p in params]
    return "the platform has no " + " and no ".join(wanted)


LIVE_DEFAULT_WAIT = 60.0

ClientFactory = Callable[[str], httpx.Client]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cfai", "cfai contract suite")
    group.addoption(
        "--cfai-outputs", metavar="FILE", help="outputs map of the platform to check (JSON)."
    )
    group.addoption(
        "--cfai-project",
        metavar="DIR",
        help="project root holding workers/ and Pulumi.<stack>.yaml (default: current dir).",
    )
    group.addoption(
        "--cfai-live",
        action="store_true",
        help="the target is a live stack: the rate-limit check is off unless --cfai-rate-limit.",
    )
    group.addoption(
        "--cfai-rate-limit",
        action="store_true",
        help="run the gateway rate-limit check (exhausts the gateway's limit for its window).",
    )
    group.addoption(
        "--cfai-wait",
        type=float,
        metavar="SECONDS",
        help=f"bound on eventual-consistency waits (default 0 locally, {LIVE_DEFAULT_WAIT:.0f} live).",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "cfai_rate_limit: exhausts a gateway's rate limit (opt-in on live stacks)"
    )
    path = config.getoption("cfai_outputs", None)
    if not path:
        return
    project = _project(config)
    try:
        target = parse_target(load_outputs(Path(path)), project)
    except OutputsError as err:
        raise pytest.UsageError(str(err)) from None
    config.stash[_TARGET] = target
    # Workers' own contract files join a run of the built-in checks.
    if any(_within(Path(a.split("::")[0]).resolve(), CHECKS_DIR) for a in config.args):
        have = {Path(a.split("::")[0]).resolve() for a in config.args}
        for w in target.workers.values():
            for rel in w.contract:
                file = (project / rel).resolve()
                if file not in have:
                    config.args.append(str(file))
                    have.add(file)


def pytest_report_header(config: pytest.Config) -> str | None:
    target = config.stash.get(_TARGET, None)
    if target is None:
        return None
    kinds = ", ".join(f"{w.id}" for w in target.workers.values())
    return (
        f"cfai target: stack {target.stack or '?'} ({'local' if target.local else 'live'}): {kinds}"
    )


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if _TARGET not in config.stash and _within(collection_path, CHECKS_DIR):
        return True
    return None


def _within(path: Path, parent: Path) -> bool:
    return path == parent or parent in path.parents


def _project(config: pytest.Config) -> Path:
    return Path(config.getoption("cfai_project", None) or ".").resolve()


def _live(config: pytest.Config, target: Target) -> bool:
    return bool(config.getoption("cfai_live")) or not target.local


def _rate_limit_on(config: pytest.Config, target: Target) -> bool:
    return bool(config.getoption("cfai_rate_limit")) or not _live(config, target)


# -- parametrisation ---------------------------------------------------------------------


def _templated(target: Target) -> list[WorkerTarget]:
    return target.by_kind(*(k.name for k in KINDS if k.templated))


def _rate_limited(target: Target) -> list[WorkerTarget]:
    """Gateway Workers whose gateway has a rate limit, asked of the REST API once."""
    if target.api is None:
        return []
    out, seen = [], set()
    # Refines the gateway kinds' own `gateway_worker` selection.
    for w in _SELECTIONS["gateway_worker"](target) if "gateway_worker" in _SELECTIONS else []:
        if w.gateway in seen:
            continue  # one Worker per gateway: the limit is the gateway's
        seen.add(w.gateway)
        r = fetch(
            "GET",
            target.api.gateway_url(str(w.gateway)),
            headers={"authorization": f"Bearer {target.api.token}"},
            timeout=30.0,
        )
        gw: Any = None
        if not isinstance(r, NoAnswer):
            try:
                body = r.json()
            except ValueError:
                body = None
            gw = (body.get("result") or {}) if isinstance(body, dict) else None
        if not isinstance(gw, dict):
            gw = {"rate_limiting_limit": "unknown"}  # let the check fail, loudly
        if gw.get("rate_limiting_limit"):
            out.append(w)
    return out


def _selection(kind: str, select: Selection) -> Callable[[Target], list[WorkerTarget]]:
    return lambda t: [w for w in t.by_kind(kind) if select(w, t.outputs)]


# Each kind's own selections (`Kind.selections`: chat_worker, rag_worker, ...).
_SELECTIONS: dict[str, Callable[[Target], list[WorkerTarget]]] = {
    name: _selection(kind.name, select)
    for kind in KINDS
    for name, select in kind.selections.items()
}
_PARAMETERS: dict[str, Callable[[Target], list[WorkerTarget]]] = {
    "worker": _templated,
    "auth_worker": lambda t: [w for w in _templated(t) if w.auth],
    "playground_worker": lambda t: [w for w in _templated(t) if w.playground],
    **_SELECTIONS,
    "rate_limited_worker": _rate_limited,
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    target = metafunc.config.stash.get(_TARGET, None)
    if target is None:
        return
    for name, select in _PARAMETERS.items():
        if name not in metafunc.fixturenames:
            continue
        if name == "rate_limited_worker" and not _rate_limit_on(metafunc.config, target):
            workers: list[Any] = []
        else:
            workers = select(target)
        if workers:
            metafunc.parametrize(name, workers, ids=[w.id for w in workers])
        else:
            metafunc.parametrize(name, [_NONE], ids=["none"])


@pytest.hookimpl(trylast=True)  # after -k and -m: what they drop is the user's choice
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    if _TARGET not in config.stash:
        return
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        params = callspec.params if callspec else {}
        missing = [name for name, value in params.items() if value is _NONE]
        if missing:
            item.stash[NOT_RUN_REASON] = _why_not_run(missing, config, config.stash[_TARGET])
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
    # The rate-limit check exhausts a gateway for its window: run it after everything else.
    keep.sort(key=lambda i: i.get_closest_marker("cfai_rate_limit") is not None)
    items[:] = keep


# -- fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def cfai_target(pytestconfig: pytest.Config) -> Target:
    """The platform under test, parsed from ``--cfai-outputs``."""
    target = pytestconfig.stash.get(_TARGET, None)
    if target is None:
        pytest.fail("the cfai contract fixtures need --cfai-outputs FILE", pytrace=False)
    return target


@pytest.fixture(scope="session")
def cfai_outputs(cfai_target: Target) -> dict[str, Any]:
    """The outputs map as JSON data (endpoints, workers, gateways, indexes, auth_token, api)."""
    return cfai_target.outputs.to_json()


@pytest.fixture(scope="session")
def cfai_project(pytestconfig: pytest.Config) -> Path:
    """The project root: ``workers/<key>/index.js`` (`cfai.render.module_path`) is the
    reviewed code."""
    return _project(pytestconfig)


@pytest.fixture(scope="session")
def consistency_wait(pytestconfig: pytest.Config, cfai_target: Target) -> float:
    """Seconds a check may wait for eventually consistent writes (Vectorize, gateway logs)."""
    given = pytestconfig.getoption("cfai_wait")
    if given is not None:
        return max(0.0, float(given))
    return LIVE_DEFAULT_WAIT if _live(pytestconfig, cfai_target) else 0.0


def _factory(
    target: Target, config: pytest.Config, *, authenticated: bool
) -> Iterator[ClientFactory]:
    transport = config.stash.get(TRANSPORT, None)
    clients: dict[str, httpx.Client] = {}

    def get(name: str) -> httpx.Client:
        if name not in target.workers:
            pytest.fail(
                f"no Worker {name!r} in the outputs map (have: {', '.join(sorted(target.workers))})",
                pytrace=False,
            )
        if name not in clients:
            clients[name] = make_client(
                target.workers[name].url,
                token=target.auth_token if authenticated else None,
                secrets=target.secrets,
                headers=target.workers[name].request_headers,
                transport=transport,
            )
        return clients[name]

    yield get
    for c in clients.values():
        c.close()


@pytest.fixture(scope="session")
def worker_client(cfai_target: Target, pytestconfig: pytest.Config) -> Iterator[ClientFactory]:
    """``worker_client("assistant")``: an `httpx.Client` on that Worker with its bearer token;
    every response is checked for leaked secrets."""
    yield from _factory(cfai_target, pytestconfig, authenticated=True)


@pytest.fixture(scope="session")
def anon_client(cfai_target: Target, pytestconfig: pytest.Config) -> Iterator[ClientFactory]:
    """``anon_client("assistant")``: like `worker_client` without the token."""
    yield from _factory(cfai_target, pytestconfig, authenticated=False)
