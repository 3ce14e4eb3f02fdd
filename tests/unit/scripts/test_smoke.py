"""scripts/smoke.py's own pieces: the PDF it writes by hand, EICAR kept out of the repository, the header rules,
its arguments. The whole run is tested against the local stack in tests/e2e/test_smoke.py."""

from __future__ import annotations

import importlib.util
import io
import re
import subprocess
import sys
from email.message import Message
from pathlib import Path
from types import ModuleType

import pytest

from tests.support.corpus.common import eicar

ROOT = Path(__file__).resolve().parents[3]


def _smoke() -> ModuleType:
    # scripts/ is not a package: load the file under a fixed name, once.
    name = "enclose_scripts_smoke"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / "smoke.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


smoke = _smoke()


def test_the_pdf_is_well_formed_with_every_cross_reference_exact() -> None:
    import pikepdf

    data = smoke.sample_pdf("Hello")
    xref = int(re.search(rb"startxref\n(\d+)\n%%EOF\n$", data).group(1))
    assert data[xref:].startswith(b"xref\n0 6\n")
    entries = re.findall(rb"(\d{10}) 00000 n \n", data[xref:])
    assert len(entries) == 5
    for number, offset in enumerate(entries, start=1):
        assert data[int(offset) :].startswith(b"%d 0 obj\n" % number)
    with pikepdf.open(io.BytesIO(data)) as pdf:
        assert len(pdf.pages) == 1
        assert b"(Hello) Tj" in pdf.pages[0].Contents.read_bytes()


def test_the_pdf_is_one_the_app_accepts() -> None:
    from shared_code.filetypes import sniff, validate

    data = smoke.sample_pdf()
    file_type = sniff(data)
    assert file_type.kind == "pdf"
    validate(data, file_type)  # raises ContentRejected for a file the app would refuse


def test_eicar_is_the_standard_test_file() -> None:
    assert smoke.eicar() == eicar()
    assert len(smoke.eicar()) == 68


def test_no_file_in_the_repository_holds_the_eicar_string_whole() -> None:
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    whole = eicar()
    holders = []
    for name in filter(None, tracked.decode().split("\0")):
        path = ROOT / name
        if path.is_file() and whole in path.read_bytes():
            holders.append(name)
    assert holders == []


def _headers(**values: str) -> Message:
    headers = Message()
    for name, value in values.items():
        headers[name.replace("_", "-")] = value
    return headers


GOOD = {
    "Referrer_Policy": "no-referrer",
    "X_Content_Type_Options": "nosniff",
    "Cache_Control": "no-store",
    "X_Robots_Tag": "noindex",
    "Content_Security_Policy": "default-src 'none'; script-src 'self'; frame-ancestors 'none'",
}


def test_the_portals_headers_pass_and_each_missing_one_is_named() -> None:
    assert smoke.portal_header_problems(_headers(**GOOD), https=False) == []
    for name in GOOD:
        problems = smoke.portal_header_problems(_headers(**{k: v for k, v in GOOD.items() if k != name}), False)
        assert len(problems) == 1 and name.replace("_", "-") in problems[0]


def test_https_needs_hsts_and_inline_script_is_refused() -> None:
    assert smoke.portal_header_problems(_headers(**GOOD), https=True) == ["no Strict-Transport-Security over https"]
    hsts = _headers(**GOOD, Strict_Transport_Security="max-age=31536000")
    assert smoke.portal_header_problems(hsts, https=True) == []
    inline = {**GOOD, "Content_Security_Policy": "script-src 'self' 'unsafe-inline'; frame-ancestors 'none'"}
    assert smoke.portal_header_problems(_headers(**inline), https=False) != []


@pytest.mark.parametrize(
    ("argv", "env", "says"),
    [
        (["--url", "https://app.example", "--mobile", "07700900123"], {}, "no token"),
        (["--url", "", "--mobile", "07700900123"], {"TOKEN": "t"}, "--url is empty"),
        (["--url", "ftp://app.example", "--mobile", "07700900123"], {"TOKEN": "t"}, "must start with https://"),
        (["--url", "https://app.example", "--mobile", " "], {"TOKEN": "t"}, "--mobile is empty"),
        (["--url", "https://app.example", "--no-sms"], {"TOKEN": "t"}, "--mobile"),
    ],
)
def test_bad_arguments_exit_2_and_say_why(
    argv: list[str], env: dict[str, str], says: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.delenv("TOKEN", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SystemExit) as exited:
        smoke.main(argv)
    assert exited.value.code == 2
    assert says in capsys.readouterr().err
