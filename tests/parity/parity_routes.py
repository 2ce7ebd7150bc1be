"""What the parity suite covers: every route the front door serves, matched against the
``@pytest.mark.parity`` operations, and the ``docs/parity.md`` it keeps current.

An operation is ``"<METHOD> <path>"`` with the path as the official clients write it,
relative to ``/client/v4`` for the REST API (``POST /accounts/{account_id}/ai/run/{model}``)
and from the root for the gateway URL forms (``POST /v1/{account_id}/{gateway_id}/...``).
Placeholder names are free; a route's ``{x:path}`` matches any rest of the path.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DOC = REPO_ROOT / "docs" / "parity.md"
CLIENTS = ("python-sdk", "openai", "wrangler")

_FINETUNES = "/accounts/{account_id}/ai/finetunes"
_SLASHED = "answers as the unslashed route (tests/parity/test_parity_finetunes.py, over httpx)"

# Routes no official client calls, with the reason. Each is still exercised by the tests
# named, over plain HTTP.
EXCEPTIONS: dict[str, str] = {
    "GET /__cfai/health": "the emulator's own liveness probe; no Cloudflare API has it "
    "(the supervisor polls it on every `cfai local up`)",
    "POST /__cfai/reset": "the emulator's own admin route; no Cloudflare API has it "
    "(tests/local/test_local_binding_auth.py)",
    "GET /__cfai/openapi.json": "the emulator's own OpenAPI document of its routes; no "
    "Cloudflare API has it (tests/local/test_emulator_inputs.py, over httpx)",
    "POST /v1/{account_id}/{gateway_id}": "the universal endpoint: Cloudflare documents it "
    "with curl and no SDK calls it (tests/parity/test_parity_gateway_urls.py, over httpx)",
    "POST /v1/{account_id}/{gateway_id}/": "the universal endpoint as `getUrl()` spells it, "
    "with a trailing slash (tests/parity/test_parity_gateway_urls.py, over httpx)",
    # The SDKs and wrangler call the finetunes routes without a trailing slash; Cloudflare's
    # LoRA guide's curl examples add one
    # (https://developers.cloudflare.com/workers-ai/features/fine-tunes/loras/).
    f"POST {_FINETUNES}/": "create as earlier revisions of Cloudflare's LoRA guide spell it in "
    f"curl; {_SLASHED}",
    f"GET {_FINETUNES}/": "list as earlier revisions of Cloudflare's LoRA guide spell it in "
    f"curl; {_SLASHED}",
    f"POST {_FINETUNES}/{{finetune}}/finetune-assets/": "the upload as Cloudflare's LoRA "
    f"guide spells it in curl; {_SLASHED}",
    f"GET {_FINETUNES}/public/": "served with the other finetunes routes' trailing-slash "
    f"spellings; no client or Cloudflare doc uses it; {_SLASHED}",
}


@dataclass(frozen=True)
class Row:
    """One parity test: the operation it drives, the client driving it, its outcome."""

    operation: str
    client: str
    test: str
    result: str


def served_routes() -> list[str]:
    """``"<METHOD> <path>"`` of every route the emulator serves on its own address (the
    binding hosts are workerd's, not a client's), ``/client/v4`` stripped."""
    from cfai.local.emulator import build_app
    from cfai.local.services import EmulatorContext
    from cfai.local.services.frontdoor import Endpoint

    with tempfile.TemporaryDirectory() as state:
        ctx = EmulatorContext(state_dir=Path(state), account_id="0" * 32, api_token="t")
        app, services = build_app(ctx)
        try:
            routes = []
            for route in app.routes:
                endpoint = getattr(route, "endpoint", None)
                for ep in getattr(endpoint, "by_method", {}).values():
                    if isinstance(ep, Endpoint) and ep.host is None:
                        routes.append(f"{ep.method} {ep.path.removeprefix('/client/v4')}")
        finally:
            for service in services.values():
                service.close()
    return sorted(set(routes))


def declared() -> dict[str, tuple[str, str]]:
    """Every parity test in this directory, ``"<file>::<test>"`` -> (operation, client),
    read from the test modules themselves (whatever a run selected)."""
    import importlib
    import inspect

    found = {}
    for path in sorted(Path(__file__).parent.glob("test_*.py")):
        module = importlib.import_module(path.stem)
        for name, function in inspect.getmembers(module, inspect.isfunction):
            for mark in getattr(function, "pytestmark", []):
                if mark.name == "parity":
                    found[f"{path.name}::{name}"] = (str(mark.args[0]), str(mark.kwargs["client"]))
    return found


def route_pattern(route: str) -> re.Pattern[str]:
    method, path = route.split(" ", 1)
    parts = re.split(r"(\{[^}]+\})", path)
    regex = "".join(
        (".+" if p.endswith(":path}") else "[^/]+") if p.startswith("{") else re.escape(p)
        for p in parts
    )
    return re.compile(f"{re.escape(method)} {regex}")


def covers(route: str, operation: str) -> bool:
    """Whether `operation` (placeholders filled with a sample) is a request to `route`."""
    sample = re.sub(r"\{[^}]+\}", "x", operation)
    return route_pattern(route).fullmatch(sample) is not None


def uncovered(routes: Iterable[str], operations: Iterable[str]) -> list[str]:
    ops = list(operations)
    return [r for r in routes if r not in EXCEPTIONS and not any(covers(r, o) for o in ops)]


def _wrangler_version() -> str:
    import json

    package = REPO_ROOT / "node_modules" / "wrangler" / "package.json"
    try:
        return str(json.loads(package.read_text())["version"])
    except (OSError, ValueError, KeyError):
        return "not installed"


def render(rows: Iterable[Row]) -> str:
    """The whole ``docs/parity.md`` for `rows`."""
    rows = sorted(rows, key=lambda r: (r.operation, r.client, r.test))
    by_op: dict[str, dict[str, list[str]]] = {}
    for row in rows:
        by_op.setdefault(row.operation, {}).setdefault(row.client, []).append(row.result)
    lines = [
        "# Parity: the local platform judged by Cloudflare's own clients",
        "",
        "Generated by the parity suite (`tests/parity`) from its `@pytest.mark.parity` tests and",
        "their outcomes; do not edit by hand. `make parity` runs the suite and rewrites this",
        "file; a run of the suite fails while this file differs from what the run produced.",
        "",
        f"Clients: Python SDK `cloudflare` {version('cloudflare')}, `openai` "
        f"{version('openai')}, wrangler {_wrangler_version()}; each pointed at the local "
        "platform's outputs (`api.base_url`, `api.token`, `api.account_id`).",
        "",
        "Authentication: `Authorization: Bearer <api.token>`, or `X-Auth-Email` + `X-Auth-Key`",
        "with the API token as the key and any well-formed email (the local platform has no",
        "users to match the email against).",
        "",
        "## Operations by client",
        "",
        "| Operation | " + " | ".join(CLIENTS) + " |",
        "| --- | " + " | ".join("---" for _ in CLIENTS) + " |",
    ]
    for op, results in by_op.items():
        cells = []
        for client in CLIENTS:
            got = results.get(client, [])
            passed = sum(r == "passed" for r in got)
            cells.append(f"{passed}/{len(got)} pass" if got else "")
        lines.append(f"| `{op}` | " + " | ".join(cells) + " |")
    total = len(rows)
    passed = sum(r.result == "passed" for r in rows)
    lines += [
        "",
        f"{passed} of {total} checks pass over {len(by_op)} operations.",
        "",
        "## Checks",
        "",
        "| Operation | Client | Test | Result |",
        "| --- | --- | --- | --- |",
        *(f"| `{r.operation}` | {r.client} | `{r.test}` | {r.result} |" for r in rows),
        "",
        "## Routes no official client calls",
        "",
        "| Route | Why |",
        "| --- | --- |",
        *(f"| `{route}` | {why} |" for route, why in sorted(EXCEPTIONS.items())),
        "",
    ]
    return "\n".join(lines)


def parse_rows(text: str) -> dict[str, Row]:
    """The check rows of a rendered ``docs/parity.md``, by test."""
    rows = {}
    for line in text.splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[1] in CLIENTS and cells[3] in ("passed", "failed", "skipped"):
            rows[cells[2]] = Row(*cells)
    return rows


def diff(produced: Mapping[str, Row], documented: Mapping[str, Row]) -> list[str]:
    """Lines naming each test whose row differs between a run and the document."""
    out = []
    for test, row in sorted(produced.items()):
        if documented.get(test) != row:
            out.append(f"{test}: run {row}, docs/parity.md {documented.get(test)}")
    return out
