"""--junit FILE: written by main.run_build whenever the JSON report is (built, failed, boot test failed,
interrupted), made from the same records, and read as GitLab's JUnit parser reads it (tests/junit_format.py).

The builds are test_report.py's: the real recipe against a FakeRunner.
"""

from __future__ import annotations

import signal
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from vmdebootstrap import junit, recipe, report, ui
from vmdebootstrap.boot import check as boot_check
from vmdebootstrap.boot.console import BootResult
from vmdebootstrap.boot.qemu import BootTestError
from vmdebootstrap.errors import Interrupted, UsageError
from vmdebootstrap.run import Result
from vmdebootstrap.settings import Settings

from ..junit_format import Case, read
from .conftest import MakeSettings
from .test_main import REAL_RUN_BUILD
from .test_report import SECRET, Mirror, build, faked  # noqa: F401 (faked: a fixture)

STEPS = ["bootstrap", "packages", "system", "users", "finish", "tarball", "manifest"]


def junit_build(make_settings: MakeSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *,
                fail: str = "", mirror: Mirror | None = None) -> tuple[int, dict[str, object], list[Case], bytes]:
    """A fake build with --report and --junit: (exit status, the report, the JUnit file's cases, its bytes)."""
    status, document, _ = build(make_settings, tmp_path, monkeypatch, "--junit", str(tmp_path / "junit.xml"),
                                fail=fail, mirror=mirror)
    data = (tmp_path / "junit.xml").read_bytes()
    return status, document, read(data), data


def suite(data: bytes) -> ET.Element:
    found = ET.fromstring(data).find("testsuite")
    assert found is not None
    return found


def log_tail_when_written(log: Path, count: int = junit.TAIL_LINES) -> str:
    """The build log's last lines as the JUnit file was written: before the line that says it was."""
    lines = log.read_text().splitlines()
    end = next(n for n, line in enumerate(lines) if "wrote the JUnit file" in line)
    return "\n".join(lines[end - count:end])


