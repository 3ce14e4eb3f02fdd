"""The rows of a batch CSV checked as single messages are: who is texted, with what text, and what is refused.

Each row becomes the request a single send would make (`patient`, the batch's `body` or
`templateId`, the row's other columns as `personalisation`) and goes through the same
`parse_new_message`; the template is read once for the whole file (not once a row) and its text
filled for each row as `templates.apply_template` fills it, then measured with a link of the
real length, so the segments are the ones the patient's text will have. A patient (NHS number)
who appears again is sent once, from the first row, and counted in `duplicates`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared_code.batch_csv import (
    DATE_OF_BIRTH,
    FAMILY_NAME,
    FIELD_TITLES,
    GIVEN_NAME,
    MOBILE,
    NAME,
    NHS_NUMBER,
    CsvFile,
    iso_date,
)
from shared_code.errors import FieldError, Unprocessable
from shared_code.message_request import parse_new_message
from shared_code.nhs import normalise_nhs_number
from shared_code.placeholders import key, text_problems
from shared_code.settings import Settings
from shared_code.sms_text import measure
from shared_code.template_request import sample_link

#: The first this many errors and previews are in the create answer (every refused row is in errors.csv).
MAX_ERRORS_SHOWN = 100
MAX_PREVIEWS = 5
_DATE_FORMS = "Enter the date of birth as 31/01/1970, 31-Jan-1970 or 1970-01-31"


@dataclass(frozen=True)
class RowError:
    """Why a row was refused: its spreadsheet row number, the column (as headed in the file), the reason."""

    row: int
    column: str | None
    message: str


@dataclass(frozen=True)
class ValidRow:
    """A row that will be texted: what a message needs, and nothing more (no NHS number or name)."""

    row: int
    date_of_birth: str  # YYYY-MM-DD
    mobile: str  # E.164
    body: str  # filled in for this patient
    segments: int = 0  # 0 when not measured (surely within the limit: see `_segments`)

    def to_json(self) -> dict[str, Any]:
        """The row as stored (sealed) until its message is made."""
        return {"r": self.row, "d": self.date_of_birth, "m": self.mobile, "b": self.body, "s": self.segments}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> ValidRow:
        """A row from `to_json`."""
        return cls(int(doc["r"]), str(doc["d"]), str(doc["m"]), str(doc["b"]), int(doc.get("s", 0)))


@dataclass
class Checked:
    """Every row of a file, judged."""

    total: int = 0
    valid: list[ValidRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    refused: dict[int, list[str]] = field(default_factory=dict)  # row -> its cells, for errors.csv
    duplicates: int = 0


@dataclass(frozen=True)
class BatchText:
    """The batch's text and what a row's request carries besides the patient."""

    text: str  # with placeholders, the template version's or the batch's own
    template_id: str | None
    template_version: int | None
    attachment_ids: tuple[str, ...]  # the template's documents, then the batch's
    send_at: str | None = None


def check_batch_body(body: Any, settings: Settings) -> list[FieldError]:
    """A batch's own text: a message body's rules, and placeholders that can be filled."""
    from shared_code.body_links import disallowed_hosts
    from shared_code.message_request import MAX_BODY_CHARS
    from shared_code.template_request import link_rule

    if not isinstance(body, str) or not body.strip():
        return [FieldError("body", "Enter the text of the message, or choose a template")]
    if len(body) > MAX_BODY_CHARS:
        return [FieldError("body", f"The message must be at most {MAX_BODY_CHARS} characters")]
    if "\x00" in body:
        return [FieldError("body", "The message contains a character that cannot be sent")]
    if disallowed_hosts(body, settings.allowed_link_domains):
        return [FieldError("body", link_rule(settings.allowed_link_domains))]
    return [FieldError("body", problem) for problem in text_problems(body)]


def check_rows(csv_file: CsvFile, text: BatchText, settings: Settings, *, practice_name: str | None) -> Checked:
    """Judge every row; 422 for a field of the batch itself (its text, documents, send time) that a
    row's check finds, since every row would be refused for it."""
    from shared_code.templates import missing_errors, personalise

    checked = Checked(total=len(csv_file.records))
    link = sample_link(settings)
    titles = {name: csv_file.header[index] for name, index in csv_file.columns.items()}
    extra = [(csv_file.header[i], i) for i in csv_file.extra]
    titles.update({f"extra:{title}": title for title, _ in extra})
    seen: set[str] = set()
    for number, cells in csv_file.records:
        problems: list[FieldError] = []
        if number in csv_file.too_wide:
            problems.append(FieldError("file", "The row has more cells than the header has columns"))
        payload, form_problem = _payload(cells, csv_file.columns, extra, text)
        if form_problem:
            problems.append(form_problem)
        try:
            request = parse_new_message(payload, settings)
        except Unprocessable as refused:
            request = None
            _raise_batch_errors(refused.errors)
            problems.extend(e for e in refused.errors if not (form_problem and e.field == "patient.dateOfBirth"))
        body = ""
        if request is not None and not problems:
            filled = personalise(
                text.text,
                settings,
                full_name=request.patient_name,
                first_name=request.first_name,
                practice_name=practice_name,
                personalisation=request.personalisation,
            )
            problems.extend(filled.errors)
            problems.extend(missing_errors(filled.missing))
            body = filled.text.strip()
            if not problems:
                segments = _segments(f"{body}\n{link}", settings.max_segments)
                if segments > settings.max_segments:
                    problems.append(
                        FieldError(
                            "body",
                            f"The text for this patient is too long: it would be {segments} SMS segments "
                            f"and the limit is {settings.max_segments}",
                        )
                    )
        if problems:
            checked.refused[number] = cells
            checked.errors.extend(RowError(number, _column(p.field, titles), p.message) for p in problems)
            continue
        nhs = normalise_nhs_number(payload["patient"]["nhsNumber"])
        if nhs in seen:
            checked.duplicates += 1
            continue
        seen.add(nhs)
        checked.valid.append(
            ValidRow(number, request.date_of_birth.isoformat(), request.mobile, body, segments)  # type: ignore[union-attr]
        )
    return checked


