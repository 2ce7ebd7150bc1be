"""The suite can fail: against deliberately broken targets it reports exactly what broke."""

from __future__ import annotations

import copy
import json
import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.stack import local_stack

from cfai.config import load_file, load_stack
from cfai.contract import ContractRun, run_contract
from cfai.local import LocalPlatform
from cfai.render import module_path

REPO_ROOT = Path(__file__).resolve().parents[2]
# The shared platform's gateway limit must not be exhausted (see tests/conftest.py).
NO_RATE_LIMIT = ["-m", "not cfai_rate_limit"]


def _run(
    outputs: dict[str, Any], tmp_path: Path, project: Path = REPO_ROOT, **kw: Any
) -> ContractRun:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(outputs))
    return run_contract(
        path, project=project, junit=tmp_path / "junit.xml", extra_args=NO_RATE_LIMIT, **kw
    )


def _outcomes(run: ContractRun, worker: str) -> dict[str, str]:
    return {r.check.split("::")[-1]: r.outcome for r in run.results if r.worker == worker}


def test_chat_url_pointing_at_image_worker_fails_chat_checks(
    local_platform: dict[str, Any], tmp_path: Path
) -> None:
    outputs = copy.deepcopy(local_platform)
    image_url = outputs["workers"]["studio"]["url"]
    outputs["workers"]["assistant"]["url"] = outputs["endpoints"]["assistant"] = image_url
    run = _run(outputs, tmp_path)
    assert not run.ok and run.exit_code == 1
    chat = _outcomes(run, "chat[assistant]")
    for check in (
        "test_health_reports_kind",
        "test_health_template_sha256_matches_workers_dir",
        "test_chat_prompt_json_answer",
        "test_chat_stream_sse_framing",
        "test_openai_completion",
        "test_repeat_request_served_from_cache",
    ):
        assert chat[check] == "failed", (check, chat)
    kind = next(r for r in run.failed if r.check.endswith("test_health_reports_kind"))
    assert "/health says kind 'image', declared 'chat'" in kind.message
    # The image Worker itself is fine: only the misrouted Worker's checks fail.
    assert set(_outcomes(run, "image[studio]").values()) == {"passed"}


def test_deployed_hash_differing_from_workers_dir_fails_hash_check(
    local_platform: dict[str, Any], tmp_path: Path
) -> None:
    project = tmp_path / "project"
    shutil.copytree(REPO_ROOT / "workers", project / "workers")
    module = module_path(project / "workers", "assistant")
    module.write_text(module.read_text() + "\n// an unreviewed edit\n")
    run = _run(local_platform, tmp_path, project=project, keyword="worker_common")
    failed = [(r.worker, r.check.split("::")[-1]) for r in run.failed]
    assert failed == [("chat[assistant]", "test_health_template_sha256_matches_workers_dir")]
    assert "what runs is not what was reviewed" in run.failed[0].message
    assert run.exit_code == 1


