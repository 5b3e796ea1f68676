"""A minimal, self-contained HTML page shell shared by convsim's reports."""

from __future__ import annotations

from html import escape

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#1b1f24;
background:#fff;max-width:1200px}
h1{font-size:1.5rem;margin-bottom:.25rem}h2{font-size:1.15rem;margin-top:2rem}
.muted{color:#57606a}table{border-collapse:collapse;width:100%;margin:.75rem 0;font-size:.9rem}
th,td{border:1px solid #d0d7de;padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#1a7f37;font-weight:600}.bad{color:#cf222e;font-weight:600}
.warn{color:#9a6700;font-weight:600}
pre{white-space:pre-wrap;word-break:break-word;margin:0;font-size:.85rem}
.pill{display:inline-block;padding:.05rem .45rem;border-radius:1rem;background:#eaeef2;
font-size:.8rem}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:.5rem}
.cell{border:1px solid #d0d7de;border-radius:6px;padding:.5rem;background:#f6f8fa}
.cell.del{background:#ffebe9}.cell.add{background:#dafbe1}
svg text{font-family:inherit;font-size:11px}
"""


def page(title: str, body: str, subtitle: str = "") -> str:
    """A complete HTML document with convsim's report styling (no external assets)."""
    sub = f'<p class="muted">{escape(subtitle)}</p>' if subtitle else ""
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        f"<title>{escape(title)}</title>"
        f"<style>{_CSS}</style></head><body><h1>{escape(title)}</h1>{sub}{body}</body></html>"
    )


def table(headers: list[str], rows: list[list[str]], numeric: set[int] | None = None) -> str:
    """An HTML table; cells are given already escaped (use :func:`escape`)."""
    numeric = numeric or set()
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td class=num>{c}</td>" if i in numeric else f"<td>{c}</td>"
            for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


__all__ = ["escape", "page", "table"]
