"""The rules for a new message request: every field checked, every problem named (422)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from shared_code import clock
from shared_code.body_links import disallowed_hosts
from shared_code.errors import FieldError, Unprocessable
from shared_code.nhs import is_valid_nhs_number
from shared_code.phones import InvalidMobile, to_e164_mobile
from shared_code.settings import Settings

MAX_BODY_CHARS = 1600
MAX_NAME_CHARS = 200
MAX_AGE_YEARS = 130
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
#: How far ahead a message may be scheduled.
MAX_SCHEDULE_DAYS = 30


@dataclass(frozen=True)
class NewMessage:
    """A valid request to text a patient a link to documents."""

    date_of_birth: date
    mobile: str  # E.164
    body: str  # empty when a template gives the text
    attachment_ids: tuple[str, ...]
    send_at: datetime | None
    #: A template to send (`shared_code.templates.apply_template`), and which version of it.
    template_id: str | None = None
    template_version: int | None = None
    #: Values for the text's placeholders, and the patient's names for the built-in ones.
    personalisation: Mapping[str, Any] = field(default_factory=dict, repr=False)
    patient_name: str | None = field(default=None, repr=False)
    first_name: str | None = field(default=None, repr=False)
    #: Checked (Modulus 11) and kept only to be hashed for the patient's history (`shared_code.history`).
    nhs_number: str | None = field(default=None, repr=False)
    #: The batch a row's message is made for (set by the batch worker, never from a request).
    batch_id: str | None = None


def _link_rule(allowed: tuple[str, ...]) -> str:
    sites = " or ".join(allowed) if allowed else "no"
    return (
        f"The message can only link to {sites} websites. Remove any other web address: "
        "the link to the documents is added for you"
    )


def parse_date_of_birth(raw: Any, today: date) -> tuple[date | None, str | None]:
    """(date, None) when valid, else (None, reason)."""
    # fullmatch, not just fromisoformat: that also takes week dates such as 1970-W05-6.
    if not isinstance(raw, str) or not _ISO_DATE.fullmatch(raw):
        return None, "Enter the date of birth as YYYY-MM-DD"
    try:
        dob = date.fromisoformat(raw)
    except ValueError:
        return None, "The date of birth must be a real date"
    if dob > today:
        return None, "The date of birth must be in the past"
    try:
        oldest = today.replace(year=today.year - MAX_AGE_YEARS)
    except ValueError:  # 29 February
        oldest = today.replace(year=today.year - MAX_AGE_YEARS, day=28)
    if dob < oldest:
        return None, f"The date of birth must be less than {MAX_AGE_YEARS} years ago"
    return dob, None


def parse_new_message(payload: dict[str, Any], settings: Settings) -> NewMessage:
    """Check a message request; raise Unprocessable listing every invalid field."""
    errors: list[FieldError] = []
    now = clock.now()
    patient = payload.get("patient")
    if not isinstance(patient, dict):
        errors.append(FieldError("patient", "Enter the patient's details"))
        patient = {}

    nhs = patient.get("nhsNumber")
    if not isinstance(nhs, str) or not is_valid_nhs_number(nhs):
        errors.append(FieldError("patient.nhsNumber", "Enter a valid 10-digit NHS number"))

    dob, reason = parse_date_of_birth(patient.get("dateOfBirth"), now.date())
    if reason:
        errors.append(FieldError("patient.dateOfBirth", reason))

    mobile = None
    raw_mobile = patient.get("mobile")
    if not isinstance(raw_mobile, str):
        errors.append(FieldError("patient.mobile", "Enter a mobile phone number"))
    else:
        try:
            mobile = to_e164_mobile(
                raw_mobile, allowed_countries=settings.allowed_countries, allow_drama=settings.allow_drama_numbers
            )
        except InvalidMobile as exc:
            errors.append(FieldError("patient.mobile", str(exc)))

    for key in ("name", "firstName"):
        name = patient.get(key)
        if name is not None and (not isinstance(name, str) or len(name) > MAX_NAME_CHARS):
            errors.append(FieldError(f"patient.{key}", f"The name must be text of at most {MAX_NAME_CHARS} characters"))

    template_id, template_version, personalisation = _template_fields(payload, errors)
    templated = template_id is not None or payload.get("templateId") is not None

    body = payload.get("body")
    if templated and body is None:
        body = ""  # the template gives the text
    elif not isinstance(body, str) or not body.strip():
        errors.append(FieldError("body", "Enter the text of the message"))
        body = None
    elif len(body) > MAX_BODY_CHARS:
        errors.append(FieldError("body", f"The message must be at most {MAX_BODY_CHARS} characters"))
        body = None
    elif "\x00" in body:
        errors.append(FieldError("body", "The message contains a character that cannot be sent"))
        body = None
    elif disallowed_hosts(body, settings.allowed_link_domains):
        # The address itself is not echoed: it is part of the message text, kept out of errors and logs.
        errors.append(FieldError("body", _link_rule(settings.allowed_link_domains)))
        body = None

    ids = payload.get("attachmentIds")
    if templated and ids is None:
        ids = []  # the template's documents may be all it sends (checked with the template)
    attachment_ids: tuple[str, ...] = ()
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids) or (not ids and not templated):
        errors.append(FieldError("attachmentIds", "Attach at least one document"))
    elif len(ids) > settings.max_attachments:
        errors.append(FieldError("attachmentIds", f"Attach at most {settings.max_attachments} documents"))
    elif len(set(ids)) != len(ids):
        errors.append(FieldError("attachmentIds", "Each document can be attached only once"))
    else:
        attachment_ids = tuple(ids)

    send_at = None
    raw_send_at = payload.get("sendAt")
    if raw_send_at is not None:
        try:
            send_at = clock.parse_iso(raw_send_at) if isinstance(raw_send_at, str) else None
            if send_at is None:
                raise ValueError
        except ValueError:
            errors.append(FieldError("sendAt", "Enter the send time as an ISO 8601 date and time with a time zone"))
        else:
            if send_at > now + timedelta(days=MAX_SCHEDULE_DAYS):
                errors.append(
                    FieldError("sendAt", f"A message can be scheduled at most {MAX_SCHEDULE_DAYS} days ahead")
                )
            elif send_at <= now:
                send_at = None  # a time already past means "now"

    if errors:
        raise Unprocessable(errors)
    return NewMessage(
        date_of_birth=dob,
        mobile=mobile,
        body=body.strip(),
        attachment_ids=attachment_ids,
        send_at=send_at,
        template_id=template_id,
        template_version=template_version,
        personalisation=personalisation,
        # The names are kept only for a template's placeholders: otherwise nothing uses them.
        patient_name=patient.get("name") if templated else None,
        first_name=patient.get("firstName") if templated else None,
        nhs_number=nhs,
    )


def _template_fields(payload: dict[str, Any], errors: list[FieldError]) -> tuple[str | None, int | None, dict]:
    """`templateId`, `templateVersion` and `personalisation`, each checked for its shape."""
    from shared_code.template_request import personalisation_errors

    template_id = payload.get("templateId")
    if template_id is not None and (not isinstance(template_id, str) or not template_id.strip()):
        errors.append(FieldError("templateId", "Give the id of one of your templates"))
        template_id = None
    version = payload.get("templateVersion")
    if version is not None:
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            errors.append(FieldError("templateVersion", "Give the template's version as a whole number from 1"))
            version = None
        elif payload.get("templateId") is None:
            errors.append(FieldError("templateVersion", "Give the templateId too"))
    personalisation = payload.get("personalisation")
    problems = personalisation_errors(personalisation)
    errors.extend(problems)
    return template_id, version, {} if problems or personalisation is None else personalisation
