"""Small builds: a compressed tarball, and builds that fail or are interrupted.

The failing builds assert the host stays clean: a non-zero status naming the cause,
no mount, no process, no work directory and nothing at the output path.
"""

from __future__ import annotations

import os
import pwd
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from ..conftest import HOOKS, REPO, TOOL, our_mounts, vmdebootstrap, workdir_for

pytestmark = pytest.mark.integration

MINIMAL = ("--distribution", "trixie", "--variant", "minbase", "--no-kernel", "--no-acpid")


def _no_leftovers(workdir: Path) -> None:
    assert our_mounts() == []
    assert list(workdir.iterdir()) == []
    sleepers = subprocess.run(["pgrep", "-f", "sleep 1000"], capture_output=True, text=True, check=False)
    assert sleepers.stdout == ""


def test_compressed_tarball_without_networkd(mirror: str, outdir: Path) -> None:
    tarball = outdir / "minimal.tar.zst"
    workdir = workdir_for(outdir, "tarball")
    result = vmdebootstrap(*MINIMAL, "--mirror", mirror, "--tarball", str(tarball), "--no-systemd-networkd",
                           "--workdir", str(workdir),
                           "--enable-dhcp", "--hostname", "tarry", "--log", str(outdir / "tarball.log"),
                           "--pkglist", "--owner", "nobody")
    assert result.returncode == 0, result.stderr[-3000:]
    assert tarball.read_bytes()[:4] == b"\x28\xb5\x2f\xfd"  # zstd magic: compressed by suffix
    assert tarball.stat().st_uid == pwd.getpwnam("nobody").pw_uid  # --owner
    manifest = (outdir / "minimal.tar.zst.packages").read_text()
    assert re.search(r"^dpkg\t\S+$", manifest, re.MULTILINE)  # --pkglist: package<TAB>version
    listing = subprocess.run(["tar", "-tf", str(tarball)], capture_output=True, text=True, check=True).stdout
    names = set(listing.split())
    assert "./etc/hostname" in names and "./etc/network/interfaces.d/setup" in names
    assert not [n for n in names if n.startswith(("./proc/", "./sys/", "./dev/")) and n.count("/") > 2]
    assert not [n for n in names if n.startswith("./boot/vmlinuz")]
    unpacked = outdir / "tarball-root"
    unpacked.mkdir()
    subprocess.run(["tar", "-xf", str(tarball), "-C", str(unpacked), "./etc"], check=True)
    assert (unpacked / "etc/hostname").read_text() == "tarry\n"
    assert "iface eth0 inet dhcp" in (unpacked / "etc/network/interfaces.d/setup").read_text()
    assert os.readlink(unpacked / "etc/udev/rules.d/80-net-setup-link.rules") == "/dev/null"
    root_entry = next(line for line in (unpacked / "etc/shadow").read_text().splitlines()
                      if line.startswith("root:"))
    # Nothing said of root: locked, the new default, and a one-line warning names it (issue 18).
    assert root_entry.split(":")[1].startswith("!")
    assert "root's password is locked, the new default" in result.stderr
    _no_leftovers(workdir)


def test_failing_hook_fails_the_build_cleanly(mirror: str, outdir: Path) -> None:
    squash = outdir / "never"
    workdir = workdir_for(outdir, "fails")
    result = vmdebootstrap(*MINIMAL, "--mirror", mirror, "--squash", str(squash), "--workdir", str(workdir),
                           "--customize", str(HOOKS / "fails.sh"), "--log", str(outdir / "fails.log"))
    assert result.returncode == 1
    assert "fails.sh failed (exit status 1)" in result.stderr
    assert "step 'customize' failed" in result.stderr
    assert "giving up on purpose" in (outdir / "fails.log").read_text()
    assert not squash.exists()
    _no_leftovers(workdir)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_during_build_cleans_up(mirror: str, outdir: Path, signum: int) -> None:
    squash = outdir / f"interrupted-{signum}"
    ready = outdir / f"ready-{signum}"
    workdir = workdir_for(outdir, f"signal-{signum}")
    proc = subprocess.Popen(
        [*TOOL, *MINIMAL, "--mirror", mirror,
         "--squash", str(squash), "--log", str(outdir / f"signal-{signum}.log"), "--workdir", str(workdir)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "VMDEBOOTSTRAP_FAULT": "finish:wait", "VMDEBOOTSTRAP_FAULT_READY": str(ready)},
    )
    try:
        deadline = time.monotonic() + 900
        while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(1)
        assert ready.exists(), "the build never reached the finish step"
        proc.send_signal(signum)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signum, stderr[-2000:]
    assert "interrupted" in stderr
    assert not squash.exists()
    _no_leftovers(workdir)


