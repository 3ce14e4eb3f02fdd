"""What several families use: the malware test markers and a plain ZIP builder."""

from __future__ import annotations

import io
import zipfile

#: Matched by tests/clamav/enclose-test.ndb as "Enclose.Test.Marker". Harmless text.
MALWARE_MARKER = b"ENCLOSE-TEST-MALWARE-MARKER-6b1f0c2e-not-a-real-virus"


def eicar() -> bytes:
    """The industry-standard anti-virus test file, assembled so this source is not flagged."""
    return b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def zip_bytes(entries: dict[str, bytes], *, stored: set[str] | None = None) -> bytes:
    """A ZIP of `entries` in order; names in `stored` are not compressed."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data, zipfile.ZIP_STORED if stored and name in stored else zipfile.ZIP_DEFLATED)
    return out.getvalue()
