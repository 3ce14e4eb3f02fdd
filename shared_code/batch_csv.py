"""Reading a batch CSV as practices export it (EMIS, SystmOne, a spreadsheet): bounded, any common dialect.

Pure: bytes in, a header and records out, with the columns it recognises. The rules a row must
meet (the same as a single message's) are applied by `shared_code.batches`.

* Encoding: UTF-8 with or without a byte-order mark; otherwise Windows-1252 (Excel's "CSV" on
  Windows). Anything else cannot be read (422 on `file`).
* Lines end in CRLF or LF; quoted fields may hold commas, quotes and new lines (stdlib `csv`).
* Bounds: `MAX_CSV_BYTES` (413 above, checked by the caller as the upload is read),
  `MAX_DATA_ROWS` data rows, `MAX_COLUMNS` columns and `MAX_CELL_CHARS` per cell (422 above).
* The header is matched ignoring case, spaces, `_`, `-` and `.`, with the aliases practices'
  systems use; every other column is a personalisation value named by its header as written.
* Dates of birth as `31/01/1970`, `31-Jan-1970` or `1970-01-31` (`iso_date` turns them into the
  API's form; a date that does not exist stays one that `parse_date_of_birth` refuses).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

from shared_code.errors import FieldError, Unprocessable

MAX_CSV_BYTES = 5 * 1024 * 1024
MAX_DATA_ROWS = 10_000
#: Four patient columns (or five, with given and family names) and up to 50 personalisation values.
MAX_COLUMNS = 60
#: Longer than any field a row may hold (a personalisation value is at most 200 characters).
MAX_CELL_CHARS = 1000

NHS_NUMBER, DATE_OF_BIRTH, MOBILE, NAME, GIVEN_NAME, FAMILY_NAME = (
    "nhsNumber",
    "dateOfBirth",
    "mobile",
    "name",
    "givenName",
    "familyName",
)
#: Header (as `header_key` folds it) to the field it holds.
ALIASES = {
    "nhsnumber": NHS_NUMBER,
    "nhsno": NHS_NUMBER,
    "dateofbirth": DATE_OF_BIRTH,
    "dob": DATE_OF_BIRTH,
    "birthdate": DATE_OF_BIRTH,
    "mobile": MOBILE,
    "mobilenumber": MOBILE,
    "mobiletelephone": MOBILE,
    "mobilephone": MOBILE,
    "mobiletelephonenumber": MOBILE,
    "phonenumber": MOBILE,
    "name": NAME,
    "fullname": NAME,
    "patientname": NAME,
    "givenname": GIVEN_NAME,
    "forename": GIVEN_NAME,
    "firstname": GIVEN_NAME,
    "familyname": FAMILY_NAME,
    "surname": FAMILY_NAME,
    "lastname": FAMILY_NAME,
}
#: How each field's column is named in errors when the file has none.
FIELD_TITLES = {NHS_NUMBER: "NHS Number", DATE_OF_BIRTH: "Date of Birth", MOBILE: "Mobile", NAME: "Name"}
_SEPARATORS = str.maketrans("", "", " _-.\t\u00a0")
_MONTHS = {
    m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)
}
_DMY_SLASH = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")
_DMY_NAMED = re.compile(r"(\d{1,2})[- ]([A-Za-z]{3})[- ](\d{4})")
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class CsvFile:
    """A read CSV: its header as written, which column holds each known field, and the records.

    `records` pairs each record's spreadsheet row number (the header is row 1; a cell with new
    lines is still one row) with its cells, padded or cut to the header's width; blank records
    (every cell empty, as spreadsheets leave at the end) are dropped.
    """

    header: tuple[str, ...]
    columns: dict[str, int]
    extra: tuple[int, ...]  # the personalisation columns
    records: list[tuple[int, list[str]]]
    too_wide: frozenset[int]  # rows that had more cells than the header


def _file_error(message: str) -> Unprocessable:
    """A 422 on the whole file."""
    return Unprocessable([FieldError("file", message)])


def header_key(title: str) -> str:
    """A header as it is matched: case-folded, without spaces, `_`, `-` or `.`."""
    return title.casefold().translate(_SEPARATORS)


def decode(data: bytes) -> str:
    """The file's text: UTF-8 (a byte-order mark dropped), else Windows-1252; 422 when neither."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        # Five byte values are undefined in Windows-1252: a file holding one is neither encoding.
        return data.decode("cp1252")
    except UnicodeDecodeError:
        raise _file_error("Save the file as CSV (UTF-8 or Windows) and upload it again") from None


