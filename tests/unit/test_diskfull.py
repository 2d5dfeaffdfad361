"""Naming the full filesystem when a step fails for lack of space (reliability.md B22)."""

from __future__ import annotations

import errno
import io
import shutil
from pathlib import Path

import pytest

from vmdebootstrap import diskfull, main, recipe, ui
from vmdebootstrap.errors import BuildError
from vmdebootstrap.run import CommandFailed, Result

from .conftest import MakeSettings
from .fakes import FakeRunner
from .test_main import REAL_RUN_BUILD

MiB = 2**20
APT_FULL = [
    "Unpacking gcc-12 (12.2.0-14) ...",
    "dpkg: error processing archive /var/cache/apt/archives/gcc-12_12.2.0-14_amd64.deb (--unpack):",
    " cannot copy extracted data for './usr/libexec/gcc/x86_64-linux-gnu/12/cc1' to "
    "'/usr/libexec/gcc/x86_64-linux-gnu/12/cc1.dpkg-new': failed to write (No space left on device)",
    "E: Sub-process /usr/bin/dpkg returned an error code (1)",
]


def fake_filesystems(table: dict[str, tuple[str, int, int]]) -> diskfull.UsageReader:
    """Usage by path prefix: {prefix: (mount point, free MiB, total MiB)}; the longest prefix wins."""

    def reader(path: Path, _snapshot: object = None) -> diskfull.Usage:
        prefix = max((p for p in table if str(path).startswith(p)), key=len)
        point, free, total = table[prefix]
        return diskfull.Usage(point, hash(point), free * MiB, total * MiB)

    return reader


FILESYSTEMS = fake_filesystems({
    "/": ("/", 70000, 250000),
    "/srv/small": ("/srv/small", 1, 64),
    "/var/cache": ("/var/cache", 900, 1000),
})
PLACES = [("work directory", Path("/srv/small/work")), ("--tarball output", Path("/home/me")),
          ("package cache", Path("/var/cache/vmdebootstrap"))]


def apt_failure() -> CommandFailed:
    """What the fake runner raises for an apt-get whose dpkg ran out of space."""
    runner = FakeRunner(lambda argv: Result(100, "\n".join(APT_FULL)) if "apt-get" in argv else None)
    with pytest.raises(CommandFailed) as caught:
        runner.run(["apt-get", "install", "gcc-12"], chroot=Path("/srv/small/work/root"))
    return caught.value


def test_a_full_work_directory_is_named_from_apts_output() -> None:
    text = diskfull.explain(apt_failure(), PLACES, FILESYSTEMS)
    assert text == ("no space left on device: the filesystem at /srv/small (the work directory /srv/small/work) "
                    "is too small (64 MiB, 1 MiB free after the failure)")


def test_through_a_build_error_wrapping_the_command() -> None:
    try:
        try:
            raise apt_failure()
        except CommandFailed as exc:
            raise BuildError("debootstrap failed") from exc
    except BuildError as wrapped:
        assert "/srv/small" in (diskfull.explain(wrapped, PLACES, FILESYSTEMS) or "")


def test_places_sharing_the_full_filesystem_are_all_named() -> None:
    places = [("work directory", Path("/srv/small/work")), ("--squash output", Path("/srv/small/live"))]
    text = diskfull.explain(apt_failure(), places, FILESYSTEMS) or ""
    assert "(the work directory /srv/small/work, the --squash output /srv/small/live)" in text


def test_oserror_enospc_names_the_fuller_of_the_files_it_names() -> None:
    # shutil.copy reports the source (in the roomy cache) and the target (in the full place).
    exc = OSError(errno.ENOSPC, "No space left on device", "/var/cache/vmdebootstrap/debs/x.deb", None,
                  "/srv/other/root/var/cache/apt/archives/x.deb")
    reader = fake_filesystems({"/": ("/", 70000, 250000), "/srv/other": ("/srv/other", 0, 32),
                               "/var/cache": ("/var/cache", 900, 1000)})
    places = [("work directory", Path("/tmp")), ("package cache", Path("/var/cache/vmdebootstrap"))]
    assert diskfull.explain(exc, places, reader) == (
        "no space left on device: the filesystem at /srv/other (/srv/other/root/var/cache/apt/archives/x.deb) "
        "is too small (32 MiB, 0 MiB free after the failure)")


