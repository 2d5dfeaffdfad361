"""main.prepare/main.main: what happens after validation, without root (features §1.3 items 13-14)."""

from __future__ import annotations

import io
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vmdebootstrap import binfmt, main, recipe, sandbox, settings, ui
from vmdebootstrap.architectures import Architecture
from vmdebootstrap.errors import BuildError, Interrupted
from vmdebootstrap.run import CommandFailed

from .conftest import MakeSettings, Vmd

# conftest replaces main.run_build with a guard for every test; keep the real one.
REAL_RUN_BUILD = main.run_build
ROOT_MESSAGE = "vmdebootstrap: error: You need to have root privileges to run this script.\n"


@pytest.fixture
def non_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)


@pytest.fixture
def as_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)


@pytest.mark.usefixtures("non_root")
@pytest.mark.parametrize(
    "args",
    [
        ["--tarball", "{out}/root.tar"],
        ["--tarball", "{out}/root.tar.gz", "--sudo", "--user", "bob/pw"],
        ["--squash", "{out}/live"],
        ["--squash", "{out}/live", "--squash-compression", "zstd", "--no-kernel"],
    ],
)
def test_non_root_valid_build_exits_2(vmd: Vmd, out: Path, args: list[str]) -> None:
    status, stdout, err = vmd(*[a.format(out=out) for a in args], "--distribution", "bookworm")
    assert (status, stdout, err) == (2, "", ROOT_MESSAGE)
    assert os.listdir(out) == []


@pytest.mark.usefixtures("non_root")
def test_non_root_dry_run_still_works(vmd: Vmd, out: Path) -> None:
    status, stdout, err = vmd("--tarball", str(out / "root.tar"), "--distribution", "bookworm", "--dry-run")
    assert (status, err) == (0, "")
    assert stdout.startswith("Selected packages: acpid, linux-image-amd64")


@pytest.mark.usefixtures("non_root")
def test_validation_comes_before_the_root_check(vmd: Vmd, out: Path) -> None:
    status, _, err = vmd("--tarball", str(out / "root.tar"), "--hostname=-x")
    assert status == 2 and "not a valid host name" in err and "root privileges" not in err


@pytest.mark.usefixtures("non_root")
def test_image_dry_run_lists_the_bootloader(vmd: Vmd, out: Path) -> None:
    status, stdout, err = vmd("--image", str(out / "x.img"), "--distribution", "bookworm", "--grub", "--dry-run")
    assert status == 0, err
    assert "grub-pc" in stdout
    assert os.listdir(out) == []


@pytest.mark.usefixtures("as_root")
def test_foreign_arch_without_emulation_is_refused(vmd: Vmd, out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda tool: "/usr/bin/" + tool)
    probed: list[str] = []

    def cannot(arch: Architecture) -> binfmt.Emulation:
        probed.append(arch.name)
        raise binfmt.CannotEmulate(f"--arch {arch.name}: no binfmt handler qemu-aarch64 is registered")

    monkeypatch.setattr(binfmt, "probe", cannot)
    status, _, err = vmd("--squash", str(out / "live"), "--distribution", "bookworm", "--arch", "arm64")
    assert (status, err) == (2, "vmdebootstrap: error: --arch arm64: no binfmt handler qemu-aarch64 is registered\n")
    assert probed == ["arm64"]
    assert os.listdir(out) == []


@pytest.mark.usefixtures("as_root")
def test_native_arch_is_not_probed(vmd: Vmd, out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda tool: "/usr/bin/" + tool)
    monkeypatch.setattr(binfmt, "probe", lambda arch: pytest.fail(f"probed {arch}"))
    monkeypatch.setattr(sandbox, "run_in_namespaces", lambda argv: 0)
    assert vmd("--squash", str(out / "live"), "--distribution", "bookworm", "--arch", "i386")[0] == 0


