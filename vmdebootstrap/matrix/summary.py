"""``vmdebootstrap-matrix summary --out DIR [--matrix FILE] REPORT.json|DIRECTORY...``

Writes ``DIR/summary.md``, ``DIR/public/index.html`` (a GitLab Pages site) and
``DIR/junit.xml`` (every cell's JUnit files in one).  With the matrix, every cell has a
row, in the matrix's order, and a cell that left no report is a failed row; without it,
the rows are the cells whose reports were found.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from . import junitfiles, reports, tables
from .rows import Row, row
from .spec import OUT, Matrix

JUNIT = "junit.xml"


@dataclasses.dataclass(frozen=True)
class Written:
    rows: list[Row]
    files: list[Path]


def expected(matrix: Matrix | None, root: Path) -> list[reports.CellRun]:
    if matrix is None:
        return []
    return [reports.CellRun(cell.slug, cell.label, cell.boots, cell.reproducible, root) for cell in matrix.cells]


def junit_parts(runs: Sequence[reports.CellRun]) -> list[junitfiles.Part]:
    """Each cell's JUnit files: its build's, its boot job's, its second build's, where it has them."""
    parts: list[junitfiles.Part] = []
    for run in runs:
        wanted = ("build", *(("boot",) if run.boots else ()), *(("rebuild",) if run.reproducible else ()))
        parts.extend(junitfiles.Part(f"{role} {run.label}", run.report(role).path.parent / JUNIT) for role in wanted)
    return parts


def summarize(matrix: Matrix | None, out: Path, arguments: Sequence[Path]) -> Written:
    root = next((argument for argument in arguments if argument.is_dir()), Path(OUT))
    runs = reports.collect(reports.found(arguments), expected(matrix, root))
    rows = [row(run) for run in runs]
    title = f"vmdebootstrap matrix {matrix.path.name}" if matrix is not None else "vmdebootstrap matrix"
    (out / "public").mkdir(parents=True, exist_ok=True)
    files = [out / "summary.md", out / "public" / "index.html", out / JUNIT]
    files[0].write_text(tables.markdown(rows, title))
    files[1].write_text(tables.page(rows, title))
    junitfiles.write(junit_parts(runs), files[2])
    return Written(rows, files)
