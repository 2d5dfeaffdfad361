"""The hybrid live ISO built from examples/live.conf (the same build as test_live.py)."""

from __future__ import annotations

import filecmp
import hashlib
import json
import lzma
import subprocess
import urllib.request
from pathlib import Path

import pytest
from debian.deb822 import Packages

from .. import sbomcheck

pytestmark = pytest.mark.integration
# Files the ISO boots with, and the packages of trixie they come from (issue 22).
BOOT_PACKAGES = ("shim-signed", "shim-helpers-amd64-signed", "grub-efi-amd64-signed", "grub-efi-amd64-bin",
                 "isolinux", "syslinux-common")


def xorriso(iso: Path, *args: str) -> str:
    return subprocess.run(["xorriso", "-indev", str(iso), *args], capture_output=True, text=True,
                          check=True).stdout


@pytest.fixture(scope="session")
def iso(live: dict[str, object]) -> Path:
    path = live["iso"]
    assert isinstance(path, Path)
    return path


@pytest.fixture(scope="session")
def extracted(iso: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("iso")
    for inside in ("/boot/grub/grub.cfg", "/isolinux/isolinux.cfg", "/isolinux/isolinux.bin",
                   "/isolinux/ldlinux.c32", "/live/vmlinuz", "/live/initrd.img",
                   "/live/filesystem.squashfs", "/EFI/boot/bootx64.efi", "/EFI/boot/grubx64.efi",
                   "/boot/grub/efi.img"):
        out = target / inside.lstrip("/")
        out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["xorriso", "-osirrox", "on", "-indev", str(iso), "-extract", inside, str(out)],
                       capture_output=True, check=True)
    return target


def test_bios_and_uefi_el_torito_entries(iso: Path) -> None:
    report = xorriso(iso, "-report_el_torito", "plain")
    entries = [line for line in report.splitlines() if line.startswith("El Torito boot img")]
    assert any("BIOS" in line for line in entries), report
    assert any("UEFI" in line for line in entries), report


def test_hybrid_mbr_and_gpt(iso: Path) -> None:
    area = xorriso(iso, "-report_system_area", "plain")
    assert "MBR partition table" in area or "MBR partition" in area, area
    assert "GPT" in area, area
    # The first sector carries the isohybrid MBR's boot signature, so dd to a stick boots.
    with iso.open("rb") as stream:
        mbr = stream.read(512)
    assert mbr[510:512] == b"\x55\xaa"


def test_live_files_are_the_built_ones(live: dict[str, object], extracted: Path) -> None:
    squash = live["dir"]
    assert isinstance(squash, Path)
    for name in ("vmlinuz", "initrd.img", "filesystem.squashfs"):
        assert filecmp.cmp(extracted / "live" / name, squash / name, shallow=False), name


def test_menus_offer_live_serial_and_toram(extracted: Path) -> None:
    for config in (extracted / "boot/grub/grub.cfg", extracted / "isolinux/isolinux.cfg"):
        text = config.read_text()
        assert text.count("boot=live components") == 3, config
        assert "console=ttyS0,115200n8" in text
        assert " toram" in text
    grub = (extracted / "boot/grub/grub.cfg").read_text()
    assert "linux /live/vmlinuz" in grub and "initrd /live/initrd.img" in grub


def test_efi_image_holds_grub(extracted: Path) -> None:
    efi = extracted / "EFI/boot/bootx64.efi"
    assert efi.read_bytes()[:2] == b"MZ"  # a PE/COFF EFI application
    listing = subprocess.run(["mdir", "-i", str(extracted / "boot/grub/efi.img"), "::/EFI/BOOT"],
                             capture_output=True, text=True, check=True).stdout
    assert "BOOTX64" in listing.upper()


