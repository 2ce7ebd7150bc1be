"""The suite's plumbing against a fake target (an `httpx.MockTransport`): outputs loading,
parametrisation by kind, results, JUnit XML, secret guard, exit codes, and the plugin being
inert without an outputs map. The checks against real Workers are in test_contract_local."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from cfai.cli import app
from cfai.cli._tables import summary_table
from cfai.contract import ContractRun, parse_target, run_contract
from cfai.contract._http import schema_errors
from cfai.contract.plugin import TRANSPORT
from cfai.render import module_path, module_sha256

TOKEN = "fake-auth-token-0123456789"
API_TOKEN = "fake-api-token-0123456789"
LIMIT = 2048
ROUTES = {"chat": "/chat", "rag": "/query", "image": "/image"}


def _module(kind: str) -> str:
    return (
        f'const TEMPLATE_SHA256 = "{"0" * 64}";\n'
        f'const KIND = "{kind}";\nconst MAX_REQUEST_BYTES = {LIMIT};\n'
        "export default {};\n"
    )


class FakeWorkers:
    """The Worker HTTP API's common surface for a few Workers, on hosts <name>.test."""

    def __init__(self, workers: dict[str, str], *, leak: bool = False) -> None:
        self.workers = workers  # name -> kind
        self.leak = leak
        self.hash = {k: module_sha256(_module(k)) for k in ROUTES}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        name = request.url.host.removesuffix(".test")
        kind = self.workers[name]
        headers = {"x-debug-token": TOKEN} if self.leak else {}

        def error(status: int, code: str) -> httpx.Response:
            body = {"error": {"code": code, "message": f"{code} (fake)"}}
            return httpx.Response(status, json=body, headers=headers)

        if request.url.path == "/health":
            body = {"worker": name, "kind": kind, "template_sha256": self.hash[kind], "models": []}
            return httpx.Response(200, json=body, headers=headers)
        if request.url.path != ROUTES[kind]:
            return error(404, "not_found")
        if request.method != "POST":
            return error(405, "method_not_allowed")
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return error(401, "unauthorized")
        if len(request.content) > LIMIT:
            return error(413, "payload_too_large")
        try:
            body = json.loads(request.content)
        except ValueError:
            return error(400, "bad_request")
        if not isinstance(body.get("prompt", body.get("question")), str):
            return error(400, "bad_request")
        return httpx.Response(200, json={"ok": True})


class _Inject:
    def __init__(self, transport: httpx.BaseTransport) -> None:
        self.transport = transport

    def pytest_configure(self, config: pytest.Config) -> None:
        config.stash[TRANSPORT] = self.transport


def _outputs(tmp_path: Path, workers: dict[str, str], **extra: Any) -> Path:
    for name, kind in workers.items():
        module = module_path(tmp_path / "workers", name)
        module.parent.mkdir(parents=True, exist_ok=True)
        module.write_text(_module(kind))
    outputs = {
        "target": "local",
        "stack": "fake",
        "endpoints": {n: f"http://{n}.test" for n in workers},
        "workers": {
            n: {"kind": k, "script_name": f"t-{n}", "url": f"http://{n}.test", "auth": True}
            for n, k in workers.items()
        },
        "gateways": {},
        "auth_token": TOKEN,
        "api": {
            "base_url": "http://api.test/client/v4",
            "account_id": "0" * 32,
            "token": API_TOKEN,
        },
        **extra,
    }
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(outputs))
    return path


def _run(tmp_path: Path, fake: FakeWorkers, **kw: Any) -> ContractRun:
    outputs = _outputs(tmp_path, fake.workers)
    return run_contract(
        outputs,
        project=tmp_path,
        junit=tmp_path / "junit.xml",
        keyword=kw.pop("keyword", "worker_common"),
        plugins=[_Inject(httpx.MockTransport(fake))],
        **kw,
    )


def test_checks_without_a_worker_to_run_on_are_listed_with_the_reason(tmp_path: Path) -> None:
    run = _run(tmp_path, FakeWorkers({"assistant": "chat"}), keyword="gateway or health")
    not_run = {r.check.split("::")[-1]: r for r in run.not_run}
    assert not_run, "no chat Worker behind a gateway: its checks cannot run"
    for name, r in not_run.items():
        assert r.check.startswith("gateway::") and r.outcome == "not run"
        assert r.message == (
            "no gateway of a Worker has a rate limit"
            if "rate_limit" in name
            else "the platform has no chat Worker behind a gateway"
        )
    assert any("rate_limit" not in name for name in not_run)
    # What -k left out is the user's choice, not listed; what ran is not listed either.
    assert not any("image" in r.check for r in run.not_run)
    assert not {r.nodeid for r in run.results} & {r.nodeid for r in run.not_run}


