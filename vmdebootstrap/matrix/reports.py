"""The cells' reports read back (docs/report.md), for the summary.

A cell's directory holds its build's ``report.json`` and ``junit.xml``, and those of its
boot job in ``boot/`` and of its second build in ``rebuild/`` (commands.py).  A report that
is missing, unreadable or not a vmdebootstrap report is kept as such (``Read.problem``):
the summary shows it as a failed row.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

FORMAT = "vmdebootstrap-report"
ROLES = ("build", "boot", "rebuild")  # the build's own directory; boot/; rebuild/
REPORT = "report.json"
NO_REPORT = "no report: the job did not run, or stopped before writing one (bad input: see its log)"


@dataclasses.dataclass(frozen=True)
class Read:
    path: Path
    data: dict[str, Any] | None  # None: see problem
    problem: str = ""


@dataclasses.dataclass
class CellRun:
    """What one cell left; ``label`` and the expectations come from the matrix when it is given."""

    slug: str
    label: str
    boots: bool = False
    reproducible: bool = False
    root: Path = Path("out")  # the directory its own is in
    reads: dict[str, Read] = dataclasses.field(default_factory=dict)  # role -> its report

    def directory(self, role: str) -> Path:
        return self.root / self.slug if role == "build" else self.root / self.slug / role

    def report(self, role: str) -> Read:
        """The report of ``role``; a missing one when none was found."""
        return self.reads.get(role) or Read(self.directory(role) / REPORT, None, NO_REPORT)


def read(path: Path) -> Read:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return Read(path, None, NO_REPORT)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return Read(path, None, f"unreadable report: {exc}")
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return Read(path, None, "not a vmdebootstrap report")
    return Read(path, data)


def role_of(path: Path) -> tuple[Path, str, str]:
    """(the cells' directory, cell slug, role) of a report by where it lies:
    out/<slug>/[boot/|rebuild/]report.json."""
    parent = path.parent
    if parent.name in ROLES[1:]:
        return parent.parent.parent, parent.parent.name, parent.name
    return parent.parent, parent.name, "build"


def found(arguments: Iterable[Path]) -> list[Path]:
    """The report files named, and those in the directories named (at any depth), in order."""
    paths: list[Path] = []
    for argument in arguments:
        paths.extend(sorted(argument.rglob(REPORT)) if argument.is_dir() else [argument])
    return paths


def collect(paths: Iterable[Path], expected: list[CellRun]) -> list[CellRun]:
    """The expected cells (the matrix's, in its order), then any other cell a report belongs to;
    each with the reports found for it, and a missing report for each one it should have."""
    runs = {run.slug: run for run in expected}
    for path in paths:
        root, slug, role = role_of(path)
        run = runs.setdefault(slug, CellRun(slug, slug, root=root))
        run.reads[role] = read(path)
        if role == "boot":
            run.boots = True
        if role == "rebuild":
            run.reproducible = True
    return list(runs.values())


def items(data: dict[str, Any] | None, key: str) -> list[dict[str, Any]]:
    """A list of objects from a report, whatever the report holds there."""
    value = (data or {}).get(key)
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []
