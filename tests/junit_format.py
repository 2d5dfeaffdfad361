"""A JUnit XML file (--junit FILE, docs/junit.md) read as GitLab's JUnit parser reads it, with every
count and attribute checked: for the unit tier, and for whatever test runs the files a pipeline made.

GitLab's parser wants ``testsuites`` at the top, ``testsuite`` below it, ``testcase`` below that, and
takes a case's status from its child: ``failure`` (failed), ``error`` (error), ``skipped`` (skipped),
none (success); the suite's name, the case's classname, name and time are what it shows.
"""

from __future__ import annotations

import dataclasses
import datetime
import xml.etree.ElementTree as ET

STATUSES = {"failure": "failed", "error": "error", "skipped": "skipped"}
COUNTS = {"failures": "failed", "errors": "error", "skipped": "skipped"}


@dataclasses.dataclass(frozen=True)
class Case:
    suite: str
    classname: str
    name: str
    time: float
    status: str  # success, failed, error or skipped
    message: str  # of the failure, error or skipped child ("" without one)
    type: str
    text: str


def _case(suite: str, element: ET.Element) -> Case:
    for attribute in ("classname", "name", "time"):
        assert element.get(attribute), f"a testcase of {suite!r} has no {attribute}"
    seconds = float(element.get("time", ""))
    assert seconds >= 0, f"{element.get('name')}: negative time"
    results = [child for child in element if child.tag in STATUSES]
    assert len(results) <= 1, f"{element.get('name')}: more than one of failure, error, skipped"
    assert {child.tag for child in element} <= {*STATUSES, "system-out", "system-err"}, element.get("name")
    if not results:
        return Case(suite, element.get("classname", ""), element.get("name", ""), seconds, "success", "", "", "")
    result = results[0]
    if result.tag != "skipped":
        assert result.get("message") and result.get("type"), f"{element.get('name')}: {result.tag} without message"
    message = result.get("message", "")
    assert "\n" not in message, f"{element.get('name')}: a message of more than one line"
    return Case(suite, element.get("classname", ""), element.get("name", ""), seconds, STATUSES[result.tag],
                message, result.get("type", ""), result.text or "")


def _counts(element: ET.Element, cases: list[Case]) -> None:
    """The counts a reader shows before it reads the cases match the cases."""
    assert element.get("tests") == str(len(cases)), f"{element.tag}: tests"
    for attribute, status in COUNTS.items():
        assert element.get(attribute) == str(sum(1 for case in cases if case.status == status)), \
            f"{element.tag}: {attribute}"
    assert float(element.get("time", "")) >= 0


def read(data: bytes) -> list[Case]:
    """Every test case of the file, in order; AssertionError (or ET.ParseError) when GitLab would
    not read it as it is meant to be read."""
    root = ET.fromstring(data)
    assert root.tag == "testsuites", root.tag
    suites = root.findall("testsuite")
    assert suites and len(suites) == len(root), "testsuites holds testsuite elements only"
    every: list[Case] = []
    for suite in suites:
        name = suite.get("name", "")
        assert name, "a testsuite without a name"
        datetime.datetime.fromisoformat(suite.get("timestamp", ""))
        cases = [_case(name, element) for element in suite.findall("testcase")]
        _counts(suite, cases)
        every += cases
    _counts(root, every)
    return every
