"""The official flavours (examples/flavours, issue 24): the xfce ISO, built once, read here
and booted by tests/boot/test_boot_flavours.py.

Calamares has no unattended mode: what is checked is what its bootloader step needs, that
apt in the live system with the ISO's own repository as its only source (as
calamares-settings-debian's sources-media helper sets it up in the installed system) can
install GRUB for BIOS and UEFI, shim and cryptsetup's initramfs hook.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from .. import sbomcheck
from ..conftest import our_mounts

pytestmark = [pytest.mark.integration, pytest.mark.flavours]
OFFLINE = ("grub-pc", "grub-efi-amd64-signed", "shim-signed", "cryptsetup-initramfs")


@pytest.fixture(scope="module")
def medium(xfce_iso: dict[str, object], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ISO's files (its repository and its live root filesystem), as the live system sees
    them at /run/live/medium."""
    iso = xfce_iso["iso"]
    assert isinstance(iso, Path)
    target = tmp_path_factory.mktemp("xfce-medium")
    subprocess.run(["xorriso", "-osirrox", "on", "-indev", str(iso), "-extract", "/", str(target)],
                   check=True, capture_output=True)
    return target


def test_calamares_installs_the_bootloader_from_the_iso_alone(medium: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    subprocess.run(["unsquashfs", "-d", str(root), str(medium / "live/filesystem.squashfs")], check=True,
                   capture_output=True)
    helper = (root / "usr/share/calamares/helpers/calamares-sources-media").read_text()
    assert 'KNOWN_MEDIUM_PATHS="/run/live/medium' in helper and 'RELEASE="trixie"' in helper
    unpack = (root / "etc/calamares/modules/unpackfs.conf").read_text()
    assert '"/run/live/medium/live/filesystem.squashfs"' in unpack  # the layout of our ISO
    (root / "run/live/medium").mkdir(parents=True, exist_ok=True)
    sources = root / "tmp/medium.list"
    sources.write_text("deb [trusted=yes] file:/run/live/medium trixie main\n")  # sources-media's line
    apt = ("apt-get -o Dir::Etc::SourceList=/tmp/medium.list -o Dir::Etc::SourceParts=/nonexistent "
           "-o Dir::State::Lists=/tmp/medium-lists")
    script = (f"mkdir -p {root}/tmp/medium-lists/partial && mount --bind {medium} {root}/run/live/medium && "
              f"mount --rbind /dev {root}/dev && mount -t proc proc {root}/proc && "
              f"chroot {root} {apt} update && chroot {root} {apt} install --simulate {' '.join(OFFLINE)}")
    result = subprocess.run(["unshare", "--mount", "--propagation", "private", "--fork", "sh", "-c", script],
                            capture_output=True, text=True, check=False, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    installed = {line.split()[1] for line in result.stdout.splitlines() if line.startswith("Inst ")}
    assert set(OFFLINE) <= installed and "grub-efi-amd64-bin" in installed
    assert our_mounts() == []


def test_the_iso_s_sbom_lists_its_offline_archive(xfce_iso: dict[str, object], medium: Path) -> None:
    iso = xfce_iso["iso"]
    assert isinstance(iso, Path)
    listed = {entry.split(":")[0] for entry in sbomcheck.packages_in_spdx(iso.with_name(iso.name + ".spdx.json"))}
    pooled = {deb.name.split("_")[0] for deb in (medium / "pool").rglob("*.deb")}
    assert set(OFFLINE) <= pooled <= listed
    release = (medium / "dists/trixie/Release").read_text()
    assert "Codename: trixie" in release and "main/binary-amd64/Packages" in release


def test_the_desktop_and_its_firmware_task_are_in_the_live_system(medium: Path) -> None:
    listing = subprocess.run(["unsquashfs", "-l", "-d", "", str(medium / "live/filesystem.squashfs"),
                              "var/lib/dpkg/info"], capture_output=True, text=True, check=True).stdout
    for package in ("live-task-xfce", "lightdm", "calamares-settings-debian", "live-task-non-free-firmware-pc"):
        assert f"/var/lib/dpkg/info/{package}.list" in listing, package
