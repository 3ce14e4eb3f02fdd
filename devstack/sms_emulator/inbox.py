"""The inbox page: the messages received, as HTML with links made clickable and everything else escaped."""

from __future__ import annotations

import html
import re
from typing import Any

_URL = re.compile(r"https?://[^\s<>\"']+")


def _linkify(text: str) -> str:
    """`text` as HTML with every http(s) URL a link; everything escaped."""
    out, pos = [], 0
    for match in _URL.finditer(text):
        url = match.group(0).rstrip(".,;:!?)]}")
        out.append(html.escape(text[pos : match.start()]))
        out.append(f'<a href="{html.escape(url, quote=True)}" rel="noreferrer">{html.escape(url)}</a>')
        pos = match.start() + len(url)
    out.append(html.escape(text[pos:]))
    return "".join(out)


def render_inbox(messages: list[dict[str, Any]]) -> str:
    """The inbox page for these messages, newest last."""
    rows = "\n".join(
        "<tr>"
        f"<td>{html.escape(m['receivedAt'])}</td><td>{html.escape(m['from'])}</td>"
        f'<td>{html.escape(m["to"])}</td><td class="text">{_linkify(m["message"])}</td>'
        f"<td><code>{html.escape(m['id'])}</code></td>"
        "</tr>"
        for m in messages
    )
    empty = "" if messages else '<p class="empty">No messages yet.</p>'
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>SMS emulator inbox</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5rem; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ border-bottom: 1px solid #ccc; padding: .4rem .6rem; text-align: left; vertical-align: top; }}
td.text {{ white-space: pre-wrap; overflow-wrap: anywhere; }}
</style>
</head>
<body>
<h1>SMS emulator inbox</h1>
<p>{len(messages)} message(s), newest last. <a href="/">Refresh</a> · <a href="/messages">JSON</a></p>
{empty}
<table>
<thead><tr><th>Received</th><th>From</th><th>To</th><th>Message</th><th>Id</th></tr></thead>
<tbody>
{rows}
</tbody>
</table>
</body>
</html>
"""