def test_secure_boot_chain_shim_then_the_cd_grub(extracted: Path) -> None:
    """shim signed by Microsoft as the removable-media loader, the GRUB image Debian signs for
    CDs beside it, MokManager, and on efi.img the early config that leads to the ISO's menu."""
    shim = (extracted / "EFI/boot/bootx64.efi").read_bytes()
    grub = (extracted / "EFI/boot/grubx64.efi").read_bytes()
    assert b"Microsoft Corporation UEFI CA 2011" in shim and b"Microsoft UEFI CA 2023" in shim
    assert b"Debian Secure Boot Signer" in grub and b"Microsoft" not in grub
    image = str(extracted / "boot/grub/efi.img")
    listing = subprocess.run(["mdir", "-/", "-b", "-i", image, "::/"], capture_output=True, text=True,
                             check=True).stdout.upper()
    for name in ("::/EFI/BOOT/BOOTX64.EFI", "::/EFI/BOOT/GRUBX64.EFI", "::/EFI/BOOT/MMX64.EFI",
                 "::/BOOT/GRUB/GRUB.CFG"):
        assert name in listing, listing
    early = subprocess.run(["mtype", "-i", image, "::/boot/grub/grub.cfg"], capture_output=True, text=True,
                           check=True).stdout
    assert early.startswith("search --no-floppy --set=root --file /.disk/vmdebootstrap-")
    # Under Secure Boot GRUB loads no module from the medium: the menu asks for built-in ones only.
    menu = (extracted / "boot/grub/grub.cfg").read_text()
    assert [line.split()[1] for line in menu.splitlines() if line.startswith("insmod")] == ["all_video"]


def test_live_boot_is_in_the_initrd(extracted: Path) -> None:
    listing = subprocess.run(["lsinitramfs", str(extracted / "live/initrd.img")], capture_output=True,
                             text=True, check=True).stdout
    assert "scripts/live" in listing


@pytest.fixture(scope="session")
def trixie_packages(mirror: str) -> dict[str, Packages]:
    """trixie's amd64 Packages index on the build mirror (its architecture "all" packages too)."""
    with urllib.request.urlopen(f"{mirror}dists/trixie/main/binary-amd64/Packages.xz", timeout=300) as answer:
        text = lzma.decompress(answer.read()).decode()
    return {paragraph["Package"]: paragraph for paragraph in Packages.iter_paragraphs(text, use_apt_pkg=False)}


def test_the_iso_s_sbom_names_its_boot_packages_and_its_own_checksum(iso: Path,
                                                                    trixie_packages: dict[str, Packages]) -> None:
    spdx, cdx = iso.with_name(iso.name + ".spdx.json"), iso.with_name(iso.name + ".cdx.json")
    assert sbomcheck.validate_spdx(spdx) == [] and sbomcheck.validate_cyclonedx(cdx) == []
    listed = {entry.split()[0]: entry.split()[1] for entry in sbomcheck.packages_in_spdx(spdx)}
    for name in BOOT_PACKAGES:  # at the versions of the release the image is, never the host's
        index = trixie_packages[name]
        assert listed[f"{name}:{index['Architecture']}"] == index["Version"], name
    assert {p.split()[0] for p in sbomcheck.packages_in_cyclonedx(cdx)} == set(listed)
    digest = hashlib.sha256(iso.read_bytes()).hexdigest()
    document = json.loads(spdx.read_text())
    [file] = [p for p in document["packages"] if p.get("primaryPackagePurpose") == "FILE"]
    assert (file["name"], file["checksums"]) == (iso.name, [{"algorithm": "SHA256", "checksumValue": digest}])
    [component] = [c for c in json.loads(cdx.read_text())["components"] if c["type"] == "file"]
    assert component["hashes"] == [{"alg": "SHA-256", "content": digest}]


def test_isolinux_is_the_target_release_s(extracted: Path, mirror: str, trixie_packages: dict[str, Packages],
                                          tmp_path: Path) -> None:
    """The ISO's ISOLINUX is trixie's isolinux package's, byte for byte (but for the boot
    information table), whatever the build host has."""
    debs = {}
    for name in ("isolinux", "syslinux-common"):
        debs[name] = tmp_path / f"{name}.deb"
        urllib.request.urlretrieve(mirror + trixie_packages[name]["Filename"], debs[name])
        subprocess.run(["dpkg-deb", "-x", str(debs[name]), str(tmp_path / "unpacked")], check=True)
    # but for the boot information table xorriso writes over bytes 8 to 63 (-boot-info-table,
    # El Torito: where the ISO and the file lie, and the file's checksum).
    on_iso = (extracted / "isolinux/isolinux.bin").read_bytes()
    packaged = (tmp_path / "unpacked/usr/lib/ISOLINUX/isolinux.bin").read_bytes()
    assert len(on_iso) == len(packaged) and on_iso[8:64] != packaged[8:64]
    assert on_iso[:8] + on_iso[64:] == packaged[:8] + packaged[64:]
    assert (extracted / "isolinux/ldlinux.c32").read_bytes() == \
        (tmp_path / "unpacked/usr/lib/syslinux/modules/bios/ldlinux.c32").read_bytes()
