"""The cells' JUnit files combined into one: every ``testsuite`` of every file, in the
matrix's order, under one ``testsuites`` whose counts are their sums.

Each suite's name gets its job's in front (``build trixie amd64 live: ...``), so that a
test view tells the cells apart.  A file that is missing or does not parse becomes a suite
of one failed test case that says so: a cell that left nothing is a failure, not a gap.
"""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

COUNTS = ("tests", "failures", "errors", "skipped")


@dataclasses.dataclass(frozen=True)
class Part:
    job: str  # the job that writes it: "build trixie amd64 live"
    path: Path


def _failed_suite(job: str, message: str) -> ET.Element:
    suite = ET.Element("testsuite", {"name": job, "tests": "1", "failures": "1", "errors": "0", "skipped": "0"})
    case = ET.SubElement(suite, "testcase", {"classname": job, "name": "JUnit file"})
    ET.SubElement(case, "failure", {"message": message}).text = message
    return suite


def suites(part: Part) -> list[ET.Element]:
    try:
        root = ET.parse(part.path).getroot()
    except FileNotFoundError:
        return [_failed_suite(part.job, f"no JUnit file {part.path}: the job did not run or did not finish")]
    except (OSError, ET.ParseError) as exc:
        return [_failed_suite(part.job, f"{part.path}: not a JUnit file: {exc}")]
    found = [root] if root.tag == "testsuite" else root.findall("testsuite") if root.tag == "testsuites" else []
    if not found:
        return [_failed_suite(part.job, f"{part.path}: no testsuite in it")]
    for suite in found:
        name = suite.get("name")
        suite.set("name", f"{part.job}: {name}" if name else part.job)
    return found


def _count(suite: ET.Element, name: str) -> int:
    try:
        return int(suite.get(name) or 0)
    except ValueError:
        return 0


def _seconds(suite: ET.Element) -> float:
    try:
        return max(float(suite.get("time") or 0), 0.0)
    except ValueError:
        return 0.0


def combine(parts: Sequence[Part]) -> ET.ElementTree:
    root = ET.Element("testsuites", {"name": "vmdebootstrap-matrix"})
    for part in parts:
        root.extend(suites(part))
    for name in COUNTS:
        root.set(name, str(sum(_count(suite, name) for suite in root)))
    root.set("time", f"{sum(_seconds(suite) for suite in root):.3f}")
    return ET.ElementTree(root)


def write(parts: Sequence[Part], path: Path) -> None:
    combine(parts).write(path, encoding="utf-8", xml_declaration=True)
