"""The patient portal in Debian's Chromium, end to end through the local stack.

From the text in the SMS emulator's inbox to the downloaded (or viewed) file: with JavaScript on
and off, at 320 CSS pixels wide, and axe-core (WCAG 2.x A and AA) on every page state. Screenshots of
each state are kept in test-artifacts/portal/.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from tests.support import corpus
from tests.support.browser import assert_accessible, launch_chromium, screenshot
from tests.support.components import missing
from tests.support.corpus import fitting as fitting_samples
from tests.support.stack import RunningStack, sample_pdf

PRACTICE = "Riverside Surgery"
RIGHT = ("31", "1", "1970")  # the date of birth send_clean sends with
WRONG = ("1", "2", "1970")
IMPOSSIBLE = ("31", "2", "1970")
LONG_NAME = "Discharge-summary-from-Riverside-Hospital-cardiology-department-2026-03-15.pdf"


@pytest.fixture(scope="module")
def browser(stack: RunningStack) -> Iterator[Any]:
    """One Chromium for the module; the NHS.UK stylesheet must be built and served."""
    css = requests.get(f"{stack.base_url}/static/nhsuk/nhsuk-frontend.min.css", timeout=10)
    if css.status_code != 200:
        missing("The NHS.UK frontend stylesheet", "run `make` (it runs `python -m devstack.portal_assets`)")
    with launch_chromium() as chromium:
        yield chromium


@pytest.fixture
def new_page(browser: Any) -> Iterator[Any]:
    """Pages in fresh contexts (own cookies), closed after the test; CSP reports must stay empty."""
    contexts, csp_reports = [], []

    def make(**options: Any) -> Any:
        context = browser.new_context(accept_downloads=True, **options)
        contexts.append(context)
        page = context.new_page()
        page.on("console", lambda m: csp_reports.append(m.text) if "Content Security Policy" in m.text else None)
        return page

    yield make
    for context in contexts:
        context.close()
    assert csp_reports == [], csp_reports


def token_of(link: str) -> str:
    return urlsplit(link).path.rsplit("/", 1)[1]


def enter(page: Any, date: tuple[str, str, str]) -> Any:
    """Type a date of birth and press Continue; returns the response to the form's POST."""
    for field, value in zip(("day", "month", "year"), date, strict=True):
        page.fill(f"#dob-{field}", value)
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Continue").click()
    return navigation.value


def error_fields(page: Any) -> list[str]:
    return page.locator("input.nhsuk-input--error").evaluate_all("els => els.map(e => e.name)")


def no_horizontal_scroll(page: Any, width: int) -> None:
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= width, f"{page.url}: {scroll_width}px wide at a {width}px viewport"


def download(page: Any, name: str) -> Any:
    with page.expect_download() as info:
        page.get_by_role("link", name=f"Download {name}").click()
    return info.value


def test_patient_journey_from_the_text_to_the_file(stack: RunningStack, new_page: Any) -> None:
    data = sample_pdf("Fit note for Jo")
    _, link, _ = stack.send_clean(data, "Fit note.pdf", org_name=PRACTICE)
    page = new_page()

    opened = page.goto(link)
    assert opened.status == 200
    assert page.title() == f"What is your date of birth? – {PRACTICE}"
    assert page.locator("header").inner_text().strip() == PRACTICE
    # The NHS date-input pattern: one fieldset whose legend is the page heading, a hint, three
    # numeric fields with birthday autocomplete, and the hidden CSRF field.
    legend = page.locator("fieldset legend h1")
    assert legend.inner_text() == "What is your date of birth?"
    assert page.locator("h1").count() == 1
    assert "dob-hint" in page.locator("fieldset").get_attribute("aria-describedby").split()
    for field, autocomplete in (("day", "bday-day"), ("month", "bday-month"), ("year", "bday-year")):
        box = page.get_by_label(field.capitalize(), exact=True)
        assert box.get_attribute("name") == f"dob-{field}"
        assert box.get_attribute("inputmode") == "numeric"
        assert box.get_attribute("autocomplete") == autocomplete
    assert page.locator("input[type=hidden][name=csrf]").count() == 1
    assert f"contact {PRACTICE}" in page.locator("footer").inner_text()
    assert_accessible(page, "form")
    screenshot(page, "form")

    # Not a real date: the fields in error, an error summary that has the focus and links to
    # the first field, "Error:" in the title and, for screen readers, before the message.
    assert enter(page, IMPOSSIBLE).status == 200
    assert page.title() == f"Error: What is your date of birth? – {PRACTICE}"
    summary = page.locator(".nhsuk-error-summary")
    assert "Date of birth must be a real date" in summary.inner_text()
    assert page.evaluate("document.activeElement.classList.contains('nhsuk-error-summary')")
    assert summary.get_by_role("link").get_attribute("href") == "#dob-day"
    assert page.locator("#dob-error").text_content() == "Error: Date of birth must be a real date"
    assert set(page.locator("fieldset").get_attribute("aria-describedby").split()) == {
        "dob-intro",
        "dob-hint",
        "dob-error",
    }
    assert error_fields(page) == ["dob-day", "dob-month", "dob-year"]
    assert page.input_value("#dob-day") == "31"  # what was typed is kept
    assert "tries left" not in page.content()  # not an attempt
    assert_accessible(page, "field error")
    screenshot(page, "field-error")

    assert enter(page, WRONG).status == 200
    assert page.title().startswith("Error: ")
    assert "does not match our records" in page.locator(".nhsuk-error-summary").inner_text()
    assert "You have 4 tries left" in page.locator(".nhsuk-inset-text").inner_text()
    assert_accessible(page, "wrong date")
    screenshot(page, "wrong-date")

    verified = enter(page, RIGHT)
    assert urlsplit(page.url).path == f"/p/{token_of(link)}/documents"
    assert verified.status == 200
    assert page.title() == f"Your document – {PRACTICE}"
    assert page.locator(".nhsuk-summary-list__key").all_inner_texts() == ["Fit note.pdf"]
    assert page.locator(".nhsuk-summary-list__value").inner_text().startswith("PDF, ")
    session = [c for c in page.context.cookies() if c["name"] == "enclose_session"]
    assert len(session) == 1
    assert session[0]["httpOnly"] and session[0]["sameSite"] == "Strict"
    assert session[0]["path"] == f"/p/{token_of(link)}"
    assert_accessible(page, "documents")
    screenshot(page, "documents")

    file = download(page, "Fit note.pdf")
    assert file.suggested_filename == "Fit note.pdf"
    assert Path(file.path()).read_bytes() == data


