"""recipe.build walked end to end with a FakeRunner: the order of commands, the undo stack
(every mount undone in reverse, on success and on failure) and what is left on disk."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
from pathlib import Path

import pytest

from vmdebootstrap import recipe, ui
from vmdebootstrap.errors import BuildError
from vmdebootstrap.run import Result

from .conftest import MakeSettings
from .fakes import FakeRunner

# The SBOMs need debsbom: the pip install has it, the .deb's build on bookworm or trixie does not.
try:
    import debsbom  # noqa: F401

    HAS_DEBSBOM = True
except ImportError:
    HAS_DEBSBOM = False


def sboms(stem: str) -> list[str]:
    return [f"{stem}.spdx.json", f"{stem}.cdx.json"] if HAS_DEBSBOM else []


DEBIAN_VERSION_LISTING = "squashfs-root\nsquashfs-root/etc\nsquashfs-root/etc/debian_version\n"
DPKG_STATUS = ("Package: bash\nStatus: install ok installed\nArchitecture: amd64\nVersion: 5.2\n"
               "Maintainer: Debian <debian@example.org>\nDescription: shell\n")
RELEASE = "Origin: Debian\nCodename: bookworm\nDate: Sat, 08 Nov 2025 10:00:00 UTC\n"
RELEASE_EPOCH = 1762596000


class Responder:
    """Pretends to be debootstrap, tar and mksquashfs just enough for the recipe to go on."""

    def __init__(self, fail: str = "") -> None:
        self.fail = fail

    def __call__(self, argv: list[str]) -> Result | None:
        command = argv[2:] if argv[0] == "chroot" else argv
        if self.fail and command[0] == self.fail:
            return Result(1, f"{self.fail}: simulated failure\n")
        if command[0].endswith("apt-helper") and "download-file" in command:
            Path(command[-1]).write_text(RELEASE)  # the suite's InRelease: its Date is the build's epoch
        elif command[0] in ("debootstrap", "mmdebstrap"):
            root = Path(command[-2])
            (root / "boot").mkdir(parents=True)
            (root / "boot/vmlinuz-6.1.0-1-amd64").write_text("kernel")
            (root / "boot/initrd.img-6.1.0-1-amd64").write_text("initrd")
            (root / "etc").mkdir()
            (root / "var/lib/dpkg").mkdir(parents=True, exist_ok=True)
            (root / "var/lib/dpkg/status").write_text(DPKG_STATUS)
            units = root / "usr/lib/systemd/system"
            units.mkdir(parents=True)
            (units / "systemd-networkd.service").write_text("")
        elif command[0] == "cp":  # the base cache's copies: real ones, of the fake tree
            subprocess.run(command, check=True)
        elif command[0] == "tar":
            output = next(a for a in command if a.startswith("--file="))[len("--file="):]
            Path(output).write_text("tarball")
        elif command[0] == "mksquashfs":
            with open(command[2], "wb") as stream:
                stream.truncate(2 * 1024 * 1024)
        elif command[:2] == ["unsquashfs", "-l"]:
            return Result(0, DEBIAN_VERSION_LISTING)
        elif command[0] == "dpkg-query":
            return Result(0, "bash\t5.2\n")
        return None


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)  # no device nodes in the fake /dev
    path = tmp_path / "work"
    path.mkdir()
    return path


def build(settings_args: list[str], make_settings: MakeSettings, workdir: Path,
          runner: FakeRunner) -> tuple[list[Path], ui.Display]:
    settings = make_settings("--workdir", str(workdir), "--cache-dir", "", "--bootstrapper", "debootstrap",
                             *settings_args)
    display = ui.Display(io.StringIO(), len(recipe.plan(settings)), live=False)
    try:
        return recipe.build(settings, runner, display), display
    finally:
        display.close()


def check_mounts_undone(runner: FakeRunner) -> None:
    """Every mount has its umount, and mounts nest: the last mounted is the first unmounted."""
    open_mounts: list[str] = []
    for call in runner.calls:
        if call[0] == "mount":
            open_mounts.append(call[-1])
        elif call[0] == "umount":
            assert open_mounts, call
            assert call[-1] == open_mounts.pop(), (call, open_mounts)
    assert open_mounts == []


def test_plan(make_settings: MakeSettings, tmp_path: Path) -> None:
    assert recipe.plan(make_settings()) == ["bootstrap", "packages", "system", "users", "finish", "tarball",
                                            "manifest"]
    hook = tmp_path / "hook.sh"
    hook.write_text("#!/bin/sh\n")
    hook.chmod(0o755)
    assert recipe.plan(make_settings("--squash", str(tmp_path / "live"), "--customize", str(hook), "--no-kernel",
                                     "--no-acpid", "--no-systemd-networkd")) == \
           ["bootstrap", "system", "users", "customize", "finish", "squashfs", "manifest"]


def test_tarball_build(make_settings: MakeSettings, workdir: Path, out: Path) -> None:
    runner = FakeRunner(Responder())
    outputs, display = build(["--lock-root-password", "--hostname", "fake"], make_settings, workdir, runner)
    written = ["root.tar", *sboms("root.tar"), "SHA256SUMS"]
    assert sorted(outputs) == sorted(out / name for name in written)
    assert (out / "root.tar").read_text() == "tarball"
    assert sorted(os.listdir(out)) == sorted(written)
    sums = (out / "SHA256SUMS").read_text()
    assert f"{hashlib.sha256(b'tarball').hexdigest()}  root.tar\n" in sums
    assert len(sums.splitlines()) == len(written) - 1  # every file the build wrote there but SHA256SUMS itself
    if HAS_DEBSBOM:
        assert '"name": "bash"' in (out / "root.tar.spdx.json").read_text()
    assert os.listdir(workdir) == []  # the work directory is gone
    programs = [c[2] if c[0] == "chroot" else c[0] for c in runner.calls]
    assert programs[0] == "/usr/lib/apt/apt-helper"  # the InRelease, for the stage key and the epoch
    assert programs[1] == "debootstrap"
    assert runner.environment["SOURCE_DATE_EPOCH"] == str(RELEASE_EPOCH)
    assert f"--mtime=@{RELEASE_EPOCH}" in runner.commands("tar")[0]
    assert programs.index("debootstrap") < programs.index("apt-get") < programs.index("systemctl") \
        < programs.index("passwd") < programs.index("tar")
    assert programs[-1] == "tar"
    check_mounts_undone(runner)
    # proc, sys, dev, dev/pts, run: once per chroot session (packages; system, users and finish)
    assert len([c for c in runner.calls if c[0] == "mount"]) == 10
    assert [name for name, _ in display.timings] == recipe.plan(make_settings())
    assert display.failed_step == ""


def test_owner_chown_after_publish(make_settings: MakeSettings, workdir: Path, out: Path) -> None:
    runner = FakeRunner(Responder())
    build(["--lock-root-password", "--owner", "root"], make_settings, workdir, runner)
    assert runner.calls[-1][:2] == ["chown", "root"]
    assert sorted(runner.calls[-1][2:]) == sorted(str(out / name) for name in (
        "root.tar", *sboms("root.tar"), "SHA256SUMS"))


def test_squash_build(make_settings: MakeSettings, workdir: Path, out: Path) -> None:
    runner = FakeRunner(Responder())
    outputs, _ = build(["--squash", str(out / "live"), "--lock-root-password"], make_settings, workdir, runner)
    live = out / "live"
    assert sorted(p.name for p in outputs) == sorted(
        ["vmlinuz-6.1.0-1-amd64", "initrd.img-6.1.0-1-amd64", "vmlinuz", "initrd.img", "filesystem.packages",
         "filesystem.squashfs", *sboms("filesystem"), "SHA256SUMS"])
    assert sorted(os.listdir(live)) == sorted(p.name for p in outputs)
    assert (live / "vmlinuz").read_text() == "kernel"
    assert (live / "filesystem.packages").read_text() == "bash\t5.2\n"
    assert os.listdir(workdir) == []
    squash_calls = [c for c in runner.calls if c[0] == "mksquashfs"]
    assert len(squash_calls) == 1 and squash_calls[0][2].endswith(".vmdebootstrap-partial-filesystem.squashfs")
    check_mounts_undone(runner)


def test_pkglist_writes_one_list_beside_each_output_the_manifest_step(make_settings: MakeSettings, workdir: Path,
                                                                      out: Path) -> None:
    """--pkglist's FILE.packages, once, by the manifest step, for every kind; a --squash
    directory keeps its own filesystem.packages (a file of the live medium) and gets no second."""
    runner = FakeRunner(Responder())
    outputs, _ = build(["--pkglist", "--lock-root-password"], make_settings, workdir, runner)
    assert (out / "root.tar.packages").read_text() == "bash\t5.2\n"
    assert out / "root.tar.packages" in outputs
    runner = FakeRunner(Responder())
    outputs, _ = build(["--squash", str(out / "live"), "--pkglist", "--lock-root-password"], make_settings,
                       workdir, runner)
    assert [p.name for p in outputs if p.name.endswith(".packages")] == ["filesystem.packages"]
    assert len(runner.commands("dpkg-query")) == 1


@pytest.mark.parametrize(("fail", "step"), [("apt-get", "packages"), ("systemctl", "system"),
                                            ("passwd", "users"), ("tar", "tarball")])
def test_failed_step_leaves_nothing(make_settings: MakeSettings, workdir: Path, out: Path, fail: str,
                                    step: str) -> None:
    runner = FakeRunner(Responder(fail=fail))
    settings = make_settings("--workdir", str(workdir), "--cache-dir", "", "--lock-root-password")
    display = ui.Display(io.StringIO(), 6, live=False)
    with pytest.raises(BuildError):
        recipe.build(settings, runner, display)
    assert display.failed_step == step
    assert os.listdir(out) == []
    assert os.listdir(workdir) == []
    check_mounts_undone(runner)


def test_failed_squash_removes_the_directory_it_created(make_settings: MakeSettings, workdir: Path,
                                                        out: Path) -> None:
    runner = FakeRunner(Responder(fail="unsquashfs"))
    with pytest.raises(BuildError):
        build(["--squash", str(out / "live"), "--lock-root-password"], make_settings, workdir, runner)
    assert os.listdir(out) == []
    assert os.listdir(workdir) == []


def test_fault_injection_fails_the_named_step(make_settings: MakeSettings, workdir: Path, out: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VMDEBOOTSTRAP_FAULT", "users:fail")
    runner = FakeRunner(Responder())
    settings = make_settings("--workdir", str(workdir), "--cache-dir", "", "--lock-root-password")
    display = ui.Display(io.StringIO(), 6, live=False)
    with pytest.raises(BuildError, match="fault injected at step users"):
        recipe.build(settings, runner, display)
    assert display.failed_step == "users"
    assert runner.commands("passwd") == []  # the step never ran
    assert os.listdir(out) == [] and os.listdir(workdir) == []
    check_mounts_undone(runner)


def test_policy_rc_d_is_gone_from_the_result(make_settings: MakeSettings, workdir: Path) -> None:
    seen: dict[str, bool] = {}

    class Spy(Responder):
        def __call__(self, argv: list[str]) -> Result | None:
            if argv[0] == "tar":
                root = Path(next(a for a in argv if a.startswith("--directory="))[len("--directory="):])
                seen["policy"] = (root / "usr/sbin/policy-rc.d").exists()
                seen["resolv"] = (root / "etc/resolv.conf").read_text() == ""
                seen["hostname"] = (root / "etc/hostname").read_text() == "spy\n"
            return super().__call__(argv)

    build(["--lock-root-password", "--hostname", "spy"], make_settings, workdir, FakeRunner(Spy()))
    assert seen == {"policy": False, "resolv": True, "hostname": True}
