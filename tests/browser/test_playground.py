"""The playground pages of the local stack's Workers in a real browser: Debian's headless
Chromium driven by playwright-core (tests/browser/playground.mjs) against the session's
local platform. Each page loads without console errors, with a label on every field and no
token in it; a chat streams into the page; a document uploaded is then matched by a
question, with scores; an image renders at the chosen size; speech plays; a wrong token
shows the Worker's 401 message.

A missing browser fails these tests (it never skips them): `make test` installs it first.
`CFAI_SCREENSHOTS=<dir>` (`make screenshots`) saves a screenshot of each page there, taken
after its scenario (the streamed chat, the matches, the image, the player).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("playground.mjs")
CHROMIUM = Path(os.environ.get("CFAI_CHROMIUM", "/usr/bin/chromium"))
PAGES = {"assistant": "chat", "kb": "rag", "studio": "image", "voice": "speech"}


def screenshot(name: str) -> str:
    """Where to save a screenshot of the page after a scenario: ``$CFAI_SCREENSHOTS/<name>``
    (`make screenshots`), else nowhere."""
    folder = os.environ.get("CFAI_SCREENSHOTS", "")
    return str(Path(folder) / f"playground-{name}.png") if folder else ""


def drive(outputs: dict[str, Any], worker: str, scenario: str, shot: str = "") -> dict[str, Any]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"headless Chromium is not installed at {CHROMIUM}: run `make test` (it installs "
            "Debian's chromium package first) or point CFAI_CHROMIUM at a Chromium binary",
            pytrace=False,
        )
    if not (REPO / "node_modules" / "playwright-core").is_dir():
        pytest.fail("playwright-core is not installed: run `make setup` (npm ci)", pytrace=False)
    url = str(outputs["endpoints"][worker]).rstrip("/")
    done = subprocess.run(
        ["node", str(DRIVER), scenario, url, str(outputs["auth_token"]), shot],
        capture_output=True, text=True, timeout=180, cwd=REPO,
        env={**os.environ, "CFAI_CHROMIUM": str(CHROMIUM)},
    )  # fmt: skip
    assert done.stdout.strip(), done.stderr[-2000:]
    seen: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert "failed" not in seen, seen
    return seen


@pytest.mark.parametrize("worker", sorted(PAGES))
def test_each_page_loads_accessible_without_console_errors(
    local_platform: dict[str, Any], worker: str
) -> None:
    seen = drive(local_platform, worker, "load")
    assert seen["status"] == 200
    assert seen["errors"] == []
    assert seen["unlabelled"] == []
    assert seen["embedded"] is False  # the token is typed by the user, never in the page
    assert seen["title"].endswith("cfai playground")


def test_a_chat_streams_into_the_page(local_platform: dict[str, Any]) -> None:
    seen = drive(local_platform, "assistant", "chat", screenshot("chat"))
    assert seen["errors"] == []
    assert seen["answer"].strip()
    # The answer grew piece by piece as the events arrived, not in one write.
    assert seen["updates"] > 2


def test_an_uploaded_document_is_matched_with_scores(local_platform: dict[str, Any]) -> None:
    seen = drive(local_platform, "kb", "rag", screenshot("rag"))
    assert seen["errors"] == []
    assert seen["visible"] is True
    top = [r for r in seen["rows"] if "zebrafish" in r[2]]
    assert top, seen["rows"]
    assert 0 < float(top[0][0]) <= 1
    assert seen["answer"].strip()


def test_an_image_renders_at_the_chosen_size(local_platform: dict[str, Any]) -> None:
    seen = drive(local_platform, "studio", "image", screenshot("image"))
    assert seen["errors"] == []
    assert seen["size"] == [768, 768]
    assert seen["caption"] == "768 \u00d7 768, 4 steps"
    assert seen["alt"] == "a lighthouse at dusk"


def test_speech_is_spoken_and_playable(local_platform: dict[str, Any]) -> None:
    seen = drive(local_platform, "voice", "speech", screenshot("speech"))
    assert seen["errors"] == []
    assert seen["played"] is True and seen["visible"] is True


@pytest.mark.parametrize("worker", ["assistant", "studio"])
def test_a_wrong_token_shows_the_401_message(local_platform: dict[str, Any], worker: str) -> None:
    seen = drive(local_platform, worker, "wrong_token")
    assert seen["alert"] == (
        "401 Unauthorized: missing or wrong bearer token. Check the bearer token above."
    )
    # The browser's own note of the refused request, nothing else.
    assert all("401" in e for e in seen["errors"]), seen["errors"]