@pytest.mark.usefixtures("as_root")
def test_missing_host_tools_reported(vmd: Vmd, out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda tool: None if tool in ("mksquashfs", "zstd") else "/x")
    status, _, err = vmd("--tarball", str(out / "root.tar.zst"), "--distribution", "bookworm")
    assert status == 2
    assert err.startswith("vmdebootstrap: error: missing host tools: ")
    assert "mksquashfs (package squashfs-tools)" in err and "zstd (package zstd)" in err
    assert "tar (package" not in err
    # What a Debian user runs, whether they installed the .deb or a checkout (issue 22).
    assert err.rstrip().endswith("; install them with: apt-get install squashfs-tools zstd")
    assert "make install" not in err


@pytest.mark.usefixtures("as_root")
def test_no_distro_info_data_is_no_missing_host_tool(vmd: Vmd, out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """"stable" falls back to the built-in table without it (releases.codename): no build needs it."""
    monkeypatch.setattr(shutil, "which", lambda tool: "/usr/bin/" + tool)
    real = os.path.exists
    monkeypatch.setattr(os.path, "exists", lambda path: False if "distro-info" in str(path) else real(path))
    monkeypatch.setattr(sandbox, "run_in_namespaces", lambda argv: 0)
    assert vmd("--tarball", str(out / "root.tar"), "--distribution", "bookworm")[0] == 0


@pytest.mark.usefixtures("as_root")
def test_a_chroot_without_a_mount_at_its_root_is_refused_before_the_sandbox(
        vmd: Vmd, out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda tool: "/usr/bin/" + tool)
    monkeypatch.setattr(sandbox, "root_is_a_mount_point", lambda: False)
    status, _, err = vmd("--tarball", str(out / "root.tar"), "--distribution", "bookworm")
    assert status == 2
    assert err.startswith("vmdebootstrap: error: / is not a mount point") and err.count("\n") == 1
    assert os.listdir(out) == []


def test_the_build_in_the_namespaces_runs_this_package_not_one_in_the_current_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    checkout = Path(sandbox.__file__).resolve().parent.parent
    monkeypatch.chdir(tmp_path)  # another directory (it may hold another version's vmdebootstrap/)
    assert sandbox.same_code() == ["-P"]
    (tmp_path / "vmdebootstrap").mkdir()
    (tmp_path / "vmdebootstrap/__init__.py").write_text("raise SystemExit('the wrong vmdebootstrap')\n")
    found = subprocess.run([sys.executable, *sandbox.same_code(), "-c", "import vmdebootstrap; "
                            "print(vmdebootstrap.__file__)"], capture_output=True, text=True, check=False)
    assert found.returncode == 0 and found.stdout.startswith(str(checkout)), found.stdout + found.stderr
    monkeypatch.chdir(checkout)  # python3 -m vmdebootstrap in an uninstalled checkout
    assert sandbox.same_code() == []


def test_the_mount_at_the_root_is_read_from_mountinfo() -> None:
    assert not sandbox.mounted_at_root("22 1 0:21 / /proc rw - proc proc rw\n")
    assert sandbox.mounted_at_root("1 0 254:1 /srv/chroot / rw - ext4 /dev/vda1 rw\n"
                                   "22 1 0:21 / /proc rw - proc proc rw\n")


@pytest.mark.usefixtures("as_root")
def test_root_valid_build_goes_into_the_sandbox(vmd: Vmd, out: Path, monkeypatch: pytest.MonkeyPatch,
                                                scripts: Path) -> None:
    monkeypatch.setattr(shutil, "which", lambda tool: "/usr/bin/" + tool)
    seen: list[list[str]] = []
    monkeypatch.setattr(sandbox, "run_in_namespaces", lambda argv: seen.append(argv) or 7)
    status, _, _ = vmd("--tarball", str(out / "root.tar"), "--distribution", "bookworm")
    assert status == 7
    assert seen == [["--no-default-configs", "--debootstrap-scripts", str(scripts), "--tarball",
                     str(out / "root.tar"), "--distribution", "bookworm"]]


@pytest.mark.usefixtures("as_root")
def test_inside_the_sandbox_the_build_runs(vmd: Vmd, out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda tool: "/usr/bin/" + tool)
    monkeypatch.setattr(sandbox, "in_namespaces", lambda: True)
    built: list[settings.Settings] = []
    named: list[str] = []
    monkeypatch.setattr(main, "run_build", lambda s: built.append(s) or 0)
    monkeypatch.setattr(sandbox, "take_hostname", named.append)
    status, _, _ = vmd("--tarball", str(out / "root.tar"), "--distribution", "bookworm", "--hostname", "box")
    assert status == 0
    assert named == ["box"]  # the build's UTS namespace has the image's host name, not the host's
    assert len(built) == 1 and built[0].hostname == "box"
    assert built[0].given["hostname"] == "box"  # the options as given, for the report's settings


def test_print_requests_exit_before_validation(vmd: Vmd) -> None:
    # No output option at all: validation would refuse, but printing comes first.
    status, stdout, _ = vmd("--print-helpers-path")
    assert status == 0 and stdout.strip().endswith("data/customise.lib")
    assert Path(stdout.strip()).is_file()
    status, stdout, _ = vmd("--print-host-packages", "--tarball", "x.tar.xz")
    assert status == 0
    assert {"debootstrap", "squashfs-tools", "xz-utils", "tar"} <= set(stdout.split())
    assert "zstd" not in stdout.split()


def test_sandbox_inside_needs_pid_1_and_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(sandbox.INNER_ENV, "1")
    assert not sandbox.in_namespaces()  # pytest is not PID 1
    monkeypatch.setattr(os, "getpid", lambda: 1)
    assert sandbox.in_namespaces()
    monkeypatch.delenv(sandbox.INNER_ENV)
    assert not sandbox.in_namespaces()


# -- run_build's exit statuses (recipe.build replaced; process_state is in conftest.py) ------------------


def _settings(make_settings: MakeSettings, tmp_path: Path) -> settings.Settings:
    return make_settings("--log", str(tmp_path / "build.log"))


@pytest.mark.usefixtures("process_state")
def test_run_build_success(make_settings: MakeSettings, tmp_path: Path, out: Path, monkeypatch: pytest.MonkeyPatch,
                           capsys: pytest.CaptureFixture[str]) -> None:
    s = _settings(make_settings, tmp_path)
    (out / "root.tar").write_bytes(b"x" * 10)
    monkeypatch.setattr(recipe, "build", lambda *_, **__: [out / "root.tar"])
    status = REAL_RUN_BUILD(s)
    assert status == 0
    assert f"built {out / 'root.tar'}" in capsys.readouterr().err
    assert "wrote" in (tmp_path / "build.log").read_text()


@pytest.mark.usefixtures("process_state")
def test_run_build_failure_exits_1(make_settings: MakeSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    s = _settings(make_settings, tmp_path)

    def fail(_settings: object, _runner: object, display: object, **_: object) -> list[Path]:
        with display.step("system"):  # type: ignore[attr-defined]
            raise BuildError("it broke") from CommandFailed(["false"], 1, ["line one", "last words"])

    monkeypatch.setattr(recipe, "build", fail)
    status = REAL_RUN_BUILD(s)
    err = capsys.readouterr().err
    assert status == 1
    assert "vmdebootstrap: error: step 'system' failed: it broke" in err
    assert f"full log: {tmp_path / 'build.log'}" in err
    assert "last words" in (tmp_path / "build.log").read_text()


@pytest.mark.usefixtures("process_state")
@pytest.mark.parametrize("live", [True, False])
def test_a_failed_command_s_last_lines_are_shown_with_the_error(make_settings: MakeSettings, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch, live: bool,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """On a terminal (the live display) as elsewhere, the error is followed by the command's last
    lines, not by an empty "last output lines:" whose lines went to the log only (issue 18)."""
    s = _settings(make_settings, tmp_path)
    console = io.StringIO()
    monkeypatch.setattr(ui, "make_display", lambda steps: ui.Display(console, steps, live=live))
    tail = ["Reading package lists...", "\x1b[1;31mE: Unable to locate package nosuch\x1b[0m", "", "   "]

    def fail(_settings: object, _runner: object, display: ui.Display, **_: object) -> list[Path]:
        with display.step("packages"):
            raise BuildError("apt failed") from CommandFailed(["apt-get", "install", "nosuch"], 100, tail)

    monkeypatch.setattr(recipe, "build", fail)
    assert REAL_RUN_BUILD(s) == 1
    err = capsys.readouterr().err
    assert ("vmdebootstrap: error: step 'packages' failed: apt failed\n"
            "vmdebootstrap: last output lines of the command:\n"
            "  Reading package lists...\n"
            "  E: Unable to locate package nosuch\n"
            f"vmdebootstrap: full log: {tmp_path / 'build.log'}\n") in err
    assert "last output lines:" not in console.getvalue()  # shown once, with the error
    assert "last output lines:\n  Reading package lists..." in (tmp_path / "build.log").read_text()


@pytest.mark.usefixtures("process_state")
def test_run_build_interrupted_exits_128_plus_signal(make_settings: MakeSettings, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    s = _settings(make_settings, tmp_path)

    def interrupted(*_: object, **__: object) -> list[Path]:
        raise Interrupted(signal.SIGTERM)

    monkeypatch.setattr(recipe, "build", interrupted)
    assert REAL_RUN_BUILD(s) == 128 + signal.SIGTERM
    assert "interrupted" in capsys.readouterr().err


# -- the signal handler --------------------------------------------------------------------------------------


@pytest.mark.usefixtures("process_state")
def test_signal_handler_raises_once_then_only_records(caplog: pytest.LogCaptureFixture) -> None:
    received = main._install_signal_handlers()
    assert signal.getsignal(signal.SIGTERM) is signal.getsignal(signal.SIGINT)
    with pytest.raises(Interrupted) as info:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler runs long before this ends
    assert info.value.signum == signal.SIGTERM
    with caplog.at_level(logging.DEBUG, logger="vmdebootstrap"):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
        except Interrupted:
            pytest.fail("a second signal must not raise again")
    assert received == [signal.SIGTERM, signal.SIGTERM, signal.SIGINT]
    # Nothing logged from the handler: it may run while the code it interrupted holds the
    # console's lock (a second SIGINT of Ctrl-C during a console write hung the build).
    assert caplog.text == ""


@pytest.mark.usefixtures("process_state")
def test_a_second_signal_during_the_cleanup_is_logged_after_it(make_settings: MakeSettings, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    s = _settings(make_settings, tmp_path)

    def interrupted_twice(*_: object, **__: object) -> list[Path]:
        try:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C: from the terminal ...
            time.sleep(5)
        finally:
            os.kill(os.getpid(), signal.SIGINT)  # ... and forwarded by the supervisor, during the cleanup
            time.sleep(0.05)
        return []

    monkeypatch.setattr(recipe, "build", interrupted_twice)
    assert REAL_RUN_BUILD(s) == 128 + signal.SIGINT
    assert "signal(s) 2 received again during the cleanup; ignored" in (tmp_path / "build.log").read_text()


def test_supervisor_waits_until_the_build_is_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    from vmdebootstrap import sandbox

    states = iter(["123", "123", None])  # alive, alive, gone
    monkeypatch.setattr(sandbox, "_start_time", lambda pid: next(states))
    monkeypatch.setattr(sandbox.time, "sleep", lambda _: None)
    sandbox._wait_until_gone((4242, "123"))
    assert next(iter(states), "done") == "done"  # every state was read


def test_start_time_of_a_live_and_a_missing_process() -> None:
    from vmdebootstrap import sandbox

    assert sandbox._start_time(os.getpid()) is not None
    assert sandbox._start_time(2**22 + 7) is None  # no such process
