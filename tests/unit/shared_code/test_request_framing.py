"""A body must come with a Content-Length: chunked requests are refused up front."""

from __future__ import annotations

import pytest

from shared_code.errors import LengthRequired
from shared_code.request_framing import refuse_chunked_body


@pytest.mark.parametrize("header", ["Transfer-Encoding", "transfer-encoding"])
@pytest.mark.parametrize("value", ["chunked", "Chunked", "gzip, chunked"])
def test_a_chunked_body_is_411(header: str, value: str) -> None:
    with pytest.raises(LengthRequired) as caught:
        refuse_chunked_body({header: value})
    assert caught.value.status == 411 and caught.value.problem()["type"].endswith("/length-required")


@pytest.mark.parametrize("headers", [{}, {"Content-Length": "12"}, {"Transfer-Encoding": "identity"}])
def test_a_framed_body_or_none_passes(headers: dict[str, str]) -> None:
    refuse_chunked_body(headers)