def test_the_journey_works_with_javascript_off(stack: RunningStack, new_page: Any) -> None:
    data = sample_pdf("Letter for Jo")
    _, link, _ = stack.send_clean(data, "letter.pdf", org_name=PRACTICE)
    page = new_page(java_script_enabled=False)
    assert page.goto(link).status == 200
    assert enter(page, WRONG).status == 200
    assert "does not match our records" in page.locator(".nhsuk-error-summary").inner_text()
    assert error_fields(page) == ["dob-day", "dob-month", "dob-year"]
    enter(page, RIGHT)
    assert urlsplit(page.url).path == f"/p/{token_of(link)}/documents"
    assert Path(download(page, "letter.pdf").path()).read_bytes() == data


def test_every_page_fits_a_320_pixel_screen(stack: RunningStack, new_page: Any) -> None:
    data = sample_pdf("Discharge summary")
    _, link, _ = stack.send_clean(data, LONG_NAME, org_name=PRACTICE)
    page = new_page(viewport={"width": 320, "height": 640})
    page.goto(link)
    no_horizontal_scroll(page, 320)
    screenshot(page, "form-320")
    enter(page, IMPOSSIBLE)
    no_horizontal_scroll(page, 320)
    enter(page, WRONG)
    no_horizontal_scroll(page, 320)
    screenshot(page, "wrong-date-320")
    enter(page, RIGHT)
    assert page.locator(".nhsuk-summary-list__key").inner_text() == LONG_NAME
    no_horizontal_scroll(page, 320)
    assert_accessible(page, "documents at 320 px")
    screenshot(page, "documents-320")
    assert Path(download(page, LONG_NAME).path()).read_bytes() == data
    assert page.goto(f"{stack.base_url}/p/{'x' * 24}").status == 404
    no_horizontal_scroll(page, 320)


def test_locked_and_not_found_pages(stack: RunningStack, new_page: Any) -> None:
    _, link, _ = stack.send_clean(sample_pdf("Letter"), "letter.pdf", org_name=PRACTICE)
    page = new_page()
    page.goto(link)
    statuses = [enter(page, WRONG).status for _ in range(5)]
    assert statuses == [200, 200, 200, 200, 403]
    assert page.title() == f"This link has been locked – {PRACTICE}"
    assert f"contact {PRACTICE}" in page.locator("main").inner_text()
    assert page.locator("form").count() == 0
    assert_accessible(page, "locked")
    screenshot(page, "locked")

    gone = page.goto(f"{stack.base_url}/p/{'x' * 24}")
    assert gone.status == 404
    assert page.title() == "This link does not work – Your GP practice"
    assert "contact your GP practice" in page.locator("main").inner_text()
    assert_accessible(page, "not found")
    screenshot(page, "not-found")


