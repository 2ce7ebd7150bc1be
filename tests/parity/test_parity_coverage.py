"""The suite covers the platform: every route the front door serves has a parity test (or
is listed, with its reason, as one no official client calls), and ``docs/parity.md`` lists
every parity test there is (the run itself checks their results, see conftest)."""

from __future__ import annotations

import pytest
from conftest import WRITE
from parity_routes import CLIENTS, DOC, EXCEPTIONS, declared, parse_rows, served_routes, uncovered


def test_every_served_route_has_a_parity_test() -> None:
    routes = served_routes()
    operations = [operation for operation, _ in declared().values()]

    assert uncovered(routes, operations) == []
    assert set(EXCEPTIONS) <= set(routes), "an exception names a route no longer served"


def test_every_parity_test_names_a_known_client() -> None:
    assert {client for _, client in declared().values()} <= set(CLIENTS)


@pytest.mark.skipif(WRITE, reason="this run rewrites docs/parity.md")
def test_parity_doc_lists_every_parity_test_and_no_other() -> None:
    documented = parse_rows(DOC.read_text()) if DOC.exists() else {}
    tests = declared()

    assert {c: (r.operation, r.client) for c, r in documented.items()} == tests, (
        "docs/parity.md is stale: run `make parity` to rewrite it"
    )