def test_run_all_common_checks_pass_on_conforming_target(tmp_path: Path) -> None:
    run = _run(tmp_path, FakeWorkers({"assistant": "chat", "studio": "image"}))
    assert run.ok, [(r.worker, r.check, r.message) for r in run.failed]
    workers = {r.worker for r in run.results}
    assert workers == {"chat[assistant]", "image[studio]"}
    assert run.outcome("test_health_template_sha256_matches_workers_dir", "chat[assistant]") == (
        "passed"
    )
    suite = ET.parse(tmp_path / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    assert int(suite.get("tests", "0")) == len(run.results) > 10
    assert suite.get("failures") == "0" and suite.get("skipped") == "0"


def test_run_kind_absent_has_no_tests_not_skips(tmp_path: Path) -> None:
    run = _run(
        tmp_path,
        FakeWorkers({"studio": "image"}),
        keyword=None,
        extra_args=["-m", "not cfai_rate_limit"],
    )
    assert run.results, "no checks ran"
    assert {r.worker for r in run.results} == {"image[studio]"}
    assert not [r for r in run.results if r.outcome == "skipped"]


def test_run_hash_mismatch_fails_that_check_only(tmp_path: Path) -> None:
    fake = FakeWorkers({"assistant": "chat"})
    fake.hash["chat"] = "f" * 64
    run = _run(tmp_path, fake)
    assert not run.ok and run.exit_code == 1
    assert [(r.check, r.worker) for r in run.failed] == [
        ("worker_common::test_health_template_sha256_matches_workers_dir", "chat[assistant]")
    ]
    assert "not what was reviewed" in run.failed[0].message
    root = ET.parse(tmp_path / "junit.xml").getroot()
    assert root.find("testsuite").get("failures") == "1"  # type: ignore[union-attr]


def test_run_secret_in_header_fails_without_printing_it(tmp_path: Path) -> None:
    run = _run(tmp_path, FakeWorkers({"assistant": "chat"}, leak=True))
    assert run.results and all(r.outcome == "failed" for r in run.results)
    assert all("secret #1 appears in header 'x-debug-token'" in r.message for r in run.failed)
    assert TOKEN not in (tmp_path / "junit.xml").read_text()


def test_run_zero_checks_is_not_ok(tmp_path: Path) -> None:
    run = _run(tmp_path, FakeWorkers({"assistant": "chat"}), keyword="no_such_check_anywhere")
    assert run.results == [] and not run.ok and run.exit_code != 0


def test_summary_table_has_a_row_per_worker_and_check(tmp_path: Path) -> None:
    fake = FakeWorkers({"assistant": "chat"})
    fake.hash["chat"] = "f" * 64
    run = _run(tmp_path, fake)
    table = summary_table(run)
    assert table.row_count == len(run.results)
    assert list(table.columns[0].cells) == [r"chat\[assistant]"] * len(run.results)


def test_parse_target_reads_contract_and_schema_from_declaration(tmp_path: Path) -> None:
    outputs = json.loads(_outputs(tmp_path, {"assistant": "chat"}).read_text())
    target = parse_target(outputs)
    assert target.secrets == (TOKEN, API_TOKEN)
    assert target.workers["assistant"].id == "chat[assistant]"
    assert target.workers["assistant"].contract == ()
    outputs["workers"]["assistant"]["contract"] = ["checks/test_mine.py"]
    outputs["workers"]["assistant"]["response_schema"] = {"type": "object"}
    w = parse_target(outputs).workers["assistant"]
    assert w.contract == ("checks/test_mine.py",) and w.response_schema == {"type": "object"}


def test_schema_errors_name_the_path() -> None:
    schema = {
        "type": "object",
        "properties": {"fruit": {"type": "string"}, "n": {"type": "integer", "minimum": 1}},
        "required": ["fruit", "colour"],
        "additionalProperties": False,
    }
    assert (
        schema_errors(
            {"fruit": "kiwi", "colour": "green"},
            schema | {"properties": {**schema["properties"], "colour": {"enum": ["green"]}}},
        )
        == []
    )
    assert schema_errors({"fruit": 3, "n": 0, "x": 1}, schema) == [
        "$: 'colour' is a required property",
        "$: Additional properties are not allowed ('x' was unexpected)",
        "$.fruit: 3 is not of type 'string'",
        "$.n: 0 is less than the minimum of 1",
    ]


def test_schema_errors_follow_refs_and_2020_12_keywords() -> None:
    # What the emulator's JSON mode accepts, the contract suite must check, not refuse.
    schema = {
        "$defs": {"even": {"type": "integer", "multipleOf": 2}},
        "type": "object",
        "properties": {
            "n": {"$ref": "#/$defs/even"},
            "pair": {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}]},
        },
        "required": ["n"],
    }
    assert schema_errors({"n": 4, "pair": ["a", 1]}, schema) == []
    assert schema_errors({"n": 3, "pair": ["a", "b"]}, schema) == [
        "$.n: 3 is not a multiple of 2",
        "$.pair[1]: 'b' is not of type 'integer'",
    ]


def test_plugin_inert_without_outputs(tmp_path: Path) -> None:
    (tmp_path / "test_plain.py").write_text("def test_plain(): assert True\n")
    from cfai.contract import CHECKS_DIR

    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "cfai.contract.plugin", str(tmp_path), str(CHECKS_DIR),
         "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path)],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout and "skipped" not in done.stdout


def test_cli_test_needs_exactly_one_target() -> None:
    result = CliRunner().invoke(app, ["test"])
    assert result.exit_code == 2
    assert "exactly one of --local, --stack NAME, --outputs FILE" in result.output


def test_cli_test_stack_without_pulumi_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    result = CliRunner().invoke(app, ["test", "--stack", "staging", "--project", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert "the Pulumi CLI is not installed" in result.output


def test_cli_test_local_not_running_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["test", "--local", "--project", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert "local platform is not running" in result.output


def test_cli_test_outputs_missing_file_exits_nonzero(tmp_path: Path) -> None:
    env = {**os.environ}
    result = CliRunner(env=env).invoke(
        app, ["test", "--outputs", str(tmp_path / "nope.json"), "--project", str(tmp_path)]
    )
    # A usage error like any other: exit 2 naming the file, no empty table, no "0 passed".
    assert result.exit_code == 2, result.output
    assert f"outputs map {tmp_path / 'nope.json'} does not exist" in result.output
    assert "0 passed" not in result.output and "worker" not in result.output
