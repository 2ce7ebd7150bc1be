"""CloudflareClient against httpx.MockTransport: envelope, retries, errors, wire shapes."""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from cfai.errors import CfaiError
from cfai.provision import rest
from cfai.provision.rest import CloudflareApiError, CloudflareClient, CloudflareUnreachableError

TOKEN = "tok-SECRET-0123456789abcdef"
ACCOUNT = "a" * 32
BASE = "https://api.cloudflare.com/client/v4"
INDEXES = f"/client/v4/accounts/{ACCOUNT}/vectorize/v2/indexes"

Handler = Callable[[httpx.Request], httpx.Response]


def ok(result: Any, status: int = 200, **headers: str) -> httpx.Response:
    body = {"result": result, "success": True, "errors": [], "messages": []}
    return httpx.Response(status, json=body, headers=headers)


def fail(status: int, code: int, message: str, **headers: str) -> httpx.Response:
    body = {
        "result": None,
        "success": False,
        "errors": [{"code": code, "message": message}],
        "messages": [],
    }
    return httpx.Response(status, json=body, headers=headers)


class Recorder:
    """A scripted server: answers in order, records requests and sleeps."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []
        self.sleeps: list[float] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def client(self, **kwargs: Any) -> CloudflareClient:
        return CloudflareClient(
            BASE,
            token=TOKEN,
            account_id=ACCOUNT,
            transport=httpx.MockTransport(self),
            sleep=self.sleeps.append,
            **kwargs,
        )


def test_request_returns_envelope_result_and_sends_bearer_token() -> None:
    server = Recorder(ok({"name": "docs", "config": {"dimensions": 768, "metric": "cosine"}}))
    with server.client() as cf:
        index = cf.vectorize.get_index("docs")
    assert index["config"] == {"dimensions": 768, "metric": "cosine"}
    (request,) = server.requests
    assert request.method == "GET"
    assert request.url.path == f"{INDEXES}/docs"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"


def test_error_envelope_raises_typed_error_naming_action_and_resource() -> None:
    server = Recorder(fail(404, 3000, 'vectorize.index.not_found - Index name "docs"'))
    with server.client() as cf, pytest.raises(CloudflareApiError) as caught:
        cf.vectorize.get_index("docs")
    err = caught.value
    assert (err.status, err.code, err.action, err.resource) == (
        404,
        3000,
        "get",
        "vectorize_index 'docs'",
    )
    assert (
        str(err)
        == """404 get vectorize_index 'docs': vectorize.index.not_found - Index name "docs" (code 3000)"""
    )
    assert err.not_found and err.user_fault
    assert isinstance(err, CfaiError)
    assert len(server.requests) == 1, "a 4xx other than 429 is not retried"


def test_create_error_names_the_index_although_the_path_does_not() -> None:
    server = Recorder(fail(409, 3002, 'vectorize.index.duplicate_name - Index name "docs"'))
    with server.client() as cf, pytest.raises(CloudflareApiError) as caught:
        cf.vectorize.create_index("docs", dimensions=768, metric="cosine")
    assert str(caught.value).startswith(
        "409 create vectorize_index 'docs': vectorize.index.duplicate_name"
    )
    assert server.requests[0].url.path == INDEXES
    assert json.loads(server.requests[0].content) == {
        "name": "docs",
        "config": {"dimensions": 768, "metric": "cosine"},
    }


def test_429_with_retry_after_is_retried_after_the_hinted_wait_then_succeeds() -> None:
    server = Recorder(
        fail(429, 10013, "rate limited", **{"retry-after": "3"}),
        fail(429, 10013, "rate limited", **{"retry-after": "1.5"}),
        ok([]),
    )
    with server.client() as cf:
        assert cf.vectorize.list_indexes() == []
    assert server.sleeps == [3.0, 1.5]
    assert len(server.requests) == 3


def test_retry_after_is_capped() -> None:
    server = Recorder(fail(429, 10013, "slow down", **{"retry-after": "3600"}), ok([]))
    with server.client(max_retry_after=20.0) as cf:
        cf.vectorize.list_indexes()
    assert server.sleeps == [20.0]


def test_retry_after_as_http_date_is_honoured() -> None:
    server = Recorder(
        fail(503, 1000, "busy", **{"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}), ok([])
    )
    with server.client() as cf:
        cf.vectorize.list_indexes()
    assert server.sleeps == [0.0], "a date in the past means retry now"


def test_5xx_is_retried_with_exponential_backoff_then_gives_up_with_a_clear_error() -> None:
    server = Recorder(*[fail(503, 1000, "service unavailable") for _ in range(4)])
    with (
        server.client(max_retries=3, backoff=0.5) as cf,
        pytest.raises(CloudflareApiError) as caught,
    ):
        cf.vectorize.delete_index("docs")
    assert server.sleeps == [0.5, 1.0, 2.0]
    assert len(server.requests) == 4
    err = caught.value
    assert err.status == 503 and not err.user_fault and err.attempts == 4
    assert str(err) == (
        "503 delete vectorize_index 'docs': service unavailable (code 1000); gave up after 4 attempts"
    )


def test_non_envelope_5xx_reports_the_reason_phrase() -> None:
    server = Recorder(httpx.Response(502, text="<html>bad gateway</html>"))
    with server.client(max_retries=0) as cf, pytest.raises(CloudflareApiError) as caught:
        cf.vectorize.info("docs")
    assert str(caught.value) == "502 info vectorize_index 'docs': Bad Gateway"


def test_empty_success_answer_is_no_result_but_a_foreign_body_is_an_error() -> None:
    server = Recorder(httpx.Response(204), httpx.Response(200, json=[1, 2]))
    with server.client() as cf:
        cf.vectorize.delete_index("docs")
        with pytest.raises(
            CloudflareApiError, match=r"^200 list vectorize_index: answer is not a v4 envelope$"
        ):
            cf.vectorize.list_indexes()


def test_connect_errors_are_retried_then_reported_unreachable() -> None:
    refused = httpx.ConnectError("connection refused")
    server = Recorder(refused, refused, ok({"name": "docs"}))
    with server.client() as cf:
        assert cf.vectorize.get_index("docs") == {"name": "docs"}
    assert server.sleeps == [0.5, 1.0]

    server = Recorder(refused, refused)
    with server.client(max_retries=1) as cf, pytest.raises(CloudflareUnreachableError) as caught:
        cf.vectorize.get_index("docs")
    assert caught.value.attempts == 2
    assert "get vectorize_index 'docs': no answer" in str(caught.value)


def test_read_timeout_on_a_post_is_not_retried() -> None:
    """A POST that may have reached Cloudflare is not sent twice."""
    server = Recorder(httpx.ReadTimeout("timed out"))
    with server.client() as cf, pytest.raises(CloudflareUnreachableError):
        cf.vectorize.create_index("docs", dimensions=32, metric="cosine")
    assert len(server.requests) == 1


def test_token_never_appears_in_errors_or_repr() -> None:
    echo = fail(403, 9109, f"Invalid access token {TOKEN}")
    server = Recorder(echo, httpx.ConnectError(f"proxy refused Bearer {TOKEN}"))
    cf = server.client(max_retries=0)
    with pytest.raises(CloudflareApiError) as api_err:
        cf.vectorize.list_indexes()
    with pytest.raises(CloudflareUnreachableError) as net_err:
        cf.vectorize.list_indexes()
    for text in (str(api_err.value), repr(api_err.value), str(net_err.value), repr(cf)):
        assert TOKEN not in text
    assert "[redacted]" in str(api_err.value)
    assert repr(cf) == f"CloudflareClient(base_url={BASE!r}, account_id={ACCOUNT!r})"
    with pytest.raises(TypeError):
        pickle.dumps(cf)
    cf.close()


def test_api_error_pickles_without_losing_fields() -> None:
    err = CloudflareApiError(503, 1000, "busy", "get", "vectorize_index 'docs'", attempts=3)
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == str(err)


def test_insert_and_upsert_send_ndjson() -> None:
    server = Recorder(ok({"mutationId": "m1"}), ok({"mutationId": "m2"}))
    vectors = [
        {"id": "a", "values": [0.1, 0.2]},
        {"id": "b", "values": [0.3, 0.4], "metadata": {"k": "v"}},
    ]
    with server.client() as cf:
        assert cf.vectorize.insert("docs", vectors) == {"mutationId": "m1"}
        cf.vectorize.upsert("docs", vectors[:1], unparsable_behavior="discard")
    insert, upsert = server.requests
    assert insert.url.path == f"{INDEXES}/docs/insert"
    assert insert.headers["content-type"] == "application/x-ndjson"
    lines = insert.content.decode().splitlines()
    assert [json.loads(line) for line in lines] == vectors
    assert insert.content.endswith(b"\n")
    assert upsert.url.path == f"{INDEXES}/docs/upsert"
    assert upsert.url.params["unparsable-behavior"] == "discard"


def test_query_and_id_calls_send_camelcase_json() -> None:
    server = Recorder(ok({"count": 0, "matches": []}), ok([]), ok({"mutationId": "m"}))
    with server.client() as cf:
        cf.vectorize.query(
            "docs", [0.5, 0.5], top_k=3, return_metadata="all", filter={"k": "v"}, namespace="n"
        )
        cf.vectorize.get_by_ids("docs", ["a"])
        cf.vectorize.delete_by_ids("docs", ["a", "b"])
    query, get, delete = server.requests
    assert json.loads(query.content) == {
        "vector": [0.5, 0.5],
        "topK": 3,
        "returnMetadata": "all",
        "filter": {"k": "v"},
        "namespace": "n",
    }
    assert (get.url.path, json.loads(get.content)) == (f"{INDEXES}/docs/get_by_ids", {"ids": ["a"]})
    assert (delete.url.path, json.loads(delete.content)) == (
        f"{INDEXES}/docs/delete_by_ids",
        {"ids": ["a", "b"]},
    )


def test_metadata_index_calls() -> None:
    listed = {"metadataIndexes": [{"propertyName": "source", "indexType": "string"}]}
    server = Recorder(
        ok({"mutationId": "m"}), ok(listed), fail(404, 3007, "no such metadata index")
    )
    with server.client() as cf:
        cf.vectorize.create_metadata_index("docs", "source", "string")
        assert cf.vectorize.list_metadata_indexes("docs") == listed["metadataIndexes"]
        with pytest.raises(CloudflareApiError) as caught:
            cf.vectorize.delete_metadata_index("docs", "lang")
    create, _, delete = server.requests
    assert create.url.path == f"{INDEXES}/docs/metadata_index/create"
    assert json.loads(create.content) == {"propertyName": "source", "indexType": "string"}
    assert json.loads(delete.content) == {"propertyName": "lang"}
    assert str(caught.value).startswith(
        "404 delete metadata_index 'lang' on vectorize_index 'docs':"
    )


def test_gateway_crud_paths_and_full_replace_update() -> None:
    config = {"id": "main", "cache_ttl": 60, "collect_logs": True}
    server = Recorder(ok(config), ok(config), ok({**config, "cache_ttl": 0}), ok({"id": "main"}))
    gateways = f"/client/v4/accounts/{ACCOUNT}/ai-gateway/gateways"
    with server.client() as cf:
        cf.ai_gateway.create(config)
        cf.ai_gateway.get("main")
        cf.ai_gateway.update("main", {**config, "cache_ttl": 0})
        cf.ai_gateway.delete("main")
    create, get, update, delete = server.requests
    assert (create.method, create.url.path, json.loads(create.content)) == (
        "POST",
        gateways,
        config,
    )
    assert (get.method, get.url.path) == ("GET", f"{gateways}/main")
    assert update.method == "PUT" and update.url.path == f"{gateways}/main"
    assert json.loads(update.content) == {"cache_ttl": 0, "collect_logs": True}
    assert (delete.method, delete.url.path) == ("DELETE", f"{gateways}/main")


def test_gateway_list_reads_every_page() -> None:
    server = Recorder(ok([{"id": "a"}, {"id": "b"}]), ok([{"id": "c"}]))
    with server.client() as cf:
        assert [g["id"] for g in cf.ai_gateway.list(per_page=2)] == ["a", "b", "c"]
    assert [r.url.params["page"] for r in server.requests] == ["1", "2"]


def test_gateway_errors_name_the_gateway() -> None:
    server = Recorder(fail(404, 7002, "Not Found"))
    with server.client() as cf, pytest.raises(CloudflareApiError) as caught:
        cf.ai_gateway.get("main")
    assert str(caught.value) == "404 get ai_gateway 'main': Not Found (code 7002)"


def test_exported_members() -> None:
    assert sorted(rest.__all__) == sorted(
        [
            "DEFAULT_BASE_URL",
            "CloudflareApiError",
            "CloudflareClient",
            "CloudflareError",
            "CloudflareUnreachableError",
            "NoAnswer",
            "fetch",
            "send",
        ]
    )


def test_send_answers_no_answer_instead_of_raising_httpx_errors() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise {
            "/connect": httpx.ConnectError("connection refused"),
            "/read": httpx.ReadTimeout("timed out"),
            "/proto": httpx.UnsupportedProtocol("no such scheme"),
        }[request.url.path]

    with httpx.Client(transport=httpx.MockTransport(refuse)) as http:
        answers = {
            p: rest.send(http, "GET", f"http://x{p}") for p in ("/connect", "/read", "/proto")
        }
    assert answers == {
        "/connect": rest.NoAnswer("ConnectError", "connection refused", "always"),
        "/read": rest.NoAnswer("ReadTimeout", "timed out", "idempotent"),
        "/proto": rest.NoAnswer("UnsupportedProtocol", "no such scheme", "never"),
    }
    assert str(answers["/connect"]) == "ConnectError: connection refused"


def test_send_streamed_leaves_the_body_to_the_caller_and_still_answers_no_answer() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/down":
            raise httpx.ConnectError("connection refused")
        return httpx.Response(200, stream=httpx.ByteStream(b"data: 1\n\ndata: [DONE]\n\n"))

    with httpx.Client(transport=httpx.MockTransport(answer)) as http:
        r = rest.send(http, "POST", "http://x/run", json={"stream": True}, stream=True)
        assert isinstance(r, httpx.Response) and not r.is_closed
        assert b"".join(r.iter_bytes()) == b"data: 1\n\ndata: [DONE]\n\n"
        r.close()
        down = rest.send(http, "POST", "http://x/down", stream=True)
    assert down == rest.NoAnswer("ConnectError", "connection refused", "always")
    with pytest.raises(ValueError, match="needs a client"):
        rest.send(None, "GET", "http://x/run", stream=True)


def test_fetch_of_a_closed_port_is_a_connect_error_answer() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens once closed
    answer = rest.fetch("GET", f"http://127.0.0.1:{port}/health", timeout=2)
    assert isinstance(answer, rest.NoAnswer) and answer.error == "ConnectError"
    assert answer.retry == "always"


def test_the_cloudflare_errors_are_the_ones_of_the_error_tree() -> None:
    from cfai import errors

    assert rest.CloudflareError is errors.CloudflareError
    assert issubclass(rest.CloudflareApiError, errors.CloudflareError)
    assert issubclass(rest.CloudflareUnreachableError, errors.CfaiError)