def test_pages_stay_usable_without_the_nhs_stylesheet(stack: RunningStack, new_page: Any) -> None:
    _, link, _ = stack.send_clean(sample_pdf("Letter"), "letter.pdf", org_name=PRACTICE)
    page = new_page(viewport={"width": 320, "height": 640})
    page.route("**/static/nhsuk/**", lambda route: route.fulfill(status=404, body=""))
    page.goto(link)
    enter(page, IMPOSSIBLE)
    assert page.evaluate("getComputedStyle(document.querySelector('.nhsuk-u-visually-hidden')).width") == "1px"
    no_horizontal_scroll(page, 320)
    assert_accessible(page, "field error without the NHS stylesheet")
    screenshot(page, "field-error-without-nhsuk-css")


def send_documents(stack: RunningStack, files: list[tuple[bytes, str]]) -> str:
    """Upload each (data, name), wait for clean, send them in one text; the portal link."""
    ids = []
    for data, name in files:
        upload = stack.upload(data, name, content_type="application/octet-stream")
        assert upload.status_code == 202, upload.text
        assert stack.wait_attachment(upload.json()["id"])["status"] == "clean"
        ids.append(upload.json()["id"])
    mobile = f"07700 900{uuid.uuid4().int % 1000:03d}"
    marker = f"ref {uuid.uuid4().hex[:8]}"
    patient = {"nhsNumber": "9434765919", "dateOfBirth": "1970-01-31", "mobile": mobile, "name": "Jo Bloggs"}
    sent = stack.send(
        {"patient": patient, "body": f"Your documents ({marker}).", "attachmentIds": ids},
        headers={"Authorization": f"Bearer {stack.token(org_name=PRACTICE)}"},
    )
    assert sent.status_code == 202, sent.text
    return stack.wait_link("+44" + mobile.replace(" ", "")[1:], marker)


def test_view_opens_pdfs_and_pictures_inline_on_a_320_pixel_phone_without_javascript(
    stack: RunningStack, new_page: Any
) -> None:
    from playwright.sync_api import Error as PlaywrightError

    photo = fitting_samples.phone_jpeg()  # 6 MB, sideways, with its GPS position: made to fit
    pdf = sample_pdf("Blood test results")
    letter = corpus.docx_good()
    link = send_documents(stack, [(photo, "IMG_2041.jpg"), (pdf, "Results.pdf"), (letter, "Letter.docx")])

    # axe-core is itself a script: the page it checks has JavaScript on; the rest below has it off.
    checked = new_page(viewport={"width": 320, "height": 640})
    checked.goto(link)
    enter(checked, RIGHT)
    assert_accessible(checked, "documents with view links at 320 px")

    page = new_page(viewport={"width": 320, "height": 640}, java_script_enabled=False)
    page.goto(link)
    enter(page, RIGHT)
    assert page.locator(".nhsuk-summary-list__key").all_inner_texts() == ["IMG_2041.jpg", "Results.pdf", "Letter.docx"]
    assert "You can view or download them" in page.locator("main").inner_text()
    # "View" beside "Download" for the PDF and the picture; a Word document can only be downloaded.
    assert page.get_by_role("link", name="View IMG_2041.jpg").count() == 1
    assert page.get_by_role("link", name="View Results.pdf").count() == 1
    assert page.get_by_role("link", name="View Letter.docx").count() == 0
    assert page.get_by_role("link", name="Download Letter.docx").count() == 1
    no_horizontal_scroll(page, 320)
    screenshot(page, "documents-view-320")
    documents_url = page.url

    # The picture opens in the browser itself: inline, its real type, the right way up, no location.
    with page.expect_navigation() as navigation:
        page.get_by_role("link", name="View IMG_2041.jpg").click()
    shown = navigation.value
    assert shown.status == 200
    assert shown.headers["content-type"] == "image/jpeg"
    assert shown.headers["content-disposition"] == 'inline; filename="IMG_2041.jpg"'
    assert urlsplit(page.url).port == stack.ports.blob  # the one blob, by its short read-only SAS
    width, height = page.evaluate("[document.images[0].naturalWidth, document.images[0].naturalHeight]")
    assert (width, height) == (1500, 2000)  # upright: the photo was stored sideways
    body = shown.body()
    assert b"Exif" not in body and b"SERIAL-0123456789" not in body
    screenshot(page, "view-picture-320")

    # The PDF is served for the phone's own viewer: inline and application/pdf. (Chromium hands it to
    # its PDF viewer, or without one saves it: either way the answer is what a phone is given.)
    page.goto(documents_url)
    with page.expect_response(lambda r: urlsplit(r.url).port == stack.ports.blob) as served:
        try:
            page.get_by_role("link", name="View Results.pdf").click()
        except PlaywrightError:
            pass  # "Download is starting": the headless browser's way of handling a PDF it cannot show
    answer = served.value
    assert answer.status == 200
    assert answer.headers["content-type"] == "application/pdf"
    assert answer.headers["content-disposition"] == 'inline; filename="Results.pdf"'
    assert requests.get(answer.url, timeout=10).content == pdf  # the viewer gets the stored bytes
