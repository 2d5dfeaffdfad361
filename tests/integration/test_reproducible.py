"""Reproducible outputs (issue 16): the same inputs built twice give the same bytes.

Each pair differs in everything that must not matter: the second build runs later, in
another work directory, with umask 077, TZ=Asia/Tokyo and LANG=C.UTF-8, and its tree
comes another way:

* squashfs + ISO: the first a cold build that saves its stage, the second warm from it;
* tarball: from that stage twice (the same packages: the tree the first pair proves);
* raw disk image (GPT, ESP, ext4 root, swap): the first a cold build that saves its
  stage (an image's fstab is in its key), the second warm from it;
* arm64 squashfs (slow session, under qemu-user): the ``arm64`` build is the cold one,
  its twin warm.

Every file each build wrote is compared (the outputs, package lists, SBOMs,
SHA256SUMS); a difference fails with what differs (tests/reprocheck.py).  The SBOM is
validated by the SPDX project's schema (tests/sbomcheck.py) and its packages are those
dpkg-query finds in the image.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from .. import reprocheck, sbomcheck
from ..conftest import ARM64_SEED, PASSWORD, SLOW_GUEST_APPEND, our_mounts, vmdebootstrap, workdir_for

pytestmark = pytest.mark.integration

OTHER_ENVIRONMENT = {"TZ": "Asia/Tokyo", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
# A small live system of its own (its stage key is nobody else's in the session).  A clear-text
# password needs --seed to give the same /etc/shadow twice: without one its salt is random.
SEED = ("--seed", "vmdb-repro")
LIVE = ("--distribution", "trixie", "--package", "live-boot,live-config,live-config-systemd", "--sudo",
        "--user", f"user/{PASSWORD}", "--hostname", "vmdb-repro", *SEED)


def build(mirror: str, outdir: Path, pair: str, name: str, *args: str, other: bool = False,
          timeout: int = 1500) -> Path:
    """One build of a pair into outdir/PAIR-NAME/ (the same output names in both)."""
    directory = outdir / f"{pair}-{name}"
    directory.mkdir()
    arguments = [arg.replace("@", f"{directory}/") for arg in args]
    result = vmdebootstrap(*arguments, "--mirror", mirror, "--workdir", str(workdir_for(outdir, f"{pair}-{name}")),
                           "--log", str(outdir / f"{pair}-{name}.log"),
                           env=OTHER_ENVIRONMENT if other else None, umask=0o077 if other else None,
                           timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return directory


def assert_same(first: Path, second: Path) -> dict[str, str]:
    report = reprocheck.compare(first, second)
    assert report == "", f"the two builds differ:\n{report}"
    sums = reprocheck.digests(first)
    print(f"\nreproducible: {first.name} and {second.name}:")  # the figures for the record
    for name, digest in sums.items():
        print(f"  {digest}  {name}")
    return sums


@pytest.fixture(scope="module")
def live_pair(mirror: str, outdir: Path) -> tuple[Path, Path]:
    # --iso-archive: the installers' offline archive (apt-ftparchive's indexes, the pool) is in
    # what must come out the same (issue 24).
    first = build(mirror, outdir, "repro-live", "a", *LIVE, "--squash", "@live", "--iso", "@live.iso", "--iso-archive")
    second = build(mirror, outdir, "repro-live", "b", *LIVE, "--squash", "@live", "--iso", "@live.iso",
                   "--iso-archive", other=True)
    return first, second


def test_squashfs_and_iso_are_reproducible(live_pair: tuple[Path, Path]) -> None:
    sums = assert_same(*live_pair)
    for name in ("live.iso", "live/filesystem.squashfs", "live/vmlinuz", "live/initrd.img", "live.iso.spdx.json",
                 "live/filesystem.spdx.json", "SHA256SUMS", "live/SHA256SUMS"):
        assert name in sums
    assert our_mounts() == []


def test_the_warm_build_came_from_the_stage_cache(live_pair: tuple[Path, Path], outdir: Path) -> None:
    assert "from the stage cache" in (outdir / "repro-live-b.log").read_text()
    assert "from the stage cache" not in (outdir / "repro-live-a.log").read_text()


def test_sha256sums_check_out(live_pair: tuple[Path, Path]) -> None:
    first, _ = live_pair
    for directory in (first, first / "live"):
        result = subprocess.run(["sha256sum", "--check", "--strict", "SHA256SUMS"], cwd=directory,
                                capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
    listed = (first / "SHA256SUMS").read_text()
    assert "  live.iso\n" in listed and "  live.iso.spdx.json\n" in listed


def test_the_sbom_is_valid_and_lists_the_image_s_packages(live_pair: tuple[Path, Path], tmp_path: Path) -> None:
    first, _ = live_pair
    spdx, cdx = first / "live/filesystem.spdx.json", first / "live/filesystem.cdx.json"
    assert sbomcheck.validate_spdx(spdx) == []
    assert sbomcheck.validate_cyclonedx(cdx) == []
    subprocess.run(["unsquashfs", "-d", str(tmp_path / "root"), str(first / "live/filesystem.squashfs"),
                    "var/lib/dpkg"], capture_output=True, check=True)
    installed = sbomcheck.installed_packages(tmp_path / "root/var/lib/dpkg")
    assert len(installed) > 100
    assert sbomcheck.packages_in_spdx(spdx) == installed
    assert sbomcheck.packages_in_cyclonedx(cdx) == installed
    document = json.loads(spdx.read_text())
    assert document["spdxVersion"] == "SPDX-2.3"
    # The ISO's also lists the packages of its boot files, which the tree does not have (issue 22).
    on_iso = sbomcheck.packages_in_spdx(first / "live.iso.spdx.json")
    # and those of its offline archive (issue 24).
    only_on_iso = {p.split(":")[0] for p in on_iso - installed}
    assert installed < on_iso and only_on_iso >= {"isolinux", "shim-signed", "grub-pc", "grub-efi-amd64-signed"}


def test_tarball_is_reproducible(live_pair: tuple[Path, Path], mirror: str, outdir: Path) -> None:
    first = build(mirror, outdir, "repro-tar", "a", *LIVE, "--tarball", "@root.tar.gz")
    second = build(mirror, outdir, "repro-tar", "b", *LIVE, "--tarball", "@root.tar.gz", other=True)
    sums = assert_same(first, second)
    assert {"root.tar.gz", "root.tar.gz.spdx.json", "SHA256SUMS"} <= set(sums)


IMAGE = ("--distribution", "trixie", "--size", "2G", "--part-type", "gpt", "--use-uefi", "--grub",
         "--swap", "256M", "--serial-console", "--user", f"user/{PASSWORD}", "--sudo", "--hostname", "vmdb-repro",
         *SEED)


def test_raw_disk_image_is_reproducible(mirror: str, outdir: Path) -> None:
    first = build(mirror, outdir, "repro-image", "a", *IMAGE, "--image", "@disk.img")
    second = build(mirror, outdir, "repro-image", "b", *IMAGE, "--image", "@disk.img", other=True)
    assert "from the stage cache" in (outdir / "repro-image-b.log").read_text()
    sums = assert_same(first, second)
    assert {"disk.img", "disk.img.spdx.json", "SHA256SUMS"} <= set(sums)


@pytest.mark.slow
def test_arm64_squashfs_is_reproducible(arm64: Path, mirror: str, outdir: Path) -> None:
    """The ``arm64`` build (cold, under emulation) and its twin, warm from its stage."""
    twin = outdir / "arm64-twin"
    twin.mkdir()
    result = vmdebootstrap("--config", "examples/live-arm64.conf", "--squash", str(twin / "arm64"),
                           "--workdir", str(workdir_for(outdir, "arm64-twin")), "--iso", str(twin / "arm64.iso"),
                           "--mirror", mirror, "--user", f"user/{PASSWORD}", "--log", str(outdir / "arm64-twin.log"),
                           *ARM64_SEED, *SLOW_GUEST_APPEND,
                           env=OTHER_ENVIRONMENT, umask=0o077, timeout=3600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "from the stage cache" in (outdir / "arm64-twin.log").read_text()
    sums = assert_same(arm64, twin / "arm64")
    assert "filesystem.squashfs" in sums
