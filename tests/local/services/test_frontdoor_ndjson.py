"""NDJSON bodies are split into lines as `str.splitlines` splits the decoded text, whichever
way the front door reads them (bytes for a plain ASCII body, text otherwise), so a record's
line number and a blank line mean the same in both."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cfai.local.services.frontdoor.body import _lines

# Every character str.splitlines or str.strip treats specially, some JSON, and non-ASCII.
_chars = st.sampled_from(
    [
        *("\n", "\r", "\r\n", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f", "\x85", "\u2028"),
        *(" ", "\t", "{", "}", '"', "a", "1", ",", "é", "\x00"),
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_chars, max_size=24), st.booleans())
def test_lines_are_the_decoded_texts_lines(parts: list[str], latin1: bool) -> None:
    raw = "".join(parts).encode("latin-1" if latin1 else "utf-8", errors="replace")
    want = raw.decode("utf-8", errors="replace").splitlines()
    got = [x if isinstance(x, str) else x.decode("ascii") for x in _lines(raw)]
    assert got == want
    assert [not x.strip() for x in _lines(raw)] == [not x.strip() for x in want]