@pytest.mark.parametrize("exc", [
    CommandFailed(["apt-get", "install", "x"], 100, ["E: Unable to locate package x"]),
    OSError(errno.EACCES, "Permission denied", "/x"),
    BuildError("fault injected at step packages (VMDEBOOTSTRAP_FAULT)"),
])
def test_other_failures_are_left_alone(exc: BaseException) -> None:
    assert diskfull.explain(exc, PLACES, FILESYSTEMS) is None


def test_places_of_a_build(make_settings: MakeSettings, tmp_path: Path) -> None:
    s = make_settings("--workdir", str(tmp_path), "--squash", str(tmp_path / "live"))
    assert diskfull.places(s) == [("work directory", tmp_path), ("--squash output", tmp_path / "live"),
                                  ("package cache", Path("/var/cache/vmdebootstrap"))]


def test_usage_of_a_path_that_does_not_exist_yet(tmp_path: Path) -> None:
    found = diskfull.usage(tmp_path / "not" / "yet")
    total, _, free = shutil.disk_usage(tmp_path)
    assert found.total == total and found.device == tmp_path.stat().st_dev
    assert Path(found.mount_point) in (tmp_path, *tmp_path.parents)
    assert 0 <= found.free <= total and free <= total


@pytest.mark.usefixtures("process_state")
def test_run_build_names_the_full_filesystem_on_one_line(make_settings: MakeSettings, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    small = tmp_path / "small"
    (small / "work").mkdir(parents=True)
    s = make_settings("--log", str(tmp_path / "build.log"), "--workdir", str(small / "work"))
    monkeypatch.setattr(diskfull, "usage", fake_filesystems({"/": ("/", 70000, 250000),
                                                              str(small): (str(small), 1, 64)}))

    def fail(_settings: object, _runner: object, display: object, **_: object) -> list[Path]:
        with display.step("packages"):  # type: ignore[attr-defined]
            raise apt_failure()

    monkeypatch.setattr(recipe, "build", fail)
    assert REAL_RUN_BUILD(s) == 1
    error = next(line for line in capsys.readouterr().err.splitlines() if "error:" in line)
    assert error.startswith("vmdebootstrap: error: step 'packages' failed: no space left on device: "
                            f"the filesystem at {small} (the work directory {small / 'work'}) is too small")
    assert "apt-get install gcc-12" in error  # the command, on the same line
    assert main.diskfull is diskfull


def test_free_space_is_that_of_the_moment_the_step_failed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The cleanup empties the work directory before the error is reported: the space
    # recorded when the step failed is the one to report.
    point = diskfull.usage(tmp_path).mount_point
    display = ui.Display(io.StringIO(), 1, live=False)
    exc = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "root/usr/bin/x"))
    monkeypatch.setattr(diskfull, "_space", lambda _path: (1 * MiB, 64 * MiB))
    with pytest.raises(OSError) as caught, recipe.running(display, "packages"):
        raise exc
    monkeypatch.undo()
    assert caught.value is exc
    text = diskfull.explain(exc, [("work directory", tmp_path)]) or ""
    assert text.startswith(f"no space left on device: the filesystem at {point} (the work directory {tmp_path}) ")
    assert text.endswith("is too small (64 MiB, 1 MiB free after the failure)")


def test_nothing_is_recorded_for_other_failures(tmp_path: Path) -> None:
    display = ui.Display(io.StringIO(), 1, live=False)
    with pytest.raises(BuildError) as caught, recipe.running(display, "packages"):
        raise BuildError("apt-get: Unable to locate package x")
    assert not hasattr(caught.value, "vmdebootstrap_free_space")
