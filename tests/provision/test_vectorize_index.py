"""VectorizeIndexProvider methods against a fake Cloudflare (httpx.MockTransport), its
pickling, and the resource's registration under pulumi mocks."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from typing import Any

import dill
import httpx
import pulumi
import pytest
from pulumi.dynamic import ConfigureRequest
from pulumi.dynamic.config import Config
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime import rpc
from support.pulumi_mocks import Mocks, use_mocks

from cfai.provision import vectorize_index as vi
from cfai.provision.rest import CloudflareApiError, CloudflareClient
from cfai.provision.vectorize_index import (
    VectorizeIndex,
    VectorizeIndexArgs,
    VectorizeIndexProvider,
)

TOKEN = "tok-SECRET-0123456789abcdef"
ACCOUNT = "a" * 32
PATH = re.compile(
    r"/client/v4/accounts/(?P<acct>[^/]+)/vectorize/v2/indexes(?:/(?P<name>[^/]+))?(?P<tail>/.*)?$"
)


def _ok(result: Any, status: int = 200) -> httpx.Response:
    return httpx.Response(
        status, json={"result": result, "success": True, "errors": [], "messages": []}
    )


def _err(status: int, code: int, message: str) -> httpx.Response:
    body = {
        "result": None,
        "success": False,
        "errors": [{"code": code, "message": message}],
        "messages": [],
    }
    return httpx.Response(status, json=body)


class FakeVectorize:
    """The index-management half of Vectorize v2, answering as Cloudflare does."""

    def __init__(self) -> None:
        self.indexes: dict[str, dict[str, Any]] = {}
        self.metadata: dict[str, dict[str, str]] = {}
        self.calls: list[str] = []
        self.fail_next: httpx.Response | None = None
        self.base_urls: list[str] = []

    def add(
        self, name: str, dimensions: int, metric: str, description: str = "", **metadata: str
    ) -> None:
        self.indexes[name] = {
            "name": name,
            "description": description,
            "config": {"dimensions": dimensions, "metric": metric},
            "created_on": "2026-01-01T00:00:00.000000Z",
            "modified_on": "2026-01-01T00:00:00.000000Z",
        }
        self.metadata[name] = dict(metadata)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        match = PATH.match(request.url.path)
        assert match and match["acct"] == ACCOUNT, request.url
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        name, tail = match["name"], match["tail"] or ""
        self.calls.append(f"{request.method} {name or ''}{tail}".strip())
        if self.fail_next is not None:
            answer, self.fail_next = self.fail_next, None
            return answer
        body = json.loads(request.content) if request.content else {}
        if name is None and request.method == "POST":
            if body["name"] in self.indexes:
                return _err(
                    409, 3002, f'vectorize.index.duplicate_name - Index name "{body["name"]}"'
                )
            self.add(
                body["name"],
                body["config"]["dimensions"],
                body["config"]["metric"],
                body.get("description", ""),
            )
            return _ok(self.indexes[body["name"]], 201)
        if name not in self.indexes:
            return _err(404, 3000, f'vectorize.index.not_found - Index name "{name}"')
        meta = self.metadata[name]
        if (request.method, tail) == ("GET", ""):
            return _ok(self.indexes[name])
        if (request.method, tail) == ("DELETE", ""):
            del self.indexes[name], self.metadata[name]
            return _ok(None)
        if tail == "/metadata_index/list":
            return _ok(
                {"metadataIndexes": [{"propertyName": p, "indexType": t} for p, t in meta.items()]}
            )
        if tail == "/metadata_index/create":
            assert body["propertyName"] not in meta, "creating an existing metadata index is a 409"
            meta[body["propertyName"]] = body["indexType"]
            return _ok({"mutationId": "m"})
        if tail == "/metadata_index/delete":
            del meta[body["propertyName"]]
            return _ok({"mutationId": "m"})
        raise AssertionError(f"unexpected call {request.method} {request.url}")


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeVectorize]:
    server = FakeVectorize()

    def factory(base_url: str, token: str, account_id: str) -> CloudflareClient:
        server.base_urls.append(base_url)
        transport = httpx.MockTransport(server)
        return CloudflareClient(
            base_url, token=token, account_id=account_id, transport=transport, sleep=lambda _: None
        )

    monkeypatch.setattr(vi, "_new_client", factory)
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    monkeypatch.delenv("CFAI_CLOUDFLARE_BASE_URL", raising=False)
    monkeypatch.delenv("CLOUDFLARE_BASE_URL", raising=False)
    yield server


def props(**overrides: Any) -> dict[str, Any]:
    base = {
        "accountId": ACCOUNT,
        "indexName": "docs",
        "dimensions": 768.0,  # the engine sends numbers as floats
        "metric": "cosine",
        "metadataIndexes": [{"propertyName": "source", "indexType": "string"}],
        "__provider": "serialized",
    }
    return {**base, **overrides}


def test_create_creates_the_index_and_its_metadata_indexes(fake: FakeVectorize) -> None:
    result = VectorizeIndexProvider().create(props(description="Docs"))
    assert result.id == "docs"
    assert fake.indexes["docs"]["config"] == {"dimensions": 768, "metric": "cosine"}
    assert fake.indexes["docs"]["description"] == "Docs"
    assert fake.metadata["docs"] == {"source": "string"}
    assert result.outs == {
        "accountId": ACCOUNT,
        "indexName": "docs",
        "dimensions": 768,
        "metric": "cosine",
        "description": "Docs",
        "metadataIndexes": [{"propertyName": "source", "indexType": "string"}],
        "createdOn": "2026-01-01T00:00:00.000000Z",
        "modifiedOn": "2026-01-01T00:00:00.000000Z",
    }
    assert fake.base_urls == ["https://api.cloudflare.com/client/v4"]


def test_create_adopts_an_identical_index_and_reconciles_its_metadata_indexes(
    fake: FakeVectorize,
) -> None:
    fake.add("docs", 768, "cosine", source="number", stale="boolean")
    result = VectorizeIndexProvider().create(props())
    assert result.id == "docs"
    assert fake.metadata["docs"] == {"source": "string"}, (
        "retyped and stale metadata indexes are reconciled"
    )
    assert fake.calls.count("POST") == 1 and "DELETE docs" not in fake.calls


@pytest.mark.parametrize(
    ("existing", "shown"),
    [
        ({"dimensions": 384, "metric": "cosine"}, "dimensions=384 metric=cosine"),
        ({"dimensions": 768, "metric": "euclidean"}, "dimensions=768 metric=euclidean"),
        ({"dimensions": 768, "metric": "cosine", "description": "other"}, "description='other'"),
    ],
)
def test_create_refuses_an_existing_index_with_another_config(
    fake: FakeVectorize, existing: dict[str, Any], shown: str
) -> None:
    fake.add("docs", **existing)
    with pytest.raises(CloudflareApiError) as caught:
        VectorizeIndexProvider().create(props())
    text = str(caught.value)
    assert text.startswith(
        "409 create vectorize_index 'docs': an index of this name already exists with "
    )
    assert shown in text and "declared dimensions=768 metric=cosine description=None" in text
    assert text.endswith("(code 3002)")
    assert fake.metadata["docs"] == {}, "nothing is touched on a conflict"


def test_read_reports_a_deleted_index_as_gone(fake: FakeVectorize) -> None:
    result = VectorizeIndexProvider().read("docs", props())
    assert (result.id, result.outs) == (None, {})


def test_read_detects_drift_and_realigns_inputs(fake: FakeVectorize) -> None:
    fake.add("docs", 768, "cosine", description="edited in the dashboard", lang="string")
    provider = VectorizeIndexProvider()
    result = provider.read("docs", props())
    assert result.id == "docs"
    assert result.outs is not None and result.inputs is not None
    assert result.outs["description"] == "edited in the dashboard"
    assert result.outs["metadataIndexes"] == [{"propertyName": "lang", "indexType": "string"}]
    assert "__provider" not in result.inputs and "createdOn" not in result.inputs
    # The next `up` then plans to put the declaration back (the description replaces).
    diff = provider.diff("docs", result.outs, props())
    assert diff.changes is True and diff.replaces == ["description"]


def test_read_of_an_unchanged_index_shows_no_diff(fake: FakeVectorize) -> None:
    provider = VectorizeIndexProvider()
    created = provider.create(props())
    read = provider.read("docs", {**props(), **(created.outs or {})})
    assert read.outs == created.outs
    diff = provider.diff("docs", read.outs or {}, props())
    assert (diff.changes, diff.replaces) == (False, [])


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("dimensions", 1024.0),
        ("metric", "dot-product"),
        ("indexName", "docs-v2"),
        ("accountId", "b" * 32),
        ("description", "now described"),
        ("indexName", rpc.UNKNOWN),
    ],
)
def test_diff_replaces_on_immutable_fields(key: str, value: Any) -> None:
    olds = {**props(), "dimensions": 768, "createdOn": "t", "modifiedOn": "t"}
    diff = VectorizeIndexProvider().diff("docs", olds, props(**{key: value}))
    assert diff.changes is True
    assert diff.replaces == [key]
    assert diff.delete_before_replace is True


def test_diff_metadata_indexes_and_base_url_update_in_place() -> None:
    olds = {**props(), "dimensions": 768, "createdOn": "t"}
    news = props(
        metadataIndexes=[{"propertyName": "lang", "indexType": "string"}],
        baseUrl="http://127.0.0.1:1",
    )
    diff = VectorizeIndexProvider().diff("docs", olds, news)
    assert (diff.changes, diff.replaces) == (True, [])


def test_diff_reports_no_change_explicitly() -> None:
    olds = {**props(), "dimensions": 768, "description": None, "createdOn": "t"}
    diff = VectorizeIndexProvider().diff("docs", olds, props(description=""))
    assert diff.changes is False and diff.replaces == []


def test_update_creates_deletes_and_retypes_metadata_indexes(fake: FakeVectorize) -> None:
    fake.add("docs", 768, "cosine", source="string", stale="number", year="string")
    news = props(
        metadataIndexes=[
            {"propertyName": "source", "indexType": "string"},
            {"propertyName": "year", "indexType": "number"},
            {"propertyName": "lang", "indexType": "string"},
        ]
    )
    result = VectorizeIndexProvider().update("docs", props(), news)
    assert fake.metadata["docs"] == {"source": "string", "year": "number", "lang": "string"}
    assert "POST" not in fake.calls and "DELETE docs" not in fake.calls, "the index itself is kept"
    assert result.outs is not None and result.outs["metadataIndexes"] == [
        {"propertyName": "lang", "indexType": "string"},
        {"propertyName": "source", "indexType": "string"},
        {"propertyName": "year", "indexType": "number"},
    ]


def test_delete_removes_the_index_and_treats_404_as_done(fake: FakeVectorize) -> None:
    fake.add("docs", 768, "cosine")
    provider = VectorizeIndexProvider()
    provider.delete("docs", props())
    assert "docs" not in fake.indexes
    provider.delete("docs", props())  # already gone: no error


def test_delete_reports_other_failures(fake: FakeVectorize) -> None:
    fake.add("docs", 768, "cosine")
    fake.fail_next = _err(403, 10000, "Authentication error")
    with pytest.raises(
        CloudflareApiError, match=r"^403 delete vectorize_index 'docs': Authentication error"
    ):
        VectorizeIndexProvider().delete("docs", props())


def test_token_comes_from_stack_config_before_the_environment(
    fake: FakeVectorize, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", "a-stale-token")
    provider = VectorizeIndexProvider()
    provider.configure(ConfigureRequest(Config({"cloudflare:apiToken": TOKEN}, "cfai")))
    result = provider.create(props())  # the fake asserts the bearer token
    assert TOKEN not in json.dumps(result.outs)


def test_missing_token_is_a_clear_user_error(
    fake: FakeVectorize, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CLOUDFLARE_API_TOKEN")
    with pytest.raises(CloudflareApiError) as caught:
        VectorizeIndexProvider().create(props())
    assert "set CLOUDFLARE_API_TOKEN" in str(caught.value) and caught.value.user_fault
    assert fake.calls == []


def test_base_url_comes_from_the_input_then_the_environment(
    fake: FakeVectorize, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CFAI_CLOUDFLARE_BASE_URL", "http://127.0.0.1:9/client/v4")
    provider = VectorizeIndexProvider()
    provider.read("docs", props())
    provider.read("docs", props(baseUrl="http://127.0.0.1:8/client/v4"))
    assert fake.base_urls == ["http://127.0.0.1:9/client/v4", "http://127.0.0.1:8/client/v4"]
    # The pulumi-cloudflare provider's own variable and config key come first.
    monkeypatch.setenv("CLOUDFLARE_BASE_URL", "http://127.0.0.1:7/client/v4")
    provider.read("docs", props())
    provider.configure(
        ConfigureRequest(Config({"cloudflare:baseUrl": "http://127.0.0.1:6/client/v4"}, "cfai"))
    )
    provider.read("docs", props())
    provider.read("docs", props(baseUrl="http://127.0.0.1:8/client/v4"))
    assert fake.base_urls[2:] == [
        "http://127.0.0.1:7/client/v4",
        "http://127.0.0.1:6/client/v4",
        "http://127.0.0.1:8/client/v4",
    ]


def test_check_names_every_invalid_property() -> None:
    news = props(
        dimensions=8.0,
        metric="manhattan",
        metadataIndexes=[{"propertyName": f"p{i}", "indexType": "date"} for i in range(11)],
    )
    result = VectorizeIndexProvider().check({}, news)
    failed = [(f.property, f.reason) for f in result.failures]
    assert ("dimensions", "must be an integer 32-1536, got 8") in failed
    assert ("metric", "must be one of cosine, euclidean, dot-product, got 'manhattan'") in failed
    assert ("metadataIndexes", "at most 10 per index, got 11") in failed
    assert (
        "metadataIndexes",
        "'p0': type must be one of string, number, boolean, got 'date'",
    ) in failed
    assert VectorizeIndexProvider().check({}, props()).failures == []
    assert VectorizeIndexProvider().check({}, props(dimensions=rpc.UNKNOWN)).failures == []


def test_provider_pickles_by_reference_without_client_or_token() -> None:
    provider = VectorizeIndexProvider()
    provider.configure(ConfigureRequest(Config({"cloudflare:apiToken": TOKEN}, "cfai")))
    raw = base64.b64decode(serialize_provider(provider))
    assert TOKEN.encode() not in raw
    assert b"cfai.provision.vectorize_index" in raw and b"VectorizeIndexProvider" in raw
    assert len(raw) < 400, "by reference: a module path, not bytecode"
    again = dill.loads(raw)
    assert type(again) is VectorizeIndexProvider
    assert vars(again) == {"_configured_token": None, "_configured_base_url": None}


# -- registration under pulumi mocks ---------------------------------------------------------


def _index_mocks() -> Mocks:
    """The engine creating an index: its id is its name; Cloudflare adds the timestamps."""
    return use_mocks(
        Mocks(
            ids=lambda args: str(args.inputs["indexName"]),
            extra=lambda args: {
                "createdOn": "2026-01-01T00:00:00Z",
                "modifiedOn": "2026-01-01T00:00:00Z",
            },
        ),
        stack="test",
    )


def test_resource_registers_as_a_dynamic_cloudflare_vectorize_index() -> None:
    mocks = _index_mocks()

    @pulumi.runtime.test
    def program() -> Any:
        index = VectorizeIndex(
            "docs",
            VectorizeIndexArgs(
                account_id=ACCOUNT,
                index_name="cfai-test-docs",
                dimensions=768,
                metric="cosine",
                metadata_indexes={"source": "string", "year": pulumi.Output.from_input("number")},
            ),
        )

        def check(values: list[Any]) -> None:
            (args,) = mocks.registered
            assert args.typ == "pulumi-python:dynamic/cloudflare:VectorizeIndex"
            assert args.custom
            inputs = {k: v for k, v in args.inputs.items() if k != "__provider"}
            assert inputs == {
                "accountId": ACCOUNT,
                "indexName": "cfai-test-docs",
                "dimensions": 768.0,
                "metric": "cosine",
                "metadataIndexes": [
                    {"indexType": "string", "propertyName": "source"},
                    {"indexType": "number", "propertyName": "year"},
                ],
            }
            assert TOKEN not in json.dumps(args.inputs)
            name, dims, metadata, created, id_ = values
            assert (name, dims, id_) == ("cfai-test-docs", 768, "cfai-test-docs")
            assert metadata == {"source": "string", "year": "number"}
            assert created == "2026-01-01T00:00:00Z"

        return pulumi.Output.all(
            index.index_name, index.dimensions, index.metadata_indexes, index.created_on, index.id
        ).apply(check)

    program()
    assert len(mocks.registered) == 1, "the check ran"


def test_invalid_declaration_fails_at_construction() -> None:
    _index_mocks()
    with pytest.raises(
        ValueError, match=r"vectorize_index 'docs': dimensions: must be an integer 32-1536, got 0"
    ):
        VectorizeIndex(
            "docs",
            VectorizeIndexArgs(
                account_id=ACCOUNT, index_name="docs", dimensions=0, metric="cosine"
            ),
        )


def test_exported_members() -> None:
    assert sorted(vi.__all__) == ["VectorizeIndex", "VectorizeIndexArgs", "VectorizeIndexProvider"]
