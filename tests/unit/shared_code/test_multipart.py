"""Reading the `file` part of an upload: 400 when missing/empty/malformed, 413 over the limit."""

from __future__ import annotations

import pytest

from shared_code.errors import BadRequest, TooLarge
from shared_code.multipart import UploadedFile, read_file_part
from shared_code.settings import Settings

MAX = Settings().max_attachment_bytes  # 3145728, the contract's default
BOUNDARY = "----EncloseBoundary7MA4YWxkTrZu0gW"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def part(name: str, data: bytes, filename: str | None = None, content_type: str | None = None) -> tuple[bytes, bytes]:
    disposition = f'form-data; name="{name}"'
    if filename is not None:
        disposition += f'; filename="{filename}"'
    headers = f"Content-Disposition: {disposition}"
    if content_type:
        headers += f"\r\nContent-Type: {content_type}"
    return headers.encode("utf-8"), data


def form(*parts: tuple[bytes, bytes], boundary: str = BOUNDARY) -> bytes:
    out = b""
    for headers, data in parts:
        out += b"--" + boundary.encode() + b"\r\n" + headers + b"\r\n\r\n" + data + b"\r\n"
    return out + b"--" + boundary.encode() + b"--\r\n"


def test_reads_the_file_part() -> None:
    body = form(part("file", b"%PDF-1.7 hello", "letter.pdf", "application/pdf"))
    assert read_file_part(CONTENT_TYPE, body, MAX) == UploadedFile("letter.pdf", b"%PDF-1.7 hello")


def test_file_exactly_at_the_limit_is_accepted() -> None:
    data = bytes(range(256)) * (MAX // 256)
    assert len(data) == MAX
    uploaded = read_file_part(CONTENT_TYPE, form(part("file", data, "big.pdf")), MAX)
    assert uploaded.data == data


def test_one_byte_over_the_limit_is_413() -> None:
    with pytest.raises(TooLarge) as caught:
        read_file_part(CONTENT_TYPE, form(part("file", b"x" * (MAX + 1), "big.pdf")), MAX)
    assert caught.value.status == 413
    assert "3 MB" in caught.value.detail


@pytest.mark.parametrize("limit", [1, 10, 1000])
def test_limit_boundary_with_other_limits(limit: int) -> None:
    assert len(read_file_part(CONTENT_TYPE, form(part("file", b"y" * limit, "a.txt")), limit).data) == limit
    with pytest.raises(TooLarge):
        read_file_part(CONTENT_TYPE, form(part("file", b"y" * (limit + 1), "a.txt")), limit)


def test_empty_file_is_400() -> None:
    with pytest.raises(BadRequest) as caught:
        read_file_part(CONTENT_TYPE, form(part("file", b"", "empty.pdf")), MAX)
    assert caught.value.status == 400
    assert "empty" in caught.value.detail


@pytest.mark.parametrize(
    "body",
    [
        form(part("document", b"data", "a.pdf")),
        form(part("File", b"data", "a.pdf")),
        form(part("note", b"hello")),
        form(),
        b"",
    ],
)
def test_no_file_part_is_400(body: bytes) -> None:
    with pytest.raises(BadRequest) as caught:
        read_file_part(CONTENT_TYPE, body, MAX)
    assert caught.value.status == 400


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "",
        "multipart/form-data",  # no boundary
        "multipart/form-data; boundary=",
        "multipart/mixed; boundary=" + BOUNDARY,
        "application/json",
        "application/octet-stream",
        "text/plain; boundary=" + BOUNDARY,
    ],
)
def test_not_multipart_form_data_is_400(content_type: str | None) -> None:
    with pytest.raises(BadRequest) as caught:
        read_file_part(content_type, form(part("file", b"data", "a.pdf")), MAX)
    assert caught.value.status == 400


@pytest.mark.parametrize(
    "body",
    [
        b"this is not multipart at all",
        b"--" + BOUNDARY.encode() + b'\r\nContent-Disposition: form-data; name="file"\r\n\r\ntruncated',
        form(part("file", b"data", "a.pdf"), boundary="SomeOtherBoundary"),
        b"--" + BOUNDARY.encode() + b"\r\nno blank line after headers",
    ],
)
def test_malformed_body_is_400(body: bytes) -> None:
    with pytest.raises(BadRequest) as caught:
        read_file_part(CONTENT_TYPE, body, MAX)
    assert caught.value.status == 400


@pytest.mark.parametrize(
    "filename",
    ["letter.pdf", "Fit note – Jo Blöggs.pdf", "résumé 2026.docx", "检查结果.pdf", "😀.png", "a b;c.txt"],
)
def test_filename_is_kept_including_utf8(filename: str) -> None:
    uploaded = read_file_part(CONTENT_TYPE, form(part("file", b"data", filename)), MAX)
    assert uploaded.filename == filename


def test_file_part_without_a_filename() -> None:
    assert read_file_part(CONTENT_TYPE, form(part("file", b"data")), MAX) == UploadedFile(None, b"data")


def test_file_part_among_other_parts() -> None:
    body = form(part("note", b"hello"), part("file", b"PNGDATA", "scan.png", "image/png"), part("extra", b"x"))
    assert read_file_part(CONTENT_TYPE, body, MAX) == UploadedFile("scan.png", b"PNGDATA")


def test_data_is_kept_byte_for_byte() -> None:
    # CRLFs, dashes and a near-boundary inside the data are content, not structure.
    data = b"\r\n--" + BOUNDARY.encode()[:-1] + b"\r\n\x00\xff" + b"\r\n\r\n-- end\r\n"
    assert read_file_part(CONTENT_TYPE, form(part("file", data, "x.bin")), MAX).data == data


def test_boundary_may_be_quoted_and_the_type_any_case() -> None:
    content_type = f'Multipart/Form-Data; boundary="{BOUNDARY}"'
    assert read_file_part(content_type, form(part("file", b"data", "a.pdf")), MAX).data == b"data"
