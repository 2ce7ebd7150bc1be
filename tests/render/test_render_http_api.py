"""The HTTP API every rendered Worker shares, run in Node with stub bindings:
health and its hash, auth, JSON errors with honest statuses, size limits, AI retries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import TOKEN, env_for, make_platform, render
from node_harness import request, run_worker

from cfai.config import PlatformConfig
from cfai.render import module_sha256

CHAT = {"messages": [{"role": "user", "content": "hi"}]}


def _run(
    tmp_path: Path, platform: PlatformConfig, key: str, requests: list[dict[str, Any]], **stubs: Any
):
    worker = render(platform, key)
    return run_worker(
        tmp_path, worker.source, {"env": env_for(worker), "requests": requests, **stubs}
    )


@pytest.mark.parametrize("kind", ["chat", "rag", "image"])
def test_health_reports_template_hash_without_auth(
    kind: str, fixture_platform: PlatformConfig, tmp_path: Path
) -> None:
    worker = render(fixture_platform, kind)
    (reply,), _ = run_worker(
        tmp_path, worker.source, {"env": env_for(worker), "requests": [request("GET", "/health")]}
    )
    assert reply.status == 200
    assert reply.headers["content-type"] == "application/json"
    assert reply.json() == {
        "worker": kind,
        "kind": kind,
        "template_sha256": module_sha256(worker.source),
        "models": list(worker.models),
    }
    assert reply.json()["template_sha256"] == worker.sha256


def test_auth_required_with_constant_answer(
    fixture_platform: PlatformConfig, tmp_path: Path
) -> None:
    replies, calls = _run(
        tmp_path,
        fixture_platform,
        "chat",
        [
            request("POST", "/chat", CHAT),
            request("POST", "/chat", CHAT, token="wrong"),
            request("POST", "/chat", CHAT, token=TOKEN[:-1]),
            request("POST", "/chat", CHAT, headers={"authorization": TOKEN}),
            # Longer tokens that start with the right one, or repeat it; one letter off.
            request("POST", "/chat", CHAT, token=TOKEN + "x"),
            request("POST", "/chat", CHAT, token=TOKEN * 2),
            request("POST", "/chat", CHAT, token=TOKEN[:-1] + ("b" if TOKEN[-1] == "a" else "a")),
            request("POST", "/chat", CHAT, token=TOKEN),
        ],
    )
    for reply in replies[:7]:
        assert reply.status == 401
        assert reply.json()["error"]["code"] == "unauthorized"
        assert TOKEN not in reply.body.decode()
        assert reply.headers["www-authenticate"].startswith("Bearer")
    assert replies[7].status == 200
    assert len(calls["ai"]) == 1  # rejected requests never reached the model


def test_auth_off_needs_no_token(tmp_path: Path) -> None:
    platform = make_platform({"open": {"kind": "chat", "auth": False}})
    (reply,), _ = _run(tmp_path, platform, "open", [request("POST", "/chat", CHAT)])
    assert reply.status == 200 and reply.json()["response"] == "ok"


def test_errors_are_json_with_honest_statuses(
    fixture_platform: PlatformConfig, tmp_path: Path
) -> None:
    big = b'{"prompt": "' + b"x" * 1_048_576 + b'"}'
    replies, calls = _run(
        tmp_path,
        fixture_platform,
        "chat",
        [
            request("GET", "/nope", token=TOKEN),
            request("GET", "/chat", token=TOKEN),
            request("POST", "/chat", raw=b"{not json", token=TOKEN),
            request("POST", "/chat", raw=b"[1, 2]", token=TOKEN),
            request("POST", "/chat", {"prompt": 5}, token=TOKEN),
            request("POST", "/chat", {"messages": [{"role": "x", "content": "a"}]}, token=TOKEN),
            request("POST", "/chat", {"prompt": "a", "max_tokens": "ten"}, token=TOKEN),
            request("POST", "/chat", raw=big, token=TOKEN),
            request("POST", "/chat", token=TOKEN, headers={"content-length": "99999999"}),
            {**request("POST", "/chat", token=TOKEN), "body_stream": big.decode()},
            request("POST", "/health"),
        ],
    )
    expected = [
        (404, "not_found", "/nope"),
        (405, "method_not_allowed", "POST"),
        (400, "bad_request", "not valid JSON"),
        (400, "bad_request", "JSON object"),
        (400, "bad_request", "prompt"),
        (400, "bad_request", "messages[0].role"),
        (400, "bad_request", "max_tokens"),
        (413, "payload_too_large", "1048576"),
        (413, "payload_too_large", "1048576"),
        (413, "payload_too_large", "1048576"),
        (405, "method_not_allowed", "GET"),
    ]
    for reply, (status, code, fragment) in zip(replies, expected, strict=True):
        assert reply.status == status, reply.body
        assert reply.headers["content-type"] == "application/json"
        error = reply.json()["error"]
        assert error["code"] == code and fragment in error["message"]
    assert replies[1].headers["allow"] == "POST"
    assert replies[10].headers["allow"] == "GET, HEAD"
    assert calls["ai"] == []


def test_capacity_errors_retried_then_429(fixture_platform: PlatformConfig, tmp_path: Path) -> None:
    busy = {"throw": "3040: Capacity temporarily exceeded, please try again."}
    replies, calls = _run(
        tmp_path,
        fixture_platform,
        "chat",
        [request("POST", "/chat", CHAT, token=TOKEN)],
        ai_queue=[busy, busy, busy],
    )
    assert replies[0].status == 429
    assert replies[0].json()["error"]["code"] == "rate_limited"
    assert len(calls["ai"]) == 3


@pytest.mark.parametrize(
    "first",
    [
        "3040: Capacity temporarily exceeded, please try again.",
        "429: Too Many Requests",
        "2003: Rate limited",
        "InferenceUpstreamError: Capacity temporarily exceeded",
    ],
)
def test_capacity_error_once_then_success(
    first: str, fixture_platform: PlatformConfig, tmp_path: Path
) -> None:
    replies, calls = _run(
        tmp_path,
        fixture_platform,
        "chat",
        [request("POST", "/chat", CHAT, token=TOKEN)],
        ai_queue=[{"throw": first}],
    )
    assert replies[0].status == 200 and replies[0].json()["response"] == "ok"
    assert len(calls["ai"]) == 2
    assert calls["ai"][0]["inputs"] == calls["ai"][1]["inputs"]


def test_other_upstream_error_is_502_without_internals(
    fixture_platform: PlatformConfig, tmp_path: Path
) -> None:
    secret = "5007: No such model @cf/internal/secret-thing at 10.0.0.7 token=abc"
    replies, calls = _run(
        tmp_path,
        fixture_platform,
        "chat",
        [request("POST", "/chat", CHAT, token=TOKEN)] * 1,
        ai_queue=[{"throw": secret}],
    )
    assert replies[0].status == 502
    body = replies[0].body.decode()
    assert replies[0].json()["error"]["code"] == "upstream_error"
    for leak in ("5007", "secret-thing", "10.0.0.7", "abc", "stack"):
        assert leak not in body
    assert len(calls["ai"]) == 1  # not retried


def test_gateway_options_and_log_id(fixture_platform: PlatformConfig, tmp_path: Path) -> None:
    replies, calls = _run(
        tmp_path,
        fixture_platform,
        "chat",
        [
            request("POST", "/chat", CHAT, token=TOKEN),
            request(
                "POST",
                "/chat",
                CHAT,
                token=TOKEN,
                headers={"cf-aig-skip-cache": "true", "cf-aig-cache-ttl": "120"},
            ),
            request("POST", "/chat", CHAT, token=TOKEN, headers={"cf-aig-cache-ttl": "soon"}),
            request("POST", "/chat", {"prompt": ""}, token=TOKEN),
        ],
    )
    assert [r.status for r in replies] == [200, 200, 400, 400]
    # Through a gateway the Worker asks for the raw answer, to read its cache status.
    assert calls["ai"][0]["options"] == {
        "gateway": {"id": "golden-main"},
        "returnRawResponse": True,
    }
    assert calls["ai"][1]["options"] == {
        "gateway": {"id": "golden-main", "skipCache": True, "cacheTtl": 120},
        "returnRawResponse": True,
    }
    assert replies[0].headers["cf-aig-log-id"] == "log-1"
    assert replies[1].headers["cf-aig-log-id"] == "log-2"
    assert replies[0].headers["cf-aig-cache-status"] == "MISS"
    assert replies[0].json()["response"] == "ok"  # the raw answer read as the binding reads it
    # A request that never reached the model carries no (stale) log id.
    assert "cf-aig-log-id" not in replies[3].headers


def test_cache_status_of_the_gateway_reaches_the_client(
    fixture_platform: PlatformConfig, tmp_path: Path
) -> None:
    replies, _ = _run(
        tmp_path,
        fixture_platform,
        "chat",
        [request("POST", "/chat", CHAT, token=TOKEN)],
        cache_status="HIT",
    )
    assert replies[0].status == 200 and replies[0].headers["cf-aig-cache-status"] == "HIT"


def test_no_gateway_no_options(tmp_path: Path) -> None:
    platform = make_platform({"plain": {"kind": "chat"}})
    replies, calls = _run(
        tmp_path, platform, "plain", [request("POST", "/chat", CHAT, token=TOKEN)]
    )
    assert replies[0].status == 200
    assert calls["ai"][0]["nargs"] == 2 and calls["ai"][0]["options"] is None
    assert "cf-aig-log-id" not in replies[0].headers


def test_missing_auth_secret_is_a_server_error(
    fixture_platform: PlatformConfig, tmp_path: Path
) -> None:
    worker = render(fixture_platform, "chat")
    env = {k: v for k, v in env_for(worker).items() if k != "AUTH_TOKEN"}
    (reply,), calls = run_worker(
        tmp_path,
        worker.source,
        {"env": env, "requests": [request("POST", "/chat", CHAT, token="")]},
    )
    assert reply.status == 500
    assert "AUTH_TOKEN" in json.loads(reply.body)["error"]["message"]
    assert calls["ai"] == []
