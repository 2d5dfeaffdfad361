"""The summary's rows as a Markdown page and as a static HTML page (no JavaScript).

Both hold the same three parts: the table of cells (status, build time, cache origin,
output sizes, packages, boot seconds to login, reproducibility), why each failed cell
failed, and the seconds of every step per cell.  Every value from a report is escaped
(``html.escape``, in Markdown too, where a ``|`` is escaped as well).
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from .rows import Row

COLUMNS = ("cell", "status", "build", "cache", "outputs", "packages", "boot (to login)", "reproducible")
NONE = "\u2014"


def headline(rows: Sequence[Row]) -> str:
    passed = sum(1 for row in rows if row.passed)
    return f"{len(rows)} cells: {passed} passed, {len(rows) - passed} failed or missing"


def _cells(row: Row) -> list[str]:
    seconds = f"{row.seconds:.0f} s" if row.seconds is not None else ""
    values = [row.label, row.status, seconds, row.cache, row.outputs, row.packages, row.boot, row.reproducible]
    return [value or NONE for value in values]


def step_names(rows: Sequence[Row]) -> list[str]:
    names: dict[str, None] = {}
    for row in rows:
        names.update((name, None) for name, _seconds, _outcome in row.steps)
    return list(names)


def _step_cells(row: Row, names: list[str]) -> list[str]:
    steps = {name: (seconds, outcome) for name, seconds, outcome in row.steps}
    shown = []
    for name in names:
        seconds, outcome = steps.get(name, (None, ""))
        if seconds is not None and outcome == "done":
            shown.append(f"{seconds:.1f}")
        else:
            shown.append(outcome if outcome and outcome != "not run" else NONE)
    return shown


def _md(text: str) -> str:
    """A value in Markdown: on one line, its | escaped, and its <, > and & too (Markdown passes HTML on)."""
    return html.escape(" ".join(text.split()), quote=False).replace("|", "\\|")


def _md_table(header: Sequence[str], body: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(_md(cell) for cell in header) + " |", "|" + " --- |" * len(header)]
    return lines + ["| " + " | ".join(_md(cell) for cell in cells) + " |" for cells in body]


def markdown(rows: Sequence[Row], title: str) -> str:
    lines = [f"# {_md(title)}", "", headline(rows), "", *_md_table(COLUMNS, [_cells(row) for row in rows])]
    failed = [row for row in rows if not row.passed]
    if failed:
        lines += ["", "## Why", ""] + [f"- **{_md(row.label)}**: {_md(row.status)}: {_md(row.detail)}"
                                       for row in failed]
    names = step_names(rows)
    if names:
        lines += ["", "## Steps (seconds)", "",
                  *_md_table(["cell", *names], [[row.label, *_step_cells(row, names)] for row in rows])]
    return "\n".join(lines) + "\n"


STYLE = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:2em}"
         "th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}"
         "th{background:#eee}.passed{background:#dfd}.failed{background:#fdd}")


def _html_table(header: Sequence[str], body: list[tuple[str, list[str]]]) -> list[str]:
    """``body``: (the row's class, its cells)."""
    lines = ["<table>", "<tr>" + "".join(f"<th>{html.escape(cell)}</th>" for cell in header) + "</tr>"]
    for css, cells in body:
        lines.append(f'<tr class="{css}">' + "".join(f"<td>{html.escape(cell)}</td>" for cell in cells) + "</tr>")
    return [*lines, "</table>"]


def page(rows: Sequence[Row], title: str) -> str:
    css = {row.slug: "passed" if row.passed else "failed" for row in rows}
    lines = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             f"<title>{html.escape(title)}</title>", f"<style>{STYLE}</style>", "</head>", "<body>",
             f"<h1>{html.escape(title)}</h1>", f"<p>{html.escape(headline(rows))}</p>",
             *_html_table(COLUMNS, [(css[row.slug], _cells(row)) for row in rows])]
    failed = [row for row in rows if not row.passed]
    if failed:
        lines += ["<h2>Why</h2>", "<ul>"] + [
            f"<li><b>{html.escape(row.label)}</b>: {html.escape(row.status)}: {html.escape(row.detail)}</li>"
            for row in failed] + ["</ul>"]
    names = step_names(rows)
    if names:
        lines += ["<h2>Steps (seconds)</h2>",
                  *_html_table(["cell", *names], [(css[row.slug], [row.label, *_step_cells(row, names)])
                                                  for row in rows])]
    return "\n".join([*lines, "</body>", "</html>"]) + "\n"
