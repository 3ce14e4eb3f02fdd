"""RTF samples, good and bad."""

from __future__ import annotations


def rtf(body: bytes = b"Dear patient, your results are normal.\\par") -> bytes:
    return b"{\\rtf1\\ansi\\deff0{\\fonttbl{\\f0 Helvetica;}}\\f0\\fs24 " + body + b"}\n"


def rtf_good() -> bytes:
    """Good: text, an escaped character, a unicode character and a hyperlink field."""
    return rtf(
        b'Caf\\\'e9 \\u8364? results\\par{\\field{\\*\\fldinst{HYPERLINK "https://www.nhs.uk/"}}{\\fldrslt{NHS}}}\\par'
    )


def rtf_object() -> bytes:
    return rtf(b"{\\object\\objemb{\\*\\objclass Package}{\\*\\objdata 0105000002000000}}")


def rtf_objdata_only() -> bytes:
    return rtf(b"{\\*\\objdata 01050000020000000b0000004571756174696f6e2e3300}")


def rtf_datastore() -> bytes:
    return rtf(b"{\\*\\datastore 0105000002000000}")


def rtf_dde() -> bytes:
    return rtf(b'{\\field{\\*\\fldinst DDEAUTO c:\\\\windows\\\\system32\\\\cmd.exe "/k calc"}{\\fldrslt x}}')


def rtf_dde_obfuscated() -> bytes:
    """DDE spelt with a hex escape, a unicode escape and a group split, as Word still reads it."""
    return rtf(b"{\\field{\\*\\fldinst \\'44\\u68?{E}AUTO cmd}{\\fldrslt x}}")


def rtf_template() -> bytes:
    return rtf(b"{\\*\\template https://example.invalid/t.dotm}")


def rtf_bin() -> bytes:
    return rtf(b"{\\pict\\bin4 \x01\x02\x03\x04}")


def rtf_unbalanced() -> bytes:
    return b"{\\rtf1\\ansi {\\b bold text\\par}\n"


def rtf_after_end() -> bytes:
    return rtf() + b"{\\object}"


def rtf_control_bytes() -> bytes:
    return rtf(b"bell \x07 here")
