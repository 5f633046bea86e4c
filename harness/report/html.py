"""Self-contained HTML pieces: one inline stylesheet, tables, verdict cells, PNGs as data URIs.

No scripts, no fonts, no links out: a report opens from a file on a machine with no network.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

CSS = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:24px auto;max-width:1180px;
color:#222;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:3px}
.meta{color:#555;margin-bottom:14px}
table{border-collapse:collapse;margin:6px 0 12px;font-size:13px}
th,td{border:1px solid #d8d8d8;padding:4px 9px;text-align:left;vertical-align:top}
th{background:#f3f3f3;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.pass{background:#e3f4e1;color:#1b5e20;font-weight:600}
.fail{background:#fde2e1;color:#b71c1c;font-weight:600}
.warn{background:#fff4d6;color:#7a5200;font-weight:600}
.banner{padding:10px 14px;border-radius:6px;margin:10px 0 16px;font-weight:600}
.banner.pass{border:1px solid #9ccc9a}
.banner.fail{border:1px solid #ef9a9a}.banner.warn{border:1px solid #e6c36a}
img{max-width:100%;border:1px solid #eee;margin:6px 0}
code{background:#f4f4f4;padding:0 3px;border-radius:3px}
pre{background:#f7f7f7;border:1px solid #e3e3e3;padding:6px 9px;font-size:12px;overflow-x:auto}
.small{color:#666;font-size:12px}
"""


def e(value: Any) -> str:
    """Escaped text for any value (None shows as an em dash)."""
    return "—" if value is None else escape(str(value))


def cell(value: Any, cls: str = "") -> str:
    attr = f' class="{cls}"' if cls else ""
    return f"<td{attr}>{e(value)}</td>"


def status_cell(ok: bool | None, yes: str = "PASS", no: str = "FAIL") -> str:
    if ok is None:
        return '<td class="warn">n/a</td>'
    return f'<td class="pass">{yes}</td>' if ok else f'<td class="fail">{no}</td>'


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A table from pre-rendered ``<td>`` cells (use :func:`cell` / :func:`status_cell`)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(f"<tr>{''.join(r)}</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def kv_table(items: Iterable[tuple[str, Any]]) -> str:
    """A two-column table of name and value, without a header row."""
    body = "".join(f"<tr><th>{escape(k)}</th>{cell(v)}</tr>" for k, v in items)
    return f"<table><tbody>{body}</tbody></table>"


def banner(text: str, cls: str) -> str:
    return f'<div class="banner {cls}">{e(text)}</div>'


def image(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{data}">'


def page(title: str, body: str) -> str:
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{CSS}</style></head><body>\n{body}\n</body></html>\n"
    )


def fmt(value: Any, unit: str = "", digits: int = 3) -> str:
    """Numbers shown compactly with a unit; other values as they are."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}{(' ' + unit) if unit else ''}"
    if isinstance(value, float):
        return f"{value:.{digits}g}{(' ' + unit) if unit else ''}"
    return str(value)
