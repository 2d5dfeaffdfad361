"""The summary from fake reports: a built and booted cell, a failed one, one that left nothing,
a reproducible pair; Markdown, HTML (escaped) and one JUnit file, failures as rows."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from vmdebootstrap.matrix import reports, rows, tables
from vmdebootstrap.matrix.reports import CellRun

from .matrixfiles import SMALL, run, write

STEPS = ["bootstrap", "packages", "system", "users", "finish", "iso"]


def report(outcome: str = "built", *, error: str | None = None, outputs: list[dict[str, Any]] | None = None,
           boot: list[dict[str, Any]] | None = None, date: str = "2026-11-29T09:42:19+00:00",
           steps: list[str] | None = None) -> dict[str, Any]:
    done = steps if steps is not None else STEPS
    return {
        "format": "vmdebootstrap-report", "version": 1, "tool": {"name": "vmdebootstrap", "version": "2.0.0"},
        "seconds": 449.3, "exit_status": 0 if outcome == "built" else 1, "outcome": outcome, "error": error,
        "release": {"name": "trixie", "architecture": "amd64", "release_file": {"date": date}},
        "bootstrap": {"bootstrapper": "mmdebstrap", "reason": "installed", "stage_cache": "miss",
                      "stage_key": "3f0c", "base_cache": "hit"},
        "packages_installed": 251,
        "steps": [{"name": name, "started": "x", "seconds": 10.0 + index, "outcome": "done"}
                  for index, name in enumerate(done)]
        + ([{"name": "iso", "started": None, "seconds": None, "outcome": "not run"}] if outcome != "built" else []),
        "outputs": outputs if outputs is not None else [
            {"path": "/b/out/c/c.iso", "kind": "iso", "size": 412_090_368, "sha256": "9" * 64},
            {"path": "/b/out/c/c.iso.spdx.json", "kind": "iso", "size": 90_000, "sha256": "8" * 64},
            {"path": "/b/out/c/SHA256SUMS", "kind": "checksums", "size": 200, "sha256": "7" * 64}],
        "boot_tests": boot or [],
    }


BIOS = {"firmware": "bios", "passed": True, "seconds_to_login": 41.7, "verdict": "login prompt after 42 s"}
UEFI_FAILED = {"firmware": "uefi", "passed": False, "seconds_to_login": None, "verdict": "no login prompt <in 900 s>"}


def put(directory: Path, data: dict[str, Any] | str, junit: str | None = None) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "report.json").write_text(data if isinstance(data, str) else json.dumps(data))
    if junit is not None:
        (directory / "junit.xml").write_text(junit)


def junit(name: str, failures: int = 0) -> str:
    cases = "".join(f'<testcase classname="vmdebootstrap" name="{step}"/>' for step in STEPS)
    return (f'<?xml version="1.0"?><testsuites><testsuite name="{name}" tests="{len(STEPS)}" '
            f'failures="{failures}" errors="0" skipped="0" time="2.5">{cases}</testsuite></testsuites>')


@pytest.fixture
def out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """SMALL's cells: trixie amd64 live built and booted; trixie amd64 minbase failed; trixie arm64 live
    built, its boot failed; trixie arm64 minbase left nothing; bookworm amd64 live built (no boot test
    there); bookworm amd64 minbase built twice, the second time with other bytes."""
    monkeypatch.chdir(tmp_path)
    write(tmp_path, SMALL + "reproducible:\n  - {release: bookworm, config: minbase}\n")
    cells = tmp_path / "out"
    put(cells / "trixie-amd64-live", report(), junit("vmdebootstrap"))
    put(cells / "trixie-amd64-live/boot", report(boot=[BIOS], steps=["boot test"]), junit("boot"))
    put(cells / "trixie-amd64-minbase", report("failed", error="bootstrap: command failed (exit status 1): "
                                               "mmdebstrap ... | <b>", outputs=[]), junit("vmdebootstrap", 1))
    put(cells / "trixie-arm64-live", report(), junit("vmdebootstrap"))
    put(cells / "trixie-arm64-live/boot", report("boot-test-failed", error="the boot test failed",
                                                 boot=[UEFI_FAILED], steps=[]), "<testsuite name='b' tests='1' "
        "failures='1'><testcase name='boot test'><failure/></testcase></testsuite>")
    put(cells / "bookworm-amd64-live", report(), "not xml <")
    put(cells / "bookworm-amd64-minbase", report(), junit("vmdebootstrap"))
    second = report(outputs=[{"path": "/b/out/c/rebuild/c.iso", "kind": "iso", "size": 1, "sha256": "1" * 64}])
    put(cells / "bookworm-amd64-minbase/rebuild", second, junit("vmdebootstrap"))
    return tmp_path


def test_every_cell_is_a_row_and_what_failed_says_why(capsys: pytest.CaptureFixture[str], out: Path) -> None:
    status, printed, _err = run(capsys, "summary", "--matrix", "matrix.yml", "--out", "summary", "out")
    assert status == 0
    assert printed.splitlines() == [
        "trixie amd64 live: passed",
        "trixie amd64 minbase: failed: bootstrap: command failed (exit status 1): mmdebstrap ... | <b>",
        "trixie arm64 live: boot failed: boot test: no login prompt <in 900 s>",
        "trixie arm64 minbase: missing: " + reports.NO_REPORT,
        "bookworm amd64 live: passed",
        "bookworm amd64 minbase: not reproducible: the two builds' outputs differ: SHA256SUMS, c.iso, "
        "c.iso.spdx.json"]
    markdown = (out / "summary/summary.md").read_text()
    assert "| trixie amd64 live | passed | 449 s | stage miss, base hit | iso 412.2 MB | 251 | bios login 41.7 s " \
        "| \u2014 |" in markdown
    assert "| trixie arm64 minbase | missing | \u2014 | \u2014 | \u2014 | \u2014 | \u2014 | \u2014 |" in markdown
    assert "mmdebstrap ... \\| &lt;b&gt;" in markdown  # a | in a value does not split the table, nor is <b> bold
    assert "| trixie amd64 live | 10.0 | 11.0 | 12.0 | 13.0 | 14.0 | 15.0 | 10.0 |" in markdown  # the steps
    assert "| trixie amd64 minbase | 10.0 | 11.0 | 12.0 | 13.0 | 14.0 | \u2014 | \u2014 |" in markdown


def test_the_html_page_escapes_what_the_reports_say(capsys: pytest.CaptureFixture[str], out: Path) -> None:
    run(capsys, "summary", "--matrix", "matrix.yml", "--out", "summary", "out")
    page = (out / "summary/public/index.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page
    assert "| <b>" not in page and "mmdebstrap ... | &lt;b&gt;" in page
    assert "no login prompt &lt;in 900 s&gt;" in page
    assert page.count('<tr class="failed">') == 2 * 4 and page.count('<tr class="passed">') == 2 * 2


def test_the_junit_files_are_combined_and_what_is_missing_fails(capsys: pytest.CaptureFixture[str],
                                                                out: Path) -> None:
    run(capsys, "summary", "--matrix", "matrix.yml", "--out", "summary", "out")
    root = ET.parse(out / "summary/junit.xml").getroot()
    names = [suite.get("name") for suite in root]
    assert names == ["build trixie amd64 live: vmdebootstrap", "boot trixie amd64 live: boot",
                     "build trixie amd64 minbase: vmdebootstrap", "build trixie arm64 live: vmdebootstrap",
                     "boot trixie arm64 live: b", "build trixie arm64 minbase", "build bookworm amd64 live",
                     "build bookworm amd64 minbase: vmdebootstrap", "rebuild bookworm amd64 minbase: vmdebootstrap"]
    missing, unparsable = root[5], root[6]
    assert missing.find("testcase/failure").get("message").startswith("no JUnit file out/trixie-arm64-minbase/junit"
                                                                      ".xml")
    assert "not a JUnit file" in unparsable.find("testcase/failure").get("message")
    assert (root.get("tests"), root.get("failures")) == (str(6 * 6 + 1 + 1 + 1), str(1 + 1 + 1 + 1))
    assert root.get("time") == f"{6 * 2.5:.3f}"  # the suites' times summed (the made-up ones have none)


def test_without_the_matrix_the_rows_are_the_reports_found(capsys: pytest.CaptureFixture[str], out: Path) -> None:
    status, printed, _err = run(capsys, "summary", "--out", "s", "out/trixie-amd64-live/report.json",
                                "out/trixie-amd64-live/boot/report.json", "out/nowhere/report.json")
    assert status == 0
    assert printed.splitlines() == ["trixie-amd64-live: passed", "nowhere: missing: " + reports.NO_REPORT]
    assert (out / "s/summary.md").is_file() and (out / "s/public/index.html").is_file()


def test_an_unreadable_report_is_a_failed_row(tmp_path: Path) -> None:
    put(tmp_path / "out/a", "{not json")
    put(tmp_path / "out/b", {"format": "something else"})
    found = reports.collect(reports.found([tmp_path / "out"]), [])
    shown = [rows.row(cell) for cell in found]
    assert [(row.label, row.status) for row in shown] == [("a", "failed"), ("b", "failed")]
    assert shown[0].detail.startswith("unreadable report: ") and shown[1].detail == "not a vmdebootstrap report"


def test_two_builds_from_different_mirror_states_are_not_compared(tmp_path: Path) -> None:
    put(tmp_path / "out/c", report())
    put(tmp_path / "out/c/rebuild", report(date="2026-11-30T09:00:00+00:00",
                                           outputs=[{"path": "/x/c.iso", "kind": "iso", "size": 1, "sha256": "1"}]))
    [cell] = reports.collect(reports.found([tmp_path / "out"]), [])
    row = rows.row(cell)
    assert row.passed and row.reproducible.startswith("not compared: the mirror changed")


def test_two_identical_builds_are_reproducible(tmp_path: Path) -> None:
    put(tmp_path / "out/c", report())
    put(tmp_path / "out/c/rebuild", report(outputs=[
        {"path": "/b/out/c/rebuild/c.iso", "kind": "iso", "size": 412_090_368, "sha256": "9" * 64},
        {"path": "/b/out/c/rebuild/c.iso.spdx.json", "kind": "iso", "size": 90_000, "sha256": "8" * 64},
        {"path": "/b/out/c/rebuild/SHA256SUMS", "kind": "checksums", "size": 200, "sha256": "7" * 64}]))
    row = rows.row(reports.collect(reports.found([tmp_path / "out"]), [])[0])
    assert (row.status, row.reproducible) == ("passed", "identical (3 files)")


def test_a_booted_cell_without_its_boot_report_failed(tmp_path: Path) -> None:
    put(tmp_path / "out/c", report())
    row = rows.row(CellRun("c", "trixie amd64 c", boots=True, root=tmp_path / "out",
                           reads={"build": reports.read(tmp_path / "out/c/report.json")}))
    assert (row.status, row.detail) == ("boot failed", "boot test: " + reports.NO_REPORT)


def test_sizes_and_the_headline() -> None:
    assert [rows.size(n) for n in (999, 1000, 1_500_000, 4_000_000_000)] == ["999 B", "1.0 kB", "1.5 MB", "4.0 GB"]
    assert tables.headline([]) == "0 cells: 0 passed, 0 failed or missing"


def test_a_bad_matrix_writes_no_summary(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "axes: {}\n")
    status, _out, err = run(capsys, "summary", "--matrix", "matrix.yml", "--out", "s", "out")
    assert status == 2 and "matrix.yml:1: axes.release: missing: a matrix needs release, arch and config\n" in err
    assert not (tmp_path / "s").exists()
