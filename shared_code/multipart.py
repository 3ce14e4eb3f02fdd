"""Reading the `file` part of a toolbar upload (multipart/form-data) with python-multipart."""

from __future__ import annotations

from dataclasses import dataclass

from shared_code.errors import BadRequest, TooLarge


@dataclass(frozen=True)
class UploadedFile:
    """The `file` part of an upload: the name the toolbar gave it and its bytes."""

    filename: str | None
    data: bytes


def read_file_part(content_type: str | None, body: bytes, max_bytes: int) -> UploadedFile:
    """The part named `file`; 400 when missing, empty or malformed, 413 when over `max_bytes`."""
    uploaded, _ = read_form(content_type, body, max_bytes)
    return uploaded


#: A form field other than the file (a template id, a send time...) is short: longer is refused.
MAX_FIELD_BYTES = 64 * 1024


def read_form(content_type: str | None, body: bytes, max_bytes: int) -> tuple[UploadedFile, dict[str, list[str]]]:
    """The part named `file` (as `read_file_part`) and every other field's values, by name, in order.

    A field over MAX_FIELD_BYTES or not UTF-8 is a 400.
    """
    from python_multipart.multipart import MultipartParser, parse_options_header

    mime, options = parse_options_header(content_type or "")
    boundary = options.get(b"boundary")
    if mime != b"multipart/form-data" or not boundary:
        raise BadRequest("Send the document as multipart/form-data with a part named 'file'.")

    parts: list[dict] = []
    current: dict = {}
    header_name = bytearray()
    header_value = bytearray()

    def on_part_begin() -> None:
        current.clear()
        current.update(headers={}, chunks=[], size=0)

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_name.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        current["headers"][bytes(header_name).lower()] = bytes(header_value)
        header_name.clear()
        header_value.clear()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        # Views into the request body, joined once at the end: one copy of the file, not three.
        # Past the limit (+1, so the size check below still fires) nothing more is kept.
        room = max_bytes + 1 - current["size"]
        if room > 0:
            piece = memoryview(data)[start : min(end, start + room)]
            current["chunks"].append(piece)
            current["size"] += len(piece)

    def on_part_end() -> None:
        parts.append(dict(current))

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    try:
        parser.write(body)
        parser.finalize()
    except Exception:  # noqa: BLE001 - python-multipart raises several types for broken input
        raise BadRequest("The upload is not valid multipart/form-data.") from None

    uploaded = None
    fields: dict[str, list[str]] = {}
    for part in parts:
        disposition = part["headers"].get(b"content-disposition", b"")
        kind, params = parse_options_header(disposition)
        if kind != b"form-data":
            continue
        if params.get(b"name") != b"file":
            name = params.get(b"name")
            if name is not None:
                fields.setdefault(name.decode("utf-8", "replace"), []).append(_field_text(part))
            continue
        if uploaded is not None:
            continue  # the first `file` part is the file
        data = b"".join(part["chunks"])
        if len(data) > max_bytes:
            raise TooLarge(f"The document is larger than the {max_bytes // (1024 * 1024)} MB limit.")
        if not data:
            raise BadRequest("The document is empty.")
        raw_name = params.get(b"filename")
        filename = raw_name.decode("utf-8", "replace") if raw_name is not None else None
        uploaded = UploadedFile(filename=filename, data=data)
    if uploaded is not None:
        return uploaded, fields
    if not parts and body.strip():
        raise BadRequest("The upload is not valid multipart/form-data.")
    raise BadRequest("The upload has no part named 'file'.")


def _field_text(part: dict) -> str:
    """A form field's value as text (400 when too long or not UTF-8)."""
    if part["size"] > MAX_FIELD_BYTES:
        raise BadRequest("A form field is too long.")
    try:
        return b"".join(part["chunks"]).decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("A form field is not UTF-8 text.") from None
