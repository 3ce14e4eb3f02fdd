"""A request body must come with a Content-Length.

In Azure, the Functions host gives an out-of-process worker (Python's included) an empty body
for a request sent with `Transfer-Encoding: chunked` (azure-functions-host issues #4926 and
#7930). A toolbar that streams its upload would see its file silently vanish and get a
confusing 400, so such a request is refused plainly, up front, as 411 Length Required. Where
the platform strips the header instead, the body arrives empty and each route's own check
answers 400: no body is ever half-read under either behaviour.
"""

from __future__ import annotations

from collections.abc import Mapping

from shared_code.errors import LengthRequired


def refuse_chunked_body(headers: Mapping[str, str]) -> None:
    """Raise LengthRequired (411) when the request's body was sent chunked."""
    encoding = headers.get("Transfer-Encoding") or headers.get("transfer-encoding") or ""
    if "chunked" in encoding.lower():
        raise LengthRequired("Send the request with a Content-Length header; chunked bodies are not accepted.")
