"""The parity suite: the local platform driven by Cloudflare's own clients.

Every test here drives one operation with one official client, unmodified but for its base
URL and credentials (the platform's outputs), and says so with a marker::

    @pytest.mark.parity("POST /accounts/{account_id}/ai/run/{model}", client="python-sdk")

(``client`` is ``python-sdk``, ``openai`` or ``wrangler``; the path is the client's, see
`parity_routes`). All of them share the session's one local platform (`local_platform`),
so each creates its own gateways, indexes and finetunes under unique names.

The suite keeps ``docs/parity.md`` current: the outcome of each marked test is recorded, and
at the end of the session the document is compared with what the run produced; a
difference fails the run and names the tests. ``make parity`` (``CFAI_PARITY_WRITE=1``)
rewrites the document from a run of the whole suite. A partial run (``-k``, one file)
checks only the tests it ran.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cloudflare
import pytest
from cloudflare.types.ai import FinetuneCreateResponse
from parity_routes import CLIENTS, DOC, REPO_ROOT, Row, diff, parse_rows, render

WRITE = os.environ.get("CFAI_PARITY_WRITE") == "1"
HERE = Path(__file__).resolve().parent
_PROPERTY = "parity"
_results: dict[str, Row] = {}
_collected: set[str] = set()


def _test_name(nodeid: str) -> str:
    return nodeid.split("tests/parity/", 1)[-1]


@pytest.hookimpl(tryfirst=True)
def pytest_itemcollected(item: pytest.Item) -> None:
    marker = item.get_closest_marker("parity")
    if marker is None or not str(item.path).startswith(str(HERE)):
        return
    if len(marker.args) != 1 or marker.kwargs.get("client") not in CLIENTS:
        raise pytest.UsageError(
            f"{item.nodeid}: use @pytest.mark.parity('<METHOD> <path>', client=one of {CLIENTS})"
        )
    item.user_properties.append((_PROPERTY, (marker.args[0], marker.kwargs["client"])))
    item.add_marker(pytest.mark.platform)


def pytest_collection_finish(session: pytest.Session) -> None:
    _collected.update(
        i.nodeid for i in session.items if any(k == _PROPERTY for k, _ in i.user_properties)
    )


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    found = [v for k, v in report.user_properties if k == _PROPERTY]
    if not found:
        return
    operation, client = found[0]
    test = _test_name(report.nodeid)
    # The call's outcome, unless setup or teardown failed (or skipped) around it.
    counts = report.when == "call" or report.outcome != "passed"
    if counts and (test not in _results or _results[test].result == "passed"):
        _results[test] = Row(operation, client, test, report.outcome)


def pytest_sessionfinish(session: pytest.Session) -> None:
    if not _collected:
        return
    whole = len(_results) == len(_collected) and _ran_whole_suite(session.config)
    documented = parse_rows(DOC.read_text()) if DOC.exists() else {}
    if WRITE:
        if not whole:
            _fail(session, "CFAI_PARITY_WRITE=1 needs a run of the whole parity suite")
            return
        DOC.write_text(render(_results.values()))
        return
    problems = diff(_results, documented)
    if whole and (extra := sorted(set(documented) - set(_results))):
        problems += [f"{t}: in docs/parity.md but no longer a parity test" for t in extra]
    if whole and not problems and DOC.read_text() != render(_results.values()):
        problems.append("docs/parity.md summary differs from this run's")
    if problems:
        _fail(session, "docs/parity.md differs from this run (`make parity` rewrites it):\n  "
              + "\n  ".join(problems))  # fmt: skip


def _ran_whole_suite(config: pytest.Config) -> bool:
    if config.option.keyword or config.option.markexpr or getattr(config.option, "lf", False):
        return False
    args = [Path(a.split("::")[0]).resolve() for a in config.args]
    return any(a == HERE or a in HERE.parents for a in args)


def _fail(session: pytest.Session, message: str) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"\nparity: {message}", red=True)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


# -- fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def api(local_platform: dict[str, Any]) -> dict[str, str]:
    """The platform's REST API from its outputs: ``base_url``, ``account_id``, ``token``."""
    return dict(local_platform["api"])


