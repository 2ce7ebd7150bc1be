"""The local stack's speech Worker with the official `openai` client (speech, then its
transcription), and `cfai local up`'s curl examples of every new route pasted into a shell:
each works and writes its audio under /tmp, never into the directory it is pasted in."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path
from typing import Any

import miniaudio
import openai
import pytest

from cfai.local.status import curl_examples
from cfai.outputs import Outputs

pytestmark = pytest.mark.platform


def test_openai_client_speech_then_transcription(local_platform: dict[str, Any]) -> None:
    client = openai.OpenAI(
        base_url=f"{local_platform['endpoints']['voice']}/v1",
        api_key=local_platform["auth_token"],
        max_retries=0,
    )
    try:
        speech = client.audio.speech.create(
            model="tts", voice="asteria", input="Canaries roll back on failure."
        )
        audio = speech.content
        assert miniaudio.decode(audio).duration > 0.5  # a real MP3 decoder accepts it
        done = client.audio.transcriptions.create(
            model="stt", file=("note.mp3", audio, "audio/mpeg")
        )
        assert done.text == "Canaries roll back on failure."
        text = client.audio.transcriptions.create(
            model="stt", file=("note.mp3", audio, "audio/mpeg"), response_format="text"
        )
        assert text.strip() == "Canaries roll back on failure."
    finally:
        client.close()


def test_curl_examples_of_the_new_routes_work_when_pasted(
    local_platform: dict[str, Any], tmp_path: Path
) -> None:
    outputs = Outputs.model_validate(local_platform)
    token = local_platform["auth_token"]
    examples = curl_examples(outputs, "local", "cfai")
    wanted = [
        "/v1/embeddings",
        "/speak",
        "/transcribe",
        "/v1/audio/speech",
        "/v1/audio/transcriptions",
    ]
    found = {}
    for block in examples:
        head, _, line = block.partition("\n")
        path = head.split()[-1]
        if path in wanted:
            found[path] = line.replace("$(cfai local token)", shlex.quote(token))
    assert sorted(found) == sorted(wanted), examples
    for path in wanted:  # in order: /speak writes the audio /transcribe reads
        done = subprocess.run(
            ["sh", "-c", found[path]], capture_output=True, timeout=60, cwd=tmp_path
        )
        assert done.returncode == 0, (path, done.stderr)
        if path in ("/transcribe", "/v1/audio/transcriptions"):
            assert json.loads(done.stdout)["text"] == "Hello from cfai.", (path, done.stdout)
        if path == "/v1/embeddings":
            assert len(json.loads(done.stdout)["data"][0]["embedding"]) == 768
    assert list(tmp_path.iterdir()) == []  # nothing written where the commands were pasted
    assert miniaudio.decode(Path("/tmp/cfai-speech.mp3").read_bytes()).num_frames > 0