def test_sigkill_leaves_no_mount_and_next_build_removes_stale_workdir(mirror: str, outdir: Path) -> None:
    workdir = workdir_for(outdir, "killed")
    ready = outdir / "ready-kill"
    proc = subprocess.Popen(
        [*TOOL, *MINIMAL, "--mirror", mirror,
         "--squash", str(outdir / "killed"), "--workdir", str(workdir)],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "VMDEBOOTSTRAP_FAULT": "users:wait", "VMDEBOOTSTRAP_FAULT_READY": str(ready)},
    )
    deadline = time.monotonic() + 900
    while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(1)
    assert ready.exists()
    proc.kill()  # SIGKILL: no cleanup code runs in the tool itself
    proc.wait()
    time.sleep(1)
    assert our_mounts() == [], "mounts must die with the build's namespace"
    stale = list(workdir.glob("vmdebootstrap-*"))
    assert len(stale) == 1
    # The next build (here only up to validation of the stale directory) removes it.
    again = vmdebootstrap(*MINIMAL, "--mirror", mirror, "--squash", str(outdir / "after-kill"),
                          "--workdir", str(workdir), env={"VMDEBOOTSTRAP_FAULT": "bootstrap:fail"})
    assert again.returncode == 1
    assert "removing stale work directory" in again.stderr
    assert list(workdir.glob("vmdebootstrap-*")) == []
    assert not (outdir / "killed").exists() and not (outdir / "after-kill").exists()


def test_release_missing_from_the_mirror_is_named(mirror: str, outdir: Path) -> None:
    # jessie left the main mirrors long ago: debootstrap finds no Release file.
    workdir = workdir_for(outdir, "jessie")
    result = vmdebootstrap("--distribution", "jessie", "--variant", "minbase", "--no-kernel", "--mirror", mirror,
                           "--squash", str(outdir / "jessie"), "--workdir", str(workdir))
    assert result.returncode == 1
    assert f"could not fetch the Release file of 'jessie' from {mirror}" in result.stderr
    assert "archive mirrors" in result.stderr
    assert not (outdir / "jessie").exists()
    _no_leftovers(workdir)


def test_release_that_does_not_verify_fails_before_anything_is_built(mirror: str, outdir: Path) -> None:
    # The removed-keys keyring holds only retired archive keys: trixie's Release is
    # not signed by any of them, so the signature check must fail the build.
    workdir = workdir_for(outdir, "badkey")
    result = vmdebootstrap(*MINIMAL, "--mirror", mirror, "--squash", str(outdir / "badkey"),
                           "--keyring", "/usr/share/keyrings/debian-archive-removed-keys.gpg",
                           "--workdir", str(workdir))
    assert result.returncode == 1
    assert "does not verify with the keyring" in result.stderr, result.stderr[-2000:]
    assert not (outdir / "badkey").exists()
    _no_leftovers(workdir)


def test_full_output_filesystem_is_named_and_nothing_is_published(mirror: str, outdir: Path) -> None:
    small = outdir / "small-fs"
    small.mkdir()
    workdir = workdir_for(outdir, "full")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(small)], check=True)
    try:
        result = vmdebootstrap(*MINIMAL, "--mirror", mirror, "--squash", str(small / "live"),
                               "--workdir", str(workdir))
        assert result.returncode == 1
        assert "step 'squashfs' failed" in result.stderr
        assert f"not enough free space in {small / 'live'}" in result.stderr
        assert list(small.iterdir()) == []  # not even the output directory it created
    finally:
        subprocess.run(["umount", str(small)], check=True)
    _no_leftovers(workdir)  # (after the test's own tmpfs is gone)
