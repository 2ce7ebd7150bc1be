"""The outputs map (`cfai.outputs`): one model for every writer and reader, its published JSON
Schema kept current, early maps still readable, secrets never shown."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cfai.config import load_stack
from cfai.errors import OutputsError
from cfai.local.platform import local_outputs
from cfai.local.state import Secrets
from cfai.outputs import Outputs, TargetKind, WorkerOutput, outputs_json_schema
from cfai.render import render_platform

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "docs" / "outputs.schema.json"


def test_published_schema_is_current() -> None:
    expected = json.dumps(outputs_json_schema(), indent=2, sort_keys=True) + "\n"
    assert SCHEMA.read_text(encoding="utf-8") == expected, (
        "docs/outputs.schema.json is stale: python -m cfai.outputs > docs/outputs.schema.json"
    )


def test_schema_regenerates_with_python_m_cfai_outputs() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cfai.outputs"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == SCHEMA.read_text(encoding="utf-8")


def test_schema_describes_every_key_a_writer_writes() -> None:
    schema = outputs_json_schema()
    platform = load_stack("local", REPO)
    rendered = render_platform(platform, base_dir=REPO)
    written = local_outputs(
        platform,
        rendered,
        stack="local",
        ports={r.key: 9000 + i for i, r in enumerate(rendered)},
        emulator_url="http://127.0.0.1:9100",
        secrets=Secrets(api_token="a" * 24, auth_token="b" * 24),
    ).to_json()
    assert set(written) == set(schema["properties"])
    worker = schema["$defs"]["WorkerOutput"]
    for entry in written["workers"].values():
        assert set(entry) <= set(worker["properties"])
        assert set(worker["required"]) <= set(entry)
    assert schema["properties"]["target"]["$ref"].endswith("TargetKind")
    assert schema["$defs"]["TargetKind"]["enum"] == ["local", "cloudflare"]


def test_early_maps_still_read() -> None:
    outputs = Outputs.parse(
        {
            "target": "cloud",
            "stack": "staging",
            "endpoints": {"kb": "https://acme-staging-kb.acme.workers.dev/"},
            "workers": {"kb": {"kind": "rag"}},
            "some_key_of_a_newer_cfai": 1,
        }
    )
    assert outputs.target is TargetKind.CLOUDFLARE and not outputs.local
    assert outputs.workers["kb"] == WorkerOutput(
        kind="rag", script_name="kb", url="https://acme-staging-kb.acme.workers.dev"
    )
    no_target = Outputs.parse({"workers": {"a": {"kind": "chat", "url": "http://x"}}})
    assert no_target.target is TargetKind.CLOUDFLARE
    assert no_target.endpoints == {"a": "http://x"}


def test_a_malformed_map_names_each_bad_field() -> None:
    with pytest.raises(OutputsError) as caught:
        Outputs.parse({"target": "mars", "workers": {"a": {"url": "http://x"}}}, source="f.json")
    message = str(caught.value)
    assert message.startswith("f.json is not a cfai outputs map: ")
    assert "target: Input should be 'local' or 'cloudflare'" in message
    assert "workers.a.kind: Field required" in message
    assert caught.value.user_fault


def test_optional_worker_keys_are_written_only_when_set() -> None:
    outputs = Outputs.parse({"workers": {"a": {"kind": "chat", "url": "http://x"}}})
    (entry,) = outputs.to_json()["workers"].values()
    assert "request_headers" not in entry and "response_schema" not in entry
    narrowed = outputs.narrowed("a", request_headers={"h": "v"}, template_sha256="f" * 64)
    (entry,) = narrowed.to_json()["workers"].values()
    assert entry["request_headers"] == {"h": "v"} and entry["template_sha256"] == "f" * 64
    assert Outputs.parse(narrowed.to_json()) == narrowed


def test_written_map_is_private_and_reads_back(tmp_path: Path) -> None:
    outputs = Outputs.parse(
        {
            "target": "local",
            "workers": {"a": {"kind": "chat", "url": "http://x"}},
            "auth_token": "worker-token-123456",
            "api": {"base_url": "http://e/client/v4", "account_id": "0" * 32, "token": "t" * 20},
        }
    )
    path = tmp_path / "outputs.json"
    outputs.write(path)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert Outputs.read(path) == outputs
    with pytest.raises(OutputsError, match="does not exist"):
        Outputs.read(tmp_path / "nope.json")


def test_redacted_map_shows_no_secret() -> None:
    outputs = Outputs.parse(
        {
            "target": "local",
            "workers": {"a": {"kind": "chat", "url": "http://x"}},
            "auth_token": "worker-token-123456",
            "api": {"base_url": "http://e/client/v4", "account_id": "0" * 32, "token": "t" * 20},
        }
    )
    shown = json.dumps(outputs.redacted("<secret>").to_json())
    assert all(secret not in shown for secret in outputs.secrets)
    assert shown.count("<secret>") == 2
    assert "worker-token" not in repr(outputs)