def read_csv(data: bytes) -> CsvFile:
    """Read and bound the file; 422 on `file` for what makes the whole file unusable."""
    text = decode(data)
    if "\x00" in text:
        raise _file_error("This is not a CSV file: save it as CSV and upload it again")
    try:
        rows = csv.reader(io.StringIO(text, newline=""), strict=False)
        header = next(rows, None)
        if header is None or not any(cell.strip() for cell in header):
            raise _file_error("The file is empty: it needs a header row and a row per patient")
        header = [cell.strip() for cell in header]
        if len(header) > MAX_COLUMNS:
            raise _file_error(f"The file has more than {MAX_COLUMNS} columns")
        columns, extra, problems = _match_header(header)
        if problems:
            raise Unprocessable(problems)
        records: list[tuple[int, list[str]]] = []
        too_wide: set[int] = set()
        width = len(header)
        for number, cells in enumerate(rows, start=2):
            if not any(cell.strip() for cell in cells):
                continue
            if len(records) == MAX_DATA_ROWS:
                raise Unprocessable(
                    [
                        FieldError(
                            "file", f"The file has more than {MAX_DATA_ROWS:,} patients: split it into smaller files"
                        )
                    ]
                )
            if len(cells) > width and any(cell.strip() for cell in cells[width:]):
                too_wide.add(number)
            records.append((number, (cells + [""] * width)[:width]))
    except csv.Error:
        raise _file_error("The file could not be read as CSV: save it as CSV and upload it again") from None
    if not records:
        raise _file_error("The file has no patients: it needs a row per patient under the header")
    return CsvFile(tuple(header), columns, tuple(extra), records, frozenset(too_wide))


def _match_header(header: list[str]) -> tuple[dict[str, int], list[int], list[FieldError]]:
    """Which column holds each field, the other (personalisation) columns, and what is wrong."""
    columns: dict[str, int] = {}
    extra: list[int] = []
    problems: list[FieldError] = []
    seen: set[str] = set()
    for index, title in enumerate(header):
        folded = header_key(title)
        if not folded:
            problems.append(FieldError("file", f"Column {index + 1} has no name in the header row"))
            continue
        if folded in seen:
            problems.append(FieldError("file", f"The header has the column {title!r} twice"))
            continue
        seen.add(folded)
        field = ALIASES.get(folded)
        if field is None:
            extra.append(index)
        else:
            if field in columns:
                problems.append(FieldError("file", f"The header has two columns for {FIELD_TITLES.get(field, title)}"))
            columns[field] = index
    for field in (NHS_NUMBER, DATE_OF_BIRTH, MOBILE):
        if field not in columns:
            problems.append(FieldError("file", f"The file needs a column named {FIELD_TITLES[field]!r}"))
    if NAME in columns and (GIVEN_NAME in columns or FAMILY_NAME in columns):
        problems.append(FieldError("file", "Give either a Name column or Given Name and Family Name, not both"))
    return columns, extra, problems


def iso_date(raw: str) -> str | None:
    """A date of birth as `YYYY-MM-DD` (not yet checked to exist), or None when in no accepted form."""
    text = raw.strip()
    if _ISO.fullmatch(text):
        return text
    match = _DMY_SLASH.fullmatch(text)
    if match:
        day, month, year = match.groups()
        return f"{year}-{int(month):02d}-{int(day):02d}"
    match = _DMY_NAMED.fullmatch(text)
    if match:
        day, name, year = match.groups()
        month = _MONTHS.get(name.lower())
        if month is None:
            return None
        return f"{year}-{month:02d}-{int(day):02d}"
    return None
