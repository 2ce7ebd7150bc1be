"""The front door's multipart/form-data parser: byte-exact file parts and a clear refusal of
malformed bodies (which the routes answer as 400 in their own shape)."""

from __future__ import annotations

import httpx
import pytest

from cfai.local.services.frontdoor import parse_multipart

BINARY = bytes(range(256)) + b"\r\n--not-the-boundary\r\n\r\n" + b"\0" * 7


def encoded(**files: tuple[str, bytes, str]) -> tuple[bytes, str]:
    """A body and content type as httpx (the Python SDK's transport) encodes them."""
    request = httpx.Request(
        "POST", "http://x/", data={"file_name": "adapter_model.safetensors"}, files=files
    )
    return request.read(), request.headers["content-type"]


def test_file_part_is_byte_exact_and_fields_keep_their_order() -> None:
    body, content_type = encoded(file=("blob", BINARY, "application/octet-stream"))
    parts = parse_multipart(body, content_type)
    assert [p.name for p in parts] == ["file_name", "file"]
    assert parts[0].text() == "adapter_model.safetensors" and parts[0].filename is None
    assert parts[1].data == BINARY
    assert (parts[1].filename, parts[1].content_type) == ("blob", "application/octet-stream")


def test_quoted_boundary_and_names_with_escapes() -> None:
    body = (
        b'--a b\r\nContent-Disposition: form-data; name="file"; filename="my \\"x\\".json"\r\n\r\n'
        b"{}\r\n--a b--\r\n"
    )
    (part,) = parse_multipart(body, 'multipart/form-data; boundary="a b"')
    assert (part.name, part.filename, part.data) == ("file", 'my "x".json', b"{}")


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (b"{}", "application/json", "expected multipart/form-data, got application/json"),
        (b"", "multipart/form-data", "multipart/form-data without a boundary parameter"),
        (
            b"nothing here",
            "multipart/form-data; boundary=zz",
            "the body has no multipart boundary line",
        ),
        (
            b'--zz\r\nContent-Disposition: form-data; name="f"\r\n\r\ndata',
            "multipart/form-data; boundary=zz",
            "the body ends before its closing multipart boundary",
        ),
        (
            b"--zz\r\nContent-Type: text/plain\r\n\r\nx\r\n--zz--",
            "multipart/form-data; boundary=zz",
            "a part has no Content-Disposition header",
        ),
    ],
)
def test_malformed_bodies_say_why(body: bytes, content_type: str, reason: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_multipart(body, content_type)
    assert str(info.value) == reason
