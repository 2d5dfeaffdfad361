"""A full disk during bootstrap and package installation.

Each failing build must name the cause on one line, publish nothing and leave no mount,
process or work directory behind (reliability.md B22).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..conftest import our_mounts, vmdebootstrap

pytestmark = pytest.mark.integration

MINIMAL = ("--distribution", "bookworm", "--variant", "minbase", "--no-kernel", "--no-acpid")
# A minbase bookworm root takes about 200 MiB after debootstrap and 310 MiB once apt has
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
    result = vmdebootstrap(*MINIMAL, "--mirror", mirror, "--tarball", str(tarball), "--workdir", str(workdir),
                           "--log", str(outdir / "full-at-bootstrap.log"))
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
