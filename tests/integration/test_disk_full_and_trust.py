"""A full disk during bootstrap and package installation; an unsigned archive; no keyring.

Each failing build must name the cause on one line, publish nothing and leave no mount,
process or work directory behind (reliability.md B10, B11, B22).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..conftest import REPO, our_mounts, vmdebootstrap, workdir_for

pytestmark = pytest.mark.integration

MINIMAL = ("--distribution", "trixie", "--variant", "minbase", "--no-kernel", "--no-acpid")
# A minbase trixie root takes about 200 MiB after debootstrap and 310 MiB once apt has
# read the package lists again: 64 MiB cannot hold the bootstrap; 480 MiB holds both but
# not a package that unpacks 512 MiB.
BOOTSTRAP_DOES_NOT_FIT = "64m"
PACKAGES_DO_NOT_FIT = "480m"
BIG_FILE_MIB = 512


def _processes_in(directory: Path) -> list[str]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        for link in ("root", "cwd"):
            try:
                target = os.readlink(f"/proc/{pid}/{link}")
            except OSError:
                continue
            if target == str(directory) or target.startswith(f"{directory}/"):
                found.append(f"{pid} {link}={target}")
    return found


def _no_leftovers(workdir: Path, *outputs: Path) -> None:
    assert list(workdir.iterdir()) == []
    for output in outputs:
        assert not output.exists()
        assert not list(output.parent.glob(".vmdebootstrap-partial-*"))
    assert _processes_in(workdir) == []


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[object]:
    """small_fs(size) -> a directory on a tmpfs of that size, unmounted at the end."""
    made: list[Path] = []

    def mount(size: str) -> Path:
        point = tmp_path / f"small-{size}"
        point.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(point)], check=True)
        made.append(point)
        return point

    yield mount
    for point in made:
        subprocess.run(["umount", str(point)], check=True)
    assert our_mounts() == []


def test_full_work_directory_during_bootstrap_is_named(mirror: str, outdir: Path, small_fs: object) -> None:
    small = small_fs(BOOTSTRAP_DOES_NOT_FIT)  # type: ignore[operator]
    workdir = small / "work"
    workdir.mkdir()
    tarball = outdir / "full-at-bootstrap.tar"
    # --no-stage-cache: the bootstrapper itself must fill the disk, not a copy from the
    # base cache that another build of this minbase left.
    result = vmdebootstrap(*MINIMAL, "--mirror", mirror, "--tarball", str(tarball), "--workdir", str(workdir),
                           "--log", str(outdir / "full-at-bootstrap.log"), "--no-stage-cache")
    assert result.returncode == 1
    error = next(line for line in result.stderr.splitlines() if line.startswith("vmdebootstrap: error:"))
    assert error.startswith("vmdebootstrap: error: step 'bootstrap' failed: no space left on device: "
                            f"the filesystem at {small} (the work directory {workdir}) is too small"), result.stderr
    assert f"is too small ({BOOTSTRAP_DOES_NOT_FIT[:-1]} MiB," in error
    assert "debootstrap" in error  # the command, on the same line
    assert [p for p in our_mounts() if p != str(small)] == []
    _no_leftovers(workdir, tarball)


def big_package(directory: Path) -> Path:
    """A package that unpacks a file of BIG_FILE_MIB (the .deb itself is small: zeros compress)."""
    tree = directory / "big"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN/control").write_text(
        "Package: vmdb-big\nVersion: 1.0\nArchitecture: all\nMaintainer: vmdebootstrap tests <root@localhost>\n"
        f"Installed-Size: {BIG_FILE_MIB * 1024}\nDescription: unpacks {BIG_FILE_MIB} MiB of zeros\n")
    (tree / "usr/share/vmdb-big").mkdir(parents=True)
    with open(tree / "usr/share/vmdb-big/zeros", "wb") as stream:
        stream.truncate(BIG_FILE_MIB * 2**20)
    deb = directory / "vmdb-big_1.0_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "-z1", "--build", str(tree), str(deb)],
                   check=True, capture_output=True)
    return deb


def test_full_work_directory_during_package_installation_is_named(mirror: str, outdir: Path, small_fs: object,
                                                                  tmp_path: Path) -> None:
    deb = big_package(tmp_path)
    small = small_fs(PACKAGES_DO_NOT_FIT)  # type: ignore[operator]
    workdir = small / "work"
    workdir.mkdir()
    squash = outdir / "full-at-packages"
    log = outdir / "full-at-packages.log"
    result = vmdebootstrap(*MINIMAL, "--mirror", mirror, "--squash", str(squash), "--workdir", str(workdir),
                           "--package", "less", "--custom-package", str(deb), "--log", str(log))
    assert result.returncode == 1
    assert "step bootstrap done" in log.read_text()  # the bootstrap fitted
    error = next(line for line in result.stderr.splitlines() if line.startswith("vmdebootstrap: error:"))
    assert error.startswith("vmdebootstrap: error: step 'packages' failed: no space left on device: "
                            f"the filesystem at {small} (the work directory {workdir}) is too small"), result.stderr
    assert f"is too small ({PACKAGES_DO_NOT_FIT[:-1]} MiB," in error
    assert "apt-get" in error and "vmdb-big_1.0_all.deb" in error
    assert [p for p in our_mounts() if p != str(small)] == []
    _no_leftovers(workdir, squash)


# -- archive trust ------------------------------------------------------------------------------------------------


@pytest.fixture
def unsigned_mirror(mirror: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """(URL, request log) of a proxy to the mirror that answers 404 for InRelease and Release.gpg."""
    port_file, requests = tmp_path / "port", tmp_path / "requests"
    requests.touch()
    proxy = subprocess.Popen([sys.executable, str(REPO / "tests/integration/unsigned_mirror.py"), mirror,
                              str(port_file), str(requests)])
    try:
        deadline = time.monotonic() + 30
        while not port_file.exists() and proxy.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert port_file.exists(), "the unsigned mirror did not start"
        yield f"http://127.0.0.1:{port_file.read_text()}/", requests
    finally:
        os.kill(proxy.pid, signal.SIGTERM)
        proxy.wait(timeout=30)


def test_unsigned_release_fails_naming_the_missing_signature(unsigned_mirror: tuple[str, Path],
                                                             outdir: Path) -> None:
    url, requests = unsigned_mirror
    workdir = workdir_for(outdir, "unsigned")
    tarball = outdir / "unsigned.tar"
    result = vmdebootstrap(*MINIMAL, "--mirror", url, "--tarball", str(tarball), "--workdir", str(workdir))
    assert result.returncode == 1
    asked = requests.read_text().splitlines()
    assert "404 /dists/trixie/Release.gpg" in asked and "200 /dists/trixie/Release" in asked
    error = next(line for line in result.stderr.splitlines() if line.startswith("vmdebootstrap: error:"))
    assert error == (f"vmdebootstrap: error: step 'bootstrap' failed: the Release file of 'trixie' from {url} "
                     "is not signed (no InRelease, no Release.gpg): refusing an unverifiable archive "
                     "(--no-check-gpg builds from it anyway, insecurely)")
    assert not [line for line in asked if line.endswith(".deb")]  # nothing was downloaded
    assert our_mounts() == []
    _no_leftovers(workdir, tarball)


def test_no_check_gpg_builds_from_the_unsigned_mirror_with_a_warning(unsigned_mirror: tuple[str, Path],
                                                                     outdir: Path) -> None:
    url, requests = unsigned_mirror
    workdir = workdir_for(outdir, "no-check-gpg")
    tarball = outdir / "no-check-gpg.tar"
    log = outdir / "no-check-gpg.log"
    result = vmdebootstrap(*MINIMAL, "--mirror", url, "--tarball", str(tarball), "--workdir", str(workdir),
                           "--no-check-gpg", "--package", "less", "--log", str(log), "--empty-root-password")
    assert result.returncode == 0, result.stderr[-3000:]
    warning = f"archive signatures are NOT being checked (--no-check-gpg): the image is only as trustworthy " \
              f"as the network path to {url}"
    assert warning in result.stderr and warning in log.read_text()
    asked = requests.read_text().splitlines()
    # debootstrap read the Release file, then apt in the packages step (a 304 if unchanged).
    assert len([line for line in asked if line.endswith(" /dists/trixie/Release")]) >= 2
    names = subprocess.run(["tar", "-tf", str(tarball)], capture_output=True, text=True, check=True).stdout.split()
    assert "./usr/bin/less" in names
    # Only the build trusted the unsigned mirror: the image's apt does not.
    assert "./etc/apt/apt.conf.d/00vmdebootstrap-no-check-gpg" not in names
    # --empty-root-password (issue 18): the old default, asked for, with its warning.
    shadow = subprocess.run(["tar", "-xOf", str(tarball), "./etc/shadow"], capture_output=True, text=True,
                            check=True).stdout
    assert next(line for line in shadow.splitlines() if line.startswith("root:")).split(":")[1] == ""
    assert "root has an EMPTY password in this image (--empty-root-password)" in result.stderr
    tarball.unlink()
    assert our_mounts() == [] and list(workdir.iterdir()) == []


def test_missing_keyring_fails_before_any_download(unsigned_mirror: tuple[str, Path], outdir: Path) -> None:
    url, requests = unsigned_mirror
    workdir = workdir_for(outdir, "no-keyring")
    tarball = outdir / "no-keyring.tar"
    result = vmdebootstrap(*MINIMAL, "--mirror", url, "--tarball", str(tarball), "--workdir", str(workdir),
                           "--keyring", str(outdir / "no-such-keyring.gpg"))
    assert result.returncode == 2
    assert result.stderr.strip() == f"vmdebootstrap: error: --keyring {outdir / 'no-such-keyring.gpg'}: no such file"
    assert requests.read_text() == ""  # not even the Release file was asked for
    _no_leftovers(workdir, tarball)
