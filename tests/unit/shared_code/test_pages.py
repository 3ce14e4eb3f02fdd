"""Portal pages: sizes as people read them; templates autoescape whatever they are given."""

from __future__ import annotations

from typing import Any

import pytest

from shared_code.pages import KIND_LABELS, STATIC, TEMPLATES, human_size, render, security_headers

HOSTILE = '<script>alert(1)</script>"\' onmouseover="x" & Co'


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 bytes"),
        (1023, "1023 bytes"),
        (1024, "1 KB"),
        (10 * 1024, "10 KB"),
        (240 * 1024, "240 KB"),
        (1024 * 1024, "1.0 MB"),
        (2516582, "2.4 MB"),
        (3145728, "3.0 MB"),
    ],
)
def test_human_size(size: int, text: str) -> None:
    assert human_size(size) == text


def test_every_allowed_type_has_a_label() -> None:
    assert set(KIND_LABELS) == {"pdf", "docx", "doc", "odt", "rtf", "txt", "jpeg", "png", "tiff"}


def test_template_and_static_folders_exist() -> None:
    assert (TEMPLATES / "dob_form.html").is_file()
    assert STATIC.is_dir()


def dob_form(**changes: Any) -> str:
    context: dict[str, Any] = {
        "title": "Confirm your date of birth",
        "practice_name": "Riverside Surgery",
        "token": "AbCdEfGhIjKlMnOpQrStUvWx",
        "csrf": "csrf-value",
        "values": {},
        "error_summary": None,
        "error_fields": [],
        "first_error_field": "day",
        "attempts_left": None,
        "document_count": 1,
    }
    context.update(changes)
    return render("dob_form.html", **context)


def test_dob_form_has_the_contract_fields() -> None:
    html = dob_form()
    for name in ["dob-day", "dob-month", "dob-year"]:
        assert f'name="{name}"' in html
    assert '<input type="hidden" name="csrf" value="csrf-value">' in html
    assert 'action="/p/AbCdEfGhIjKlMnOpQrStUvWx"' in html
    assert "Riverside Surgery" in html
    assert "<script" not in html  # works with JavaScript off, and the CSP forbids inline script


def test_hostile_practice_name_is_escaped() -> None:
    html = dob_form(practice_name=HOSTILE)
    assert HOSTILE not in html
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'onmouseover="x"' not in html
    assert "&amp; Co" in html
    # Escaped in the <title>, the header, the form text and the footer.
    assert html.count("&lt;script&gt;") >= 3


def test_echoed_values_and_messages_are_escaped() -> None:
    html = dob_form(
        values={"day": '"><script>x</script>', "month": "3", "year": "1984"},
        error_summary="<b>bad</b>",
        error_fields=["day"],
        csrf='"><img src=x>',
    )
    assert "<script>" not in html
    assert "<b>bad</b>" not in html
    assert "<img src=x>" not in html
    assert 'value="&#34;&gt;&lt;script&gt;x&lt;/script&gt;"' in html


def test_error_summary_links_to_the_first_field_in_error() -> None:
    html = dob_form(error_summary="Date of birth must include a year", error_fields=["year"], first_error_field="year")
    assert 'href="#dob-year"' in html
    assert "input--error" in html
    assert html.count("input--error") == 1


def test_attempts_left_wording() -> None:
    assert "You have 1 try left" in dob_form(attempts_left=1)
    assert "You have 4 tries left" in dob_form(attempts_left=4)
    assert "tries left" not in dob_form(attempts_left=None)


def test_document_count_wording() -> None:
    assert "sent you a document" in dob_form(document_count=1)
    assert "sent you documents" in dob_form(document_count=3)


def test_missing_context_is_an_error_not_a_blank() -> None:
    from jinja2 import UndefinedError

    with pytest.raises(UndefinedError):
        render("dob_form.html", title="x")


# -- security headers --------------------------------------------------------------------------------


@pytest.mark.parametrize("https", [True, False])
def test_headers_on_every_portal_response(https: bool) -> None:
    headers = security_headers(https)
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Cache-Control"] == "no-store"
    assert headers["X-Robots-Tag"] == "noindex"
    csp = {d.strip().split(" ", 1)[0]: d.strip() for d in headers["Content-Security-Policy"].split(";")}
    assert csp["frame-ancestors"] == "frame-ancestors 'none'"
    assert "unsafe-inline" not in headers["Content-Security-Policy"]
    assert "unsafe-eval" not in headers["Content-Security-Policy"]
    assert csp["default-src"] == "default-src 'none'"
    assert "script-src" in csp


def test_hsts_only_over_https() -> None:
    assert security_headers(True)["Strict-Transport-Security"].startswith("max-age=")
    assert int(security_headers(True)["Strict-Transport-Security"].split("=")[1].split(";")[0]) >= 31536000
    assert "Strict-Transport-Security" not in security_headers(False)