#: Fewest characters an SMS segment holds in any encoding (UCS-2, 16-bit units, in a multi-part text).
_SAFE_UNITS_PER_SEGMENT = 67


def _segments(text: str, limit: int) -> int:
    """The text's segments, or 0 when it is surely within `limit` (most rows of a batch): measuring
    every character is then not needed to know it may be sent. A GSM-7 character takes at most two
    septets (76 a segment) and a UCS-2 one a 16-bit unit or two (67), so this many units always fit."""
    if len(text.encode("utf-16-le")) // 2 <= _SAFE_UNITS_PER_SEGMENT * limit:
        return 0
    return measure(text).segments


def _payload(
    cells: list[str], columns: Mapping[str, int], extra: list[tuple[str, int]], text: BatchText
) -> tuple[dict[str, Any], FieldError | None]:
    """The single-send request this row stands for (and a date in none of the accepted forms)."""

    def cell(name: str) -> str | None:
        index = columns.get(name)
        value = cells[index].strip() if index is not None else ""
        return value or None

    form_problem = None
    raw_dob = cell(DATE_OF_BIRTH)
    dob = iso_date(raw_dob) if raw_dob else None
    if dob is None:
        form_problem = FieldError("patient.dateOfBirth", _DATE_FORMS)
    name = cell(NAME)
    given, family = cell(GIVEN_NAME), cell(FAMILY_NAME)
    if name is None and (given or family):
        name = " ".join(part for part in (given, family) if part)
    patient: dict[str, Any] = {
        "nhsNumber": cell(NHS_NUMBER) or "",
        "dateOfBirth": dob or "",
        "mobile": cell(MOBILE) or "",
    }
    if name is not None:
        patient["name"] = name
    if given is not None:
        patient["firstName"] = given
    # Every batch text may use placeholders, so each row is sent as a templated request is.
    personalisation = {title: cells[i].strip() for title, i in extra if cells[i].strip()}
    payload: dict[str, Any] = {
        "patient": patient,
        "templateId": text.template_id or "batch",
        "personalisation": personalisation,
        "attachmentIds": list(text.attachment_ids),
    }
    if text.send_at is not None:
        payload["sendAt"] = text.send_at
    return payload, form_problem


def _raise_batch_errors(errors: list[FieldError]) -> None:
    """A field of the batch itself is wrong: no row can be sent, so the request is refused."""
    own = [e for e in errors if not e.field.startswith(("patient.", "personalisation"))]
    if own:
        raise Unprocessable(own)


def _column(field_name: str, titles: Mapping[str, str]) -> str | None:
    """The file's column a request field came from (None for the text as a whole)."""
    if field_name.startswith("personalisation."):
        # Named as the text writes the placeholder: the column is the header that matches it.
        name = field_name.removeprefix("personalisation.")
        return next((title for title in titles.values() if key(title) == key(name)), name)
    by_field = {
        "patient.nhsNumber": NHS_NUMBER,
        "patient.dateOfBirth": DATE_OF_BIRTH,
        "patient.mobile": MOBILE,
        "patient.name": NAME,
        "patient.firstName": GIVEN_NAME,
    }
    known = by_field.get(field_name)
    if known is None:
        return None
    if known == NAME and NAME not in titles:
        return titles.get(GIVEN_NAME) or titles.get(FAMILY_NAME) or FIELD_TITLES[NAME]
    return titles.get(known) or FIELD_TITLES.get(known)


def previews(checked: Checked, settings: Settings) -> list[dict[str, Any]]:
    """The first rows' texts as the patients will get them (the link a stand-in of the real length)."""
    link = sample_link(settings)
    return [
        {"row": r.row, "body": f"{r.body}\n{link}", "segments": measure(f"{r.body}\n{link}").segments}
        for r in checked.valid[:MAX_PREVIEWS]
    ]


def future(send_at: datetime | None, now: datetime) -> bool:
    """Whether a send time is still ahead."""
    return send_at is not None and send_at > now