@pytest.fixture
def stopped_emulator(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A dedicated local platform whose emulator (Workers AI, Vectorize, gateway) was killed."""
    platform = LocalPlatform(REPO_ROOT, f"pytest-broken-{os.getpid()}")
    try:
        outputs = platform.up(load_stack("local", REPO_ROOT), timeout=60).to_json()
        os.kill(platform.status().processes["emulator"].pid, signal.SIGKILL)
        yield outputs
    finally:
        platform.down()
        shutil.rmtree(platform.state_dir, ignore_errors=True)


def test_emulator_stopped_fails_every_ai_check(
    stopped_emulator: dict[str, Any], tmp_path: Path
) -> None:
    run = _run(stopped_emulator, tmp_path)
    assert not run.ok and run.exit_code == 1
    for worker, checks in {
        "chat[assistant]": ["test_chat_prompt_json_answer", "test_chat_stream_sse_framing",
                            "test_openai_completion", "test_repeat_request_served_from_cache"],
        "rag[kb]": ["test_query_finds_ingested_document_first", "test_delete_removes_document"],
        "image[studio]": ["test_image_decodes_at_requested_size"],
    }.items():  # fmt: skip
        outcomes = _outcomes(run, worker)
        for check in checks:
            assert outcomes[check] in ("failed", "error"), (worker, check, outcomes)
        # workerd still answers what needs no upstream: health and honest errors.
        assert outcomes["test_health_reports_kind"] == "passed", outcomes
        assert outcomes["test_unknown_route_404"] == "passed", outcomes
    answer = next(r for r in run.failed if r.check.endswith("test_chat_prompt_json_answer"))
    assert "POST /chat -> 5" in answer.message, answer.message


# Each new check against a Worker broken in just the way it checks: the templates are copied
# and sabotaged, and the local stack runs them.
_SABOTAGE = {
    "workers/chat.js.j2": [
        # tool calls and reasoning dropped from OpenAI answers
        ("if (answer.toolCalls.length) message.tool_calls = answer.toolCalls;", ""),
        ("if (answer.reasoning) message.reasoning_content = answer.reasoning;", ""),
        # image parts refused without naming the model
        ('} else if (isObject(part) && part.type === "image_url") {', '} else if (isObject(part) && part.type === "image_url" && false) {'),
        # any log id patched, an unknown log a 502
        ("if (!LOG_ID.test(logId)) {", "if (false) {"),
        ('if (err && err.name === "AiGatewayLogNotFound") {', "if (false) {"),
    ],
    "workers/rag.js.j2": [('  { path: "/v1/embeddings", methods: { POST: handleEmbeddings } },\n', "")],
    "workers/_partials/ai.js.j2": [("const refused = vectorizeMistake(err);", "const refused = undefined;")],
    "workers/speech.js.j2": [
        ('return new Response(body, { headers: { "content-type": "audio/mpeg" } });', 'return new Response("not audio", { headers: { "content-type": "audio/mpeg" } });'),
        # an overlong text silently cut instead of refused
        ('const text = reqString(body, "text", { max: req.settings.maxTextChars });\n  const voice = readVoice(body.voice, "voice", speechTraits(req.env));\n  return speech(req, text, voice);\n}\n\nasync function handleOpenAISpeech', 'const text = String(body.text).slice(0, req.settings.maxTextChars);\n  const voice = readVoice(body.voice, "voice", speechTraits(req.env));\n  return speech(req, text, voice);\n}\n\nasync function handleOpenAISpeech'),
        ('if (!type.startsWith("audio/") && !type.startsWith("video/") && type !== "application/octet-stream") {', "if (false) {"),
    ],
}  # fmt: skip
_NEW_CHECKS = {
    "chat[agent]": ["test_openai_tool_round_trip", "test_openai_reasoning_apart_from_the_answer",
                    "test_image_part_vision_model_or_400_naming_it"],
    "chat[assistant]": ["test_image_part_vision_model_or_400_naming_it",
                        "test_feedback_log_id_traversal_400_unknown_404"],
    "rag[kb]": ["test_openai_embeddings_have_the_index_dimensions",
                "test_query_filter_vectorize_refuses_400_names_filter"],
    "speech[voice]": ["test_speak_answers_mp3", "test_speak_text_over_the_limit_400", "test_openai_speech",
                      "test_transcribe_the_spoken_text", "test_openai_transcription",
                      "test_transcribe_refuses_a_body_that_is_not_audio"],
}  # fmt: skip


@pytest.fixture
def sabotaged(tmp_path: Path) -> Iterator[dict[str, Any]]:
    from cfai.render import Templates

    root = tmp_path / "templates"
    shutil.copytree(REPO_ROOT / "templates", root)
    for name, edits in _SABOTAGE.items():
        path = root / name
        text = path.read_text()
        for old, new in edits:
            assert text.count(old) == 1, f"{name}: the sabotage no longer matches {old[:60]!r}"
            text = text.replace(old, new)
        path.write_text(text)
    # The local stack and an agent Worker (qwen3: function calling and reasoning).
    data = local_stack(tmp_path)
    data["workers"]["agent"] = {"kind": "chat", "model": "@cf/qwen/qwen3-30b-a3b-fp8"}
    (tmp_path / "platform.yaml").write_text(yaml.safe_dump(data))
    platform = LocalPlatform(
        REPO_ROOT,
        f"pytest-sabotaged-{os.getpid()}",
        templates=Templates(root),
        source_dir=REPO_ROOT,
    )
    try:
        yield platform.up(load_file(tmp_path / "platform.yaml"), timeout=60).to_json()
    finally:
        platform.down()
        shutil.rmtree(platform.state_dir, ignore_errors=True)


@pytest.mark.platform
def test_each_new_check_fails_against_a_worker_broken_its_way(
    sabotaged: dict[str, Any], tmp_path: Path
) -> None:
    run = _run(sabotaged, tmp_path)
    assert not run.ok and run.exit_code == 1
    for worker, checks in _NEW_CHECKS.items():
        outcomes = {
            r.check.split("::")[-1]: r.outcome for r in run.results if r.worker.startswith(worker)
        }
        for check in checks:
            assert outcomes.get(check) == "failed", (worker, check, outcomes.get(check))
        # The rest of the Worker still works: its health and error checks pass.
        assert outcomes["test_unknown_route_404"] == "passed", outcomes