@pytest.mark.usefixtures("process_state", "faked")
def test_a_built_tarball_s_junit_file_has_a_passed_case_per_step(make_settings: MakeSettings, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    status, document, cases, data = junit_build(make_settings, tmp_path, monkeypatch)
    assert status == 0
    assert [(c.classname, c.name, c.status) for c in cases] == [(junit.BUILD, name, "success") for name in STEPS]
    steps = document["steps"]
    assert isinstance(steps, list) and [step["name"] for step in steps] == STEPS
    for case, step in zip(cases, steps, strict=True):  # the same records as the report's
        assert abs(case.time - step["seconds"]) <= 0.051
    found = suite(data)
    assert found.get("name") == "vmdebootstrap bookworm amd64 root.tar"
    assert [found.get(a) for a in ("tests", "failures", "errors", "skipped")] == ["7", "0", "0", "0"]
    properties = {p.get("name"): p.get("value") for p in found.iter("property")}
    assert (properties["outcome"], properties["exit_status"]) == ("built", "0")
    assert properties["log"] == str(tmp_path / "build.log")
    assert data.startswith(b"<?xml version='1.0' encoding='utf-8'?>\n<testsuites")
    assert SECRET.encode() not in data
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no partial file left


@pytest.mark.usefixtures("process_state", "faked")
def test_the_failed_step_has_the_error_and_the_log_s_tail_and_later_steps_are_skipped(
        make_settings: MakeSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    status, document, cases, _ = junit_build(make_settings, tmp_path, monkeypatch, fail="tar")
    assert status == 1
    assert [(c.name, c.status) for c in cases][-3:] == [("finish", "success"), ("tarball", "failed"),
                                                        ("manifest", "skipped")]
    tarball, manifest = cases[-2:]
    error = document["error"]
    assert isinstance(error, str)
    assert tarball.message == error.splitlines()[0]
    assert tarball.message.startswith("step 'tarball' failed: command failed (exit status 1)")
    assert tarball.type == "failed"
    assert tarball.text.startswith(error)
    tail = log_tail_when_written(tmp_path / "build.log")
    assert tail in tarball.text and "tar: simulated failure" in tail
    assert manifest.message == "not run: step 'tarball' failed" and manifest.time == 0


class Interrupting(Mirror):
    """SIGTERM arrives while the users step runs chpasswd."""

    def __call__(self, argv: list[str]) -> Result | None:
        if (argv[2:] if argv[0] == "chroot" else argv)[0] == "chpasswd":
            raise Interrupted(signal.SIGTERM)
        return super().__call__(argv)


@pytest.mark.usefixtures("process_state", "faked")
def test_an_interrupted_build_s_running_step_is_an_error(make_settings: MakeSettings, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    status, document, cases, data = junit_build(make_settings, tmp_path, monkeypatch, mirror=Interrupting())
    assert status == 128 + signal.SIGTERM and document["outcome"] == "interrupted"
    assert [(c.name, c.status) for c in cases] == [
        ("bootstrap", "success"), ("packages", "success"), ("system", "success"), ("users", "error"),
        ("finish", "skipped"), ("tarball", "skipped"), ("manifest", "skipped")]
    users = cases[3]
    assert (users.message, users.type) == ("interrupted by signal 15 during step 'users'", "interrupted")
    assert log_tail_when_written(tmp_path / "build.log") in users.text
    assert cases[-1].message == "not run: interrupted during step 'users'"
    found = suite(data)
    assert [found.get(a) for a in ("tests", "failures", "errors", "skipped")] == ["7", "0", "1", "3"]


def boot_test_only(make_settings: MakeSettings, tmp_path: Path, *argv: str) -> Settings:
    image = tmp_path / "disk.img"
    image.write_bytes(b"")
    return make_settings("--boot-test-only", str(image), "--user", "u/pw", "--log", str(tmp_path / "build.log"),
                         "--junit", str(tmp_path / "junit.xml"), "--boot-firmware", "bios", "--boot-firmware",
                         "uefi", *argv)


@pytest.mark.usefixtures("process_state", "faked")
def test_a_failed_boot_test_has_its_verdict_and_the_console_s_tail(make_settings: MakeSettings, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    console = tmp_path / "uefi.log"
    # A transcript holds what XML cannot carry: an escape sequence, a NUL.
    console.write_text("".join(f"line {n}\n" for n in range(100)) + "\x1b[2Jlast words\x00\n")

    def boot(_settings: Settings, _image: Path, _workdir: Path, kind: str = "",
             results: list[BootResult] | None = None) -> bool:
        assert results is not None
        results += [BootResult("bios", True, 41.72, "login prompt after 42 s; system running", [],
                               tmp_path / "bios.log", seconds=63.0),
                    BootResult("uefi", False, None, "no login prompt within 900 s", ["foo.service"], console,
                               seconds=900.4)]
        return False

    monkeypatch.setattr(boot_check, "run", boot)
    assert REAL_RUN_BUILD(boot_test_only(make_settings, tmp_path)) == 1
    data = (tmp_path / "junit.xml").read_bytes()
    cases = read(data)
    assert [(c.classname, c.name, c.status) for c in cases] == [
        (junit.BUILD, recipe.BOOT_TEST, "success"), (junit.BOOT, "bios", "success"), (junit.BOOT, "uefi", "failed")]
    bios, uefi = cases[1:]
    assert bios.time == 41.72  # to the login prompt
    assert uefi.time == 900.4  # no login: the whole boot
    assert (uefi.message, uefi.type) == ("no login prompt within 900 s", "boot-test-failed")
    assert "failed units: foo.service" in uefi.text and str(console) in uefi.text
    assert "line 60\nline 61" not in uefi.text and "line 61\nline 62" in uefi.text and "[2Jlast words" in uefi.text
    assert suite(data).get("name") == "vmdebootstrap bookworm amd64 disk.img"


@pytest.mark.usefixtures("process_state", "faked")
def test_firmwares_a_failed_boot_test_never_booted_are_skipped(make_settings: MakeSettings, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    def boot(*_: object, **__: object) -> bool:
        raise BootTestError("qemu-system-x86_64 not found (apt-get install qemu-system-x86)")

    monkeypatch.setattr(boot_check, "run", boot)
    assert REAL_RUN_BUILD(boot_test_only(make_settings, tmp_path)) == 1
    cases = read((tmp_path / "junit.xml").read_bytes())
    assert [(c.name, c.status) for c in cases] == [(recipe.BOOT_TEST, "failed"), ("bios", "skipped"),
                                                   ("uefi", "skipped")]
    assert cases[0].message == "qemu-system-x86_64 not found (apt-get install qemu-system-x86)"
    assert cases[1].message == "not booted: step 'boot test' failed"


def test_credentials_and_characters_xml_cannot_carry_stay_out(make_settings: MakeSettings, tmp_path: Path) -> None:
    settings = make_settings("--junit", str(tmp_path / "junit.xml"), "--log", str(tmp_path / "build.log"))
    (tmp_path / "build.log").write_text("fetching http://builder:M1rror-S3cret@m.example/debian/\x07\n")
    record = report.Report(settings, str(tmp_path / "build.log"), plan=lambda cached: recipe.plan(settings, cached))
    assert record.wanted  # --junit alone: the build's records are kept for it
    record.fail("step 'bootstrap' failed: http://builder:M1rror-S3cret@m.example/debian/ \x1b[1mgone\x1b[0m\nmore")
    record.write(1, [ui.StepRecord("bootstrap", 1.7e9, 2.0, "failed")])
    data = (tmp_path / "junit.xml").read_bytes()
    [bootstrap, *rest] = read(data)
    assert bootstrap.message == "step 'bootstrap' failed: http://builder:<secret>@m.example/debian/ [1mgone[0m"
    assert b"M1rror-S3cret" not in data and b"\x07" not in data
    assert [c.status for c in rest] == ["skipped"] * (len(recipe.plan(settings)) - 1)


@pytest.mark.parametrize("where", ["missing/j.xml", "."])
def test_junit_needs_a_file_in_an_existing_directory(make_settings: MakeSettings, tmp_path: Path, where: str) -> None:
    with pytest.raises(UsageError, match=r"--junit .*: not a file in an existing directory"):
        make_settings("--junit", str(tmp_path / where))