@pytest.fixture(scope="session")
def account(api: dict[str, str]) -> str:
    return api["account_id"]


@pytest.fixture(scope="session")
def cf(api: dict[str, str]) -> Iterator[cloudflare.Cloudflare]:
    """Cloudflare's Python SDK on the local platform, as a user points it there."""
    client = cloudflare.Cloudflare(api_token=api["token"], base_url=api["base_url"])
    yield client
    client.close()


@pytest.fixture(scope="session")
def gateway_root(api: dict[str, str]) -> str:
    """Where the gateway URL forms live (``https://gateway.ai.cloudflare.com`` on Cloudflare)."""
    return api["base_url"].removesuffix("/client/v4")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def new_gateway(cf: cloudflare.Cloudflare, account: str) -> Iterator[Callable[..., str]]:
    """Creates gateways with the SDK (defaults: logs on, no cache, no rate limit); deletes
    them afterwards."""
    made: list[str] = []

    def create(**fields: Any) -> str:
        gateway_id = unique("parity")
        settings: dict[str, Any] = {
            "cache_invalidate_on_update": True, "cache_ttl": 0, "collect_logs": True,
            "rate_limiting_interval": 0, "rate_limiting_limit": 0,
            "rate_limiting_technique": "fixed", **fields,
        }  # fmt: skip
        cf.ai_gateway.create(account_id=account, id=gateway_id, **settings)
        made.append(gateway_id)
        return gateway_id

    yield create
    for gateway_id in made:
        cf.ai_gateway.delete(gateway_id, account_id=account)


@pytest.fixture
def new_index(cf: cloudflare.Cloudflare, account: str) -> Iterator[Callable[..., str]]:
    """Creates Vectorize indexes with the SDK (32 cosine dimensions by default); deletes them."""
    made: list[str] = []

    def create(dimensions: int = 32, metric: str = "cosine") -> str:
        name = unique("parity")
        cf.vectorize.indexes.create(
            account_id=account, name=name, config={"dimensions": dimensions, "metric": metric}
        )
        made.append(name)
        return name

    yield create
    for name in made:
        cf.vectorize.indexes.delete(name, account_id=account)


#: A model that takes LoRA adapters (https://developers.cloudflare.com/workers-ai/models/?capabilities=LoRA).
LORA_MODEL = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"


@pytest.fixture
def new_finetune(cf: cloudflare.Cloudflare, account: str) -> Callable[..., FinetuneCreateResponse]:
    """Creates finetunes with the SDK (on `LORA_MODEL`, no assets, private by default).
    Cloudflare's API deletes no finetune, so they stay on the session's platform: each has
    a unique name, and the tests only look for their own."""

    def create(
        model: str = LORA_MODEL, *, description: str = "", public: bool = False
    ) -> FinetuneCreateResponse:
        return cf.ai.finetunes.create(
            account_id=account, model=model, name=unique("parity"), description=description,
            public=public,
        )  # fmt: skip

    return create


Wrangler = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="session")
def wrangler(api: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Wrangler:
    """Runs the pinned wrangler against the local platform (its base URL, token and account
    from the outputs), offline and quiet: CI=true, no metrics, HOME in a temp dir. Output
    goes to the returned process, never to the terminal."""
    binary = REPO_ROOT / "node_modules" / ".bin" / "wrangler"
    if not binary.exists():
        pytest.fail("wrangler is not installed: run `make setup`")
    home = tmp_path_factory.mktemp("wrangler-home")
    env = {
        "PATH": os.environ.get("PATH", ""), "HOME": str(home), "CI": "true",
        "WRANGLER_SEND_METRICS": "false", "CLOUDFLARE_API_BASE_URL": api["base_url"],
        "CLOUDFLARE_API_TOKEN": api["token"], "CLOUDFLARE_ACCOUNT_ID": api["account_id"],
        "NO_COLOR": "1", "FORCE_COLOR": "0",
    }  # fmt: skip
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH")

    def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(binary), *args], cwd=cwd or home, env=env, capture_output=True, text=True,
            timeout=120, check=False,
        )  # fmt: skip

    return run
