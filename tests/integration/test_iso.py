"""The hybrid live ISO built from examples/live.conf (the same build as test_live.py)."""

from __future__ import annotations

import filecmp
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


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
    for inside in ("/boot/grub/grub.cfg", "/isolinux/isolinux.cfg", "/live/vmlinuz", "/live/initrd.img",
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
