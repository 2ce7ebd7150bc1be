"""Vectorize v2 REST driven by Cloudflare's Python SDK and by wrangler's `vectorize`
commands, each pointed at the local platform."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import cloudflare
import pytest
from conftest import Wrangler

INDEXES = "/accounts/{account_id}/vectorize/v2/indexes"
ONE = INDEXES + "/{index_name}"
SDK, WRANGLER = "python-sdk", "wrangler"
NDJSON = {"Content-Type": "application/x-ndjson"}
# cloudflare 5.9's own insert/upsert hand the NDJSON bytes to `_post(body=...)`, which warns
# that raw bytes should travel as `content`; the documented call is this one.
pytestmark = pytest.mark.filterwarnings("ignore:Passing raw bytes as `body`:DeprecationWarning")


def vec(seed: int, dims: int = 32) -> list[float]:
    return [float((seed * 7 + i) % 11) + 1.0 for i in range(dims)]


def ndjson(*records: dict[str, object]) -> bytes:
    return "\n".join(json.dumps(r) for r in records).encode()


def seed(cf: cloudflare.Cloudflare, account: str, name: str, count: int = 3) -> None:
    body = ndjson(*({"id": f"v{i}", "values": vec(i), "metadata": {"n": i}} for i in range(count)))
    cf.vectorize.indexes.upsert(name, account_id=account, body=body, extra_headers=NDJSON)


# -- Python SDK -----------------------------------------------------------------------------


@pytest.mark.parity(f"POST {INDEXES}", client=SDK)
def test_create_index(cf: cloudflare.Cloudflare, account: str, new_index: Callable[..., str]) -> None:  # fmt: skip
    name = new_index(dimensions=64, metric="euclidean")

    got = cf.vectorize.indexes.get(name, account_id=account)

    assert got is not None and got.config.dimensions == 64 and got.config.metric == "euclidean"


@pytest.mark.parity(f"GET {INDEXES}", client=SDK)
def test_list_indexes(cf: cloudflare.Cloudflare, account: str, new_index: Callable[..., str]) -> None:  # fmt: skip
    name = new_index()

    assert name in {i.name for i in cf.vectorize.indexes.list(account_id=account)}


@pytest.mark.parity(f"GET {ONE}", client=SDK)
def test_get_missing_index_is_not_found(cf: cloudflare.Cloudflare, account: str) -> None:
    with pytest.raises(cloudflare.NotFoundError) as missing:
        cf.vectorize.indexes.get("parity-no-such-index", account_id=account)

    assert missing.value.body["errors"][0]["code"] == 3000  # type: ignore[index]


@pytest.mark.parity(f"DELETE {ONE}", client=SDK)
def test_delete_index(cf: cloudflare.Cloudflare, account: str) -> None:
    cf.vectorize.indexes.create(
        account_id=account, name="parity-gone", config={"dimensions": 32, "metric": "cosine"}
    )

    cf.vectorize.indexes.delete("parity-gone", account_id=account)

    with pytest.raises(cloudflare.NotFoundError):
        cf.vectorize.indexes.get("parity-gone", account_id=account)


@pytest.mark.parity(f"GET {ONE}/info", client=SDK)
def test_index_info_counts_vectors(cf: cloudflare.Cloudflare, account: str, new_index: Callable[..., str]) -> None:  # fmt: skip
    name = new_index()
    seed(cf, account, name, count=3)

    info = cf.vectorize.indexes.info(name, account_id=account)

    assert info is not None and info.dimensions == 32 and info.vector_count == 3


@pytest.mark.parity(f"POST {ONE}/insert", client=SDK)
def test_insert_needs_the_ndjson_content_type_as_on_cloudflare(
    cf: cloudflare.Cloudflare, account: str, new_index: Callable[..., str]
) -> None:
    name = new_index()
    body = ndjson({"id": "a", "values": vec(1)}, {"id": "b", "values": vec(2)})

    # The SDK's default content type is application/json, which Cloudflare refuses.
    with pytest.raises(cloudflare.BadRequestError) as refused:
        cf.vectorize.indexes.insert(name, account_id=account, body=body)
    inserted = cf.vectorize.indexes.insert(
        name, account_id=account, body=body, extra_headers=NDJSON
    )

    assert refused.value.body["errors"][0] == {  # type: ignore[index]
        "code": 1005,
        "message": "vectorize.unknown_content_type",
    }
    assert inserted is not None and inserted.mutation_id
    got = cf.vectorize.indexes.get_by_ids(name, account_id=account, ids=["a", "b"])
    assert sorted(v["id"] for v in got) == ["a", "b"]  # type: ignore[index, union-attr]


@pytest.mark.parity(f"POST {ONE}/upsert", client=SDK)
def test_upsert_replaces_and_names_a_bad_line(
    cf: cloudflare.Cloudflare, account: str, new_index: Callable[..., str]
) -> None:
    name = new_index()
    seed(cf, account, name, count=2)
    bad = ndjson({"id": "ok", "values": vec(1)}, {"id": "typed", "values": {"0": 0.1}})

    cf.vectorize.indexes.upsert(
        name, account_id=account, body=ndjson({"id": "v0", "values": vec(9)}), extra_headers=NDJSON
    )
    with pytest.raises(cloudflare.BadRequestError) as refused:
        cf.vectorize.indexes.upsert(name, account_id=account, body=bad, extra_headers=NDJSON)

    message = refused.value.body["errors"][0]["message"]  # type: ignore[index]
    assert message.startswith(
        "vectorize.upstream_error - failed to parse upsert vectors request in ndjson format: "
        "line Some(1) was not expected format"
    )
    got = cf.vectorize.indexes.get_by_ids(name, account_id=account, ids=["v0"])
    assert got[0]["values"] == pytest.approx(vec(9))  # type: ignore[index]


@pytest.mark.parity(f"POST {ONE}/query", client=SDK)
def test_query_finds_the_nearest(cf: cloudflare.Cloudflare, account: str, new_index: Callable[..., str]) -> None:  # fmt: skip
    name = new_index()
    seed(cf, account, name, count=3)

    out = cf.vectorize.indexes.query(
        name, account_id=account, vector=vec(2), top_k=2, return_metadata="all"
    )

    assert out is not None and out.count == 2
    assert out.matches[0].id == "v2" and out.matches[0].metadata == {"n": 2}  # type: ignore[index]


@pytest.mark.parity(f"POST {ONE}/get_by_ids", client=SDK)
def test_get_by_ids(cf: cloudflare.Cloudflare, account: str, new_index: Callable[..., str]) -> None:  # fmt: skip
    name = new_index()
    seed(cf, account, name, count=3)

    got = cf.vectorize.indexes.get_by_ids(name, account_id=account, ids=["v1", "nope"])

    assert [v["id"] for v in got] == ["v1"]  # type: ignore[index, union-attr]


@pytest.mark.parity(f"POST {ONE}/delete_by_ids", client=SDK)
def test_delete_by_ids(cf: cloudflare.Cloudflare, account: str, new_index: Callable[..., str]) -> None:  # fmt: skip
    name = new_index()
    seed(cf, account, name, count=3)

    deleted = cf.vectorize.indexes.delete_by_ids(name, account_id=account, ids=["v0"])

    assert deleted is not None and deleted.mutation_id
    assert cf.vectorize.indexes.get_by_ids(name, account_id=account, ids=["v0"]) == []


@pytest.mark.parity(f"GET {ONE}/list", client=SDK)
def test_list_vectors_pages_with_a_cursor(cf: cloudflare.Cloudflare, account: str, new_index: Callable[..., str]) -> None:  # fmt: skip
    name = new_index()
    seed(cf, account, name, count=3)

    first = cf.vectorize.indexes.list_vectors(name, account_id=account, count=2)
    assert first is not None and first.is_truncated and first.next_cursor
    rest = cf.vectorize.indexes.list_vectors(
        name, account_id=account, count=2, cursor=first.next_cursor
    )

    assert rest is not None
    ids = [v.id for v in first.vectors] + [v.id for v in rest.vectors]
    assert sorted(ids) == ["v0", "v1", "v2"] and first.total_count == 3


@pytest.mark.parity(f"POST {ONE}/metadata_index/create", client=SDK)
def test_metadata_index_create_and_filter(cf: cloudflare.Cloudflare, account: str, new_index: Callable[..., str]) -> None:  # fmt: skip
    name = new_index()
    cf.vectorize.indexes.metadata_index.create(
        name, account_id=account, property_name="n", index_type="number"
    )
    seed(cf, account, name, count=3)

    out = cf.vectorize.indexes.query(
        name, account_id=account, vector=vec(0), top_k=5, filter={"n": {"$gte": 1}}
    )

    assert out is not None and sorted(m.id for m in out.matches) == ["v1", "v2"]  # type: ignore[misc]


@pytest.mark.parity(f"GET {ONE}/metadata_index/list", client=SDK)
def test_metadata_index_list(cf: cloudflare.Cloudflare, account: str, new_index: Callable[..., str]) -> None:  # fmt: skip
    name = new_index()
    cf.vectorize.indexes.metadata_index.create(
        name, account_id=account, property_name="kind", index_type="string"
    )

    listed = cf.vectorize.indexes.metadata_index.list(name, account_id=account)

    assert listed is not None
    assert [(m.property_name, m.index_type) for m in listed.metadata_indexes or []] == [
        ("kind", "string")
    ]


@pytest.mark.parity(f"POST {ONE}/metadata_index/delete", client=SDK)
def test_metadata_index_delete(cf: cloudflare.Cloudflare, account: str, new_index: Callable[..., str]) -> None:  # fmt: skip
    name = new_index()
    cf.vectorize.indexes.metadata_index.create(
        name, account_id=account, property_name="kind", index_type="string"
    )

    cf.vectorize.indexes.metadata_index.delete(name, account_id=account, property_name="kind")

    listed = cf.vectorize.indexes.metadata_index.list(name, account_id=account)
    assert listed is not None and not listed.metadata_indexes


# -- wrangler -------------------------------------------------------------------------------


def ok(result: object) -> str:
    out = result.stdout  # type: ignore[attr-defined]
    assert result.returncode == 0, f"{out}\n{result.stderr}"  # type: ignore[attr-defined]
    return str(out)


def json_out(result: object) -> object:
    text = ok(result)
    return json.loads(text[text.index(next(c for c in text if c in "[{")) :])


@pytest.mark.parity(f"POST {INDEXES}", client=WRANGLER)
def test_wrangler_vectorize_create(wrangler: Wrangler, cf: cloudflare.Cloudflare, account: str) -> None:  # fmt: skip
    ok(wrangler("vectorize", "create", "parity-wr-create", "--dimensions=32", "--metric=cosine"))

    got = cf.vectorize.indexes.get("parity-wr-create", account_id=account)
    cf.vectorize.indexes.delete("parity-wr-create", account_id=account)
    assert got is not None and got.config.dimensions == 32


@pytest.mark.parity(f"GET {INDEXES}", client=WRANGLER)
def test_wrangler_vectorize_list(wrangler: Wrangler, new_index: Callable[..., str]) -> None:
    name = new_index()

    listed = json_out(wrangler("vectorize", "list", "--json"))

    assert name in {i["name"] for i in listed}  # type: ignore[attr-defined]


@pytest.mark.parity(f"GET {ONE}", client=WRANGLER)
def test_wrangler_vectorize_get(wrangler: Wrangler, new_index: Callable[..., str]) -> None:
    name = new_index(dimensions=48)

    got = json_out(wrangler("vectorize", "get", name, "--json"))

    assert got["config"] == {"dimensions": 48, "metric": "cosine"}  # type: ignore[index]


@pytest.mark.parity(f"DELETE {ONE}", client=WRANGLER)
def test_wrangler_vectorize_delete(wrangler: Wrangler, cf: cloudflare.Cloudflare, account: str) -> None:  # fmt: skip
    cf.vectorize.indexes.create(
        account_id=account, name="parity-wr-gone", config={"dimensions": 32, "metric": "cosine"}
    )

    ok(wrangler("vectorize", "delete", "parity-wr-gone", "--force"))

    with pytest.raises(cloudflare.NotFoundError):
        cf.vectorize.indexes.get("parity-wr-gone", account_id=account)


@pytest.mark.parity(f"GET {ONE}/info", client=WRANGLER)
def test_wrangler_vectorize_info(wrangler: Wrangler, cf: cloudflare.Cloudflare, account: str, new_index: Callable[..., str]) -> None:  # fmt: skip
    name = new_index()
    seed(cf, account, name, count=2)

    info = json_out(wrangler("vectorize", "info", name, "--json"))

    assert info["vectorCount"] == 2 and info["dimensions"] == 32  # type: ignore[index]


@pytest.mark.parity(f"POST {ONE}/insert", client=WRANGLER)
def test_wrangler_vectorize_insert_from_a_file(
    wrangler: Wrangler, cf: cloudflare.Cloudflare, account: str, new_index: Callable[..., str],
    tmp_path: Path,
) -> None:  # fmt: skip
    name = new_index()
    data = tmp_path / "vectors.ndjson"
    data.write_bytes(ndjson(*({"id": f"w{i}", "values": vec(i)} for i in range(3))))

    ok(wrangler("vectorize", "insert", name, f"--file={data}"))

    got = cf.vectorize.indexes.get_by_ids(name, account_id=account, ids=["w0", "w1", "w2"])
    assert len(got) == 3  # type: ignore[arg-type]


@pytest.mark.parity(f"POST {ONE}/upsert", client=WRANGLER)
def test_wrangler_vectorize_upsert_from_a_file(
    wrangler: Wrangler, cf: cloudflare.Cloudflare, account: str, new_index: Callable[..., str],
    tmp_path: Path,
) -> None:  # fmt: skip
    name = new_index()
    seed(cf, account, name, count=1)
    data = tmp_path / "vectors.ndjson"
    data.write_bytes(ndjson({"id": "v0", "values": vec(5), "metadata": {"n": 50}}))

    ok(wrangler("vectorize", "upsert", name, f"--file={data}"))

    got = cf.vectorize.indexes.get_by_ids(name, account_id=account, ids=["v0"])
    assert got[0]["metadata"] == {"n": 50}  # type: ignore[index]


@pytest.mark.parity(f"POST {ONE}/query", client=WRANGLER)
def test_wrangler_vectorize_query(wrangler: Wrangler, cf: cloudflare.Cloudflare, account: str, new_index: Callable[..., str]) -> None:  # fmt: skip
    name = new_index()
    seed(cf, account, name, count=3)

    out = ok(wrangler("vectorize", "query", name, "--vector", *map(str, vec(1)), "--top-k=1"))

    assert '"id": "v1"' in out


@pytest.mark.parity(f"POST {ONE}/get_by_ids", client=WRANGLER)
def test_wrangler_vectorize_get_vectors(wrangler: Wrangler, cf: cloudflare.Cloudflare, account: str, new_index: Callable[..., str]) -> None:  # fmt: skip
    name = new_index()
    seed(cf, account, name, count=2)

    out = ok(wrangler("vectorize", "get-vectors", name, "--ids", "v1"))

    assert '"id": "v1"' in out and '"v0"' not in out


@pytest.mark.parity(f"POST {ONE}/delete_by_ids", client=WRANGLER)
def test_wrangler_vectorize_delete_vectors(wrangler: Wrangler, cf: cloudflare.Cloudflare, account: str, new_index: Callable[..., str]) -> None:  # fmt: skip
    name = new_index()
    seed(cf, account, name, count=2)

    ok(wrangler("vectorize", "delete-vectors", name, "--ids", "v1"))

    assert cf.vectorize.indexes.get_by_ids(name, account_id=account, ids=["v1"]) == []


@pytest.mark.parity(f"GET {ONE}/list", client=WRANGLER)
def test_wrangler_vectorize_list_vectors(wrangler: Wrangler, cf: cloudflare.Cloudflare, account: str, new_index: Callable[..., str]) -> None:  # fmt: skip
    name = new_index()
    seed(cf, account, name, count=3)

    out = ok(wrangler("vectorize", "list-vectors", name, "--json"))

    assert all(f'"v{i}"' in out for i in range(3))


@pytest.mark.parity(f"POST {ONE}/metadata_index/create", client=WRANGLER)
def test_wrangler_vectorize_create_metadata_index(wrangler: Wrangler, cf: cloudflare.Cloudflare, account: str, new_index: Callable[..., str]) -> None:  # fmt: skip
    name = new_index()

    ok(wrangler("vectorize", "create-metadata-index", name, "--property-name=n", "--type=number"))

    listed = cf.vectorize.indexes.metadata_index.list(name, account_id=account)
    assert listed is not None and [m.property_name for m in listed.metadata_indexes or []] == ["n"]


@pytest.mark.parity(f"GET {ONE}/metadata_index/list", client=WRANGLER)
def test_wrangler_vectorize_list_metadata_index(wrangler: Wrangler, cf: cloudflare.Cloudflare, account: str, new_index: Callable[..., str]) -> None:  # fmt: skip
    name = new_index()
    cf.vectorize.indexes.metadata_index.create(
        name, account_id=account, property_name="kind", index_type="string"
    )

    out = ok(wrangler("vectorize", "list-metadata-index", name, "--json"))

    assert '"kind"' in out and '"string"' in out


@pytest.mark.parity(f"POST {ONE}/metadata_index/delete", client=WRANGLER)
def test_wrangler_vectorize_delete_metadata_index(wrangler: Wrangler, cf: cloudflare.Cloudflare, account: str, new_index: Callable[..., str]) -> None:  # fmt: skip
    name = new_index()
    cf.vectorize.indexes.metadata_index.create(
        name, account_id=account, property_name="kind", index_type="string"
    )

    ok(wrangler("vectorize", "delete-metadata-index", name, "--property-name=kind"))

    listed = cf.vectorize.indexes.metadata_index.list(name, account_id=account)
    assert listed is not None and not listed.metadata_indexes
