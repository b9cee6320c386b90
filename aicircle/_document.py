"""A small document builder: sections of text, tables and figures, rendered as Markdown and HTML.

The HTML embeds every figure as base64 PNG so that ``report.html`` reads
offline, alone; the Markdown links the PNG files beside it.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

import pandas as pd


class Document:
    def __init__(self, title: str):
        self.title = title
        self.blocks: list[tuple] = []

    def heading(self, text: str, level: int = 2):
        self.blocks.append(("heading", level, text))

    def text(self, markdown: str):
        """A paragraph (inline Markdown: **bold**, `code`)."""
        self.blocks.append(("text", markdown.strip()))

    def bullets(self, items):
        self.blocks.append(("bullets", [str(i) for i in items]))

    def code(self, text: str):
        self.blocks.append(("code", text.rstrip()))

    def table(self, frame: pd.DataFrame, caption: str = "", floatfmt: str = "{:.4g}", index=True):
        self.blocks.append(("table", frame, caption, floatfmt, index))

    def figure(self, path: Path, caption: str):
        self.blocks.append(("figure", Path(path), caption))

    # ------------------------------------------------------------------
    def markdown(self) -> str:
        out = [f"# {self.title}", ""]
        for b in self.blocks:
            kind = b[0]
            if kind == "heading":
                out += ["#" * b[1] + " " + b[2], ""]
            elif kind == "text":
                out += [b[1], ""]
            elif kind == "bullets":
                out += [f"- {i}" for i in b[1]] + [""]
            elif kind == "code":
                out += ["```", b[1], "```", ""]
            elif kind == "table":
                frame, caption, fmt, index = b[1:]
                if caption:
                    out += [f"*{caption}*", ""]
                out += [_markdown_table(frame, fmt, index), ""]
            elif kind == "figure":
                out += [f"![{b[2]}]({b[1].name})", "", f"*{b[2]}*", ""]
        return "\n".join(out)

    def html(self) -> str:
        parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
                 f"<title>{html.escape(self.title)}</title><style>{_CSS}</style></head><body>",
                 f"<h1>{html.escape(self.title)}</h1>"]
        for b in self.blocks:
            kind = b[0]
            if kind == "heading":
                parts.append(f"<h{b[1]}>{html.escape(b[2])}</h{b[1]}>")
            elif kind == "text":
                parts.append(f"<p>{_inline(b[1])}</p>")
            elif kind == "bullets":
                parts.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in b[1]) + "</ul>")
            elif kind == "code":
                parts.append(f"<pre><code>{html.escape(b[1])}</code></pre>")
            elif kind == "table":
                frame, caption, fmt, index = b[1:]
                table = _format(frame, fmt).to_html(index=index, escape=True, border=0, na_rep="")
                cap = f"<p class='caption'>{_inline(caption)}</p>" if caption else ""
                parts.append(f"<div class='table'>{cap}{table}</div>")
            elif kind == "figure":
                data = base64.b64encode(b[1].read_bytes()).decode("ascii")
                parts.append(f"<figure><img alt='{html.escape(b[2], quote=True)}' "
                             f"src='data:image/png;base64,{data}'>"
                             f"<figcaption>{_inline(b[2])}</figcaption></figure>")
        parts.append("</body></html>")
        return "\n".join(parts)


def _format(frame, fmt):
    out = frame.copy()
    for col in out.columns:
        if pd.api.types.is_float_dtype(out[col]):
            out[col] = [("" if pd.isna(v) else fmt.format(v)) for v in out[col]]
    return out


def _markdown_table(frame, fmt, index):
    f = _format(frame, fmt)
    if index:
        f = f.reset_index()
    cols = [str(c) for c in f.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in f.itertuples(index=False):
        lines.append("| " + " | ".join(str(v).replace("|", "/") for v in row) + " |")
    return "\n".join(lines)


def _inline(text):
    out = html.escape(text)
    out = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)
    out = re.sub(r"\*(?!\s)([^*]+?)(?<!\s)\*", r"<em>\1</em>", out)
    out = re.sub(r"`(.+?)`", r"<code>\1</code>", out)
    return out


_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#1d1d1f;line-height:1.5}
h1{border-bottom:2px solid #c1121f;padding-bottom:.3em}h2{margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}th,td{padding:.25em .6em;text-align:right;
border-bottom:1px solid #eee}th{background:#f5f5f7}td:first-child,th:first-child{text-align:left}
figure{margin:1.5em 0}img{max-width:100%;border:1px solid #eee}figcaption,.caption{font-size:.9em;color:#555}
code{background:#f5f5f7;padding:0 .2em}pre{background:#f5f5f7;padding:.8em;overflow-x:auto}
.table{overflow-x:auto}
"""
