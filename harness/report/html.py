"""Self-contained HTML pieces: one inline stylesheet, tables, verdict cells, PNGs as data URIs.

No scripts, no fonts, no links out: a report opens from a file on a machine with no network.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

CSS = """
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:16px auto;max-width:1220px;
color:#222;padding:0 16px;overflow-wrap:break-word}
h1{font-size:20px;margin:0 0 2px}
h2{font-size:17px;margin:26px 0 8px;border-bottom:1px solid #ddd;padding-bottom:3px}
h3{font-size:14px;margin:14px 0 6px}
.meta{color:#555;margin-bottom:10px;font-size:13px}
.scroll{max-width:100%;overflow-x:auto}
table{border-collapse:collapse;margin:6px 0 12px;font-size:13px}
th,td{border:1px solid #d8d8d8;padding:4px 9px;text-align:left;vertical-align:top}
th{background:#f3f3f3;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.nowrap{white-space:nowrap}
.pass{background:#e3f4e1;color:#1b5e20;font-weight:600}
.fail{background:#fde2e1;color:#b71c1c;font-weight:600}
.warn{background:#fff4d6;color:#7a5200;font-weight:600}
.banner{padding:10px 14px;border-radius:6px;margin:10px 0 16px;font-weight:600}
.banner.pass{border:1px solid #9ccc9a}
.banner.fail{border:1px solid #ef9a9a}.banner.warn{border:1px solid #e6c36a}
#verdict{border-radius:8px;margin:8px 0 14px;padding:12px 16px;border:2px solid}
#verdict.pass{border-color:#66bb6a}#verdict.fail{border-color:#e57373}#verdict.warn{border-color:#e6c36a}
#verdict .state{font-size:30px;font-weight:800;letter-spacing:.5px;margin-right:12px}
#verdict .headline{font-weight:600;font-size:15px}
#verdict ul{margin:8px 0 0;padding-left:20px;font-weight:500;color:#222}
#verdict li{margin:2px 0}
#verdict li.bad{color:#b71c1c;font-weight:700}
#verdict ul.trends{color:#333}
#verdict ul.unjudged{color:#7a5200;font-size:13px}
#verdict .tag{display:inline-block;font-size:13px;padding:2px 8px;border-radius:4px;background:#fff4d6;
color:#7a5200;border:1px solid #e6c36a;vertical-align:middle;margin-right:8px}
.facts{display:flex;flex-wrap:wrap;gap:8px;margin:6px 0 10px}
.fact{border:1px solid #ddd;border-radius:6px;padding:6px 10px;min-width:150px;background:#fafafa}
.fact b{display:block;font-size:18px}
.legend{display:flex;flex-wrap:wrap;gap:4px 14px;font-size:12px;margin:4px 0}
.legend span::before{content:"";display:inline-block;width:12px;height:12px;margin-right:5px;
vertical-align:-2px;background:var(--c);border-radius:2px}
details{margin:6px 0 10px}
summary{cursor:pointer;color:#1a4f8b;font-weight:600}
img{max-width:100%;height:auto;border:1px solid #eee;margin:6px 0;display:block}
code{background:#f4f4f4;padding:0 3px;border-radius:3px}
pre{background:#f7f7f7;border:1px solid #e3e3e3;padding:6px 9px;font-size:12px;white-space:pre-wrap;
overflow-wrap:anywhere;max-width:100%}
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
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def collapsed(summary: str, body: str, *, open_: bool = False) -> str:
    """A ``<details>`` block: long lists stay one click away instead of filling the page."""
    return f"<details{' open' if open_ else ''}><summary>{escape(summary)}</summary>{body}</details>"


def legend(entries: Iterable[tuple[str, str]]) -> str:
    """Colour swatches with names, as HTML (the same colours as the plots)."""
    items = "".join(f'<span style="--c:{escape(colour)}">{escape(name)}</span>' for colour, name in entries)
    return f'<div class="legend">{items}</div>'


def facts(items: Iterable[tuple[str, str]]) -> str:
    """A row of key figures: a big value with a small caption each."""
    body = "".join(f'<div class="fact"><b>{escape(v)}</b>{escape(k)}</div>' for k, v in items)
    return f'<div class="facts">{body}</div>'


def kv_table(items: Iterable[tuple[str, Any]]) -> str:
    """A two-column table of name and value, without a header row."""
    body = "".join(f"<tr><th>{escape(k)}</th>{cell(v)}</tr>" for k, v in items)
    return f'<div class="scroll"><table><tbody>{body}</tbody></table></div>'


def banner(text: str, cls: str) -> str:
    return f'<div class="banner {cls}">{e(text)}</div>'


def image(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    size = _png_size(png)
    dims = f' width="{size[0]}" height="{size[1]}"' if size else ""
    return f'<img alt="{escape(alt)}"{dims} src="data:image/png;base64,{data}">'


def _png_size(png: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG's IHDR, so the page reserves the image's space before it decodes."""
    if png[:8] != b"\x89PNG\r\n\x1a\n" or len(png) < 24:
        return None
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{escape(title)}</title>'
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
