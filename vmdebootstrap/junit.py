"""--junit FILE: what one build did as a JUnit XML file, for a CI system's test view (docs/junit.md).

One test suite, the build: a test case per step of the plan (classname ``vmdebootstrap.build``)
and one per firmware the boot test boots (``vmdebootstrap.boot``).  The step that failed has a
``failure`` with the error and the last lines of the build log, the one a signal interrupted
an ``error``; the steps that never ran and the firmwares never booted are ``skipped``, so that
every build of a configuration has the same test cases and a CI system can compare them.

It is made from what report.Report collected for the JSON report (the step records, the boot
results) and written by it, at the same moments and as atomically.  The layout is the one
GitLab's JUnit parser reads: ``testsuites``, then ``testsuite``, then ``testcase`` with at most
one ``failure``, ``error`` or ``skipped`` child.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from . import __version__, secret
from .boot.console import BootResult
from .settings import Settings
from .ui import StepRecord

BUILD = "vmdebootstrap.build"
BOOT = "vmdebootstrap.boot"
# How much of the build log a failed step carries, and of the transcript a failed boot.
TAIL_LINES = 40
# Read from the end: a debug log is megabytes, and forty lines are a few kilobytes of it.
_TAIL_BYTES = 256 * 1024
# What XML 1.0 cannot carry at all (a console transcript may hold escape sequences, NULs).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclasses.dataclass(frozen=True)
class Build:
    """What the file is made of: report.Report's records, as the build ended."""

    name: str  # the test suite's: suite_name
    started: float  # wall clock, seconds since the epoch
    seconds: float
    outcome: str  # as the report has it: built, failed, boot-test-failed, interrupted
    exit_status: int
    error: str | None  # the one message on stderr; None when built
    log: Path
    steps: Sequence[tuple[str, StepRecord | None]]  # every step of the plan in order; None: it did not run
    boots: Sequence[BootResult]
    firmwares: Sequence[str]  # those the boot test boots: one without a result was not booted


def suite_name(settings: Settings) -> str:
    """``vmdebootstrap RELEASE ARCH`` and the names of the outputs (or of the image --boot-test-only boots):
    what tells one cell of an image matrix from another."""
    names = [path.name for path in settings.outputs.values()]
    if settings.boot_test_only is not None:
        names.append(settings.boot_test_only.name)
    return " ".join(["vmdebootstrap", settings.release.name, settings.arch.name, *names])


def tail(path: Path, count: int = TAIL_LINES) -> str:
    """The last ``count`` lines of a text file; "" when it cannot be read (the file must still be written)."""
    try:
        with open(path, "rb") as stream:
            size = stream.seek(0, os.SEEK_END)
            stream.seek(max(0, size - _TAIL_BYTES))
            data = stream.read()
    except OSError:
        return ""
    return "\n".join(data.decode(errors="replace").splitlines()[-count:])


def _xml(text: str) -> str:
    """Every text of the file: what XML can carry, a mirror URL's credentials redacted (here, not in
    the XML made of it: "<secret>" is no text there)."""
    return _NOT_XML.sub("", secret.without_credentials(text))


def _one_line(text: str) -> str:
    """A message attribute: one line (an error may carry a command's output below its first)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return _xml(lines[0]) if lines else ""


def _case(suite: ET.Element, classname: str, name: str, seconds: float) -> ET.Element:
    return ET.SubElement(suite, "testcase", classname=classname, name=_xml(name), time=f"{seconds:.3f}")


def _result(case: ET.Element, kind: str, message: str, type_: str, text: str = "") -> None:
    """The case's one failure, error or skipped child (GitLab takes the case's status from its tag)."""
    child = ET.SubElement(case, kind, message=_one_line(message), type=type_)
    if text:
        child.text = _xml(text)


def _stopped(build: Build) -> str:
    """Why the steps after the failed one did not run, in a few words (its case has the details)."""
    for name, record in build.steps:
        if record is not None and record.outcome == "interrupted":
            return f"interrupted during step '{name}'"
        if record is not None and record.outcome != "done":
            return f"step '{name}' failed"
    return "an earlier step did not finish"


def _steps(suite: ET.Element, build: Build) -> None:
    log_tail = ""
    for name, record in build.steps:
        case = _case(suite, BUILD, name, record.seconds if record is not None else 0.0)
        why = build.error or f"step '{name}' failed"
        if record is None:
            _result(case, "skipped", f"not run: {_stopped(build)}", "not run")
        elif record.outcome != "done":
            log_tail = log_tail or f"{why}\n\nthe last lines of the build log {build.log}:\n{tail(build.log)}"
            if record.outcome == "interrupted":
                _result(case, "error", why, "interrupted", log_tail)
            else:
                _result(case, "failure", why, "failed", log_tail)


def _boots(suite: ET.Element, build: Build) -> None:
    booted = {result.firmware for result in build.boots}
    for result in build.boots:
        seconds = result.seconds_to_login if result.seconds_to_login is not None else result.seconds
        case = _case(suite, BOOT, result.firmware, seconds or 0.0)
        if not result.passed:
            units = f"failed units: {', '.join(result.failed_units)}\n" if result.failed_units else ""
            _result(case, "failure", result.verdict, "boot-test-failed",
                    f"{result.verdict}\n{units}\nthe last lines of the console transcript {result.console_log}:\n"
                    f"{tail(result.console_log)}")
    for firmware in build.firmwares:
        if firmware not in booted:
            _result(_case(suite, BOOT, firmware, 0.0), "skipped", f"not booted: {_stopped(build)}", "not run")


def _counted(element: ET.Element, cases: list[ET.Element], seconds: float) -> None:
    """The counts JUnit readers show before they read the cases."""
    element.set("tests", str(len(cases)))
    for kind, attribute in (("failure", "failures"), ("error", "errors"), ("skipped", "skipped")):
        element.set(attribute, str(sum(1 for case in cases if case.find(kind) is not None)))
    element.set("time", f"{seconds:.3f}")


def document(build: Build) -> ET.Element:
    """``testsuites`` holding the build's one ``testsuite``."""
    root = ET.Element("testsuites", name="vmdebootstrap")
    started = datetime.datetime.fromtimestamp(build.started, datetime.UTC).replace(tzinfo=None)
    # JUnit's schema has the timestamp without a zone: it is UTC here.
    suite = ET.SubElement(root, "testsuite", name=_xml(build.name), timestamp=started.isoformat(timespec="seconds"))
    properties = ET.SubElement(suite, "properties")
    for name, value in (("vmdebootstrap.version", __version__), ("outcome", build.outcome),
                        ("exit_status", str(build.exit_status)), ("log", os.fspath(build.log))):
        ET.SubElement(properties, "property", name=name, value=_xml(value))
    _steps(suite, build)
    _boots(suite, build)
    cases = suite.findall("testcase")
    _counted(suite, cases, build.seconds)
    _counted(root, cases, build.seconds)
    ET.indent(root)
    return root


def text(build: Build) -> bytes:
    """The file's bytes: UTF-8, with its XML declaration."""
    data: bytes = ET.tostring(document(build), encoding="utf-8", xml_declaration=True)
    return data + b"\n"
