"""Releases other than trixie: bookworm (the previous one) and its i386 ISO, forky (testing,
by codename, bootstrapped with debootstrap's newest script) and sid (unstable)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from ..conftest import https_variant, our_mounts

pytestmark = [pytest.mark.integration, pytest.mark.releases]


def el_torito(iso: Path) -> str:
    return subprocess.run(["xorriso", "-indev", str(iso), "-report_el_torito", "plain"], capture_output=True,
                          text=True, check=True).stdout


def extract(squashfs: Path, target: Path, *paths: str) -> Path:
    subprocess.run(["unsquashfs", "-f", "-d", str(target), str(squashfs), *paths], capture_output=True, check=True)
    return target


def efi_files(iso: Path) -> str:
    """The files below /EFI of an ISO, one per line (xorriso quotes each name)."""
    listing = subprocess.run(["xorriso", "-indev", str(iso), "-find", "/EFI", "-type", "f"], capture_output=True,
                             text=True, check=True).stdout
    return "\n".join(line.strip().strip("'") for line in listing.splitlines())


def test_bookworm_iso_keeps_the_one_line_sources(bookworm_iso: dict[str, object], tmp_path: Path) -> None:
    iso, squash, mirror = bookworm_iso["iso"], bookworm_iso["dir"], bookworm_iso["mirror"]
    assert isinstance(iso, Path) and isinstance(squash, Path) and isinstance(mirror, str)
    report = el_torito(iso)
    assert "BIOS" in report and "UEFI" in report
    assert "/EFI/boot/bootx64.efi" in efi_files(iso) and "grubx64.efi" not in efi_files(iso)  # --no-secure-boot
    root = extract(squash / "filesystem.squashfs", tmp_path / "root", "etc")
    assert re.match(r"^12\.\d+$", (root / "etc/debian_version").read_text().strip())
    assert (root / "etc/apt/sources.list").read_text().splitlines()[0] == f"deb {https_variant(mirror)} bookworm main"
    assert not (root / "etc/apt/sources.list.d/debian.sources").exists()


def test_forky_by_codename_with_debootstraps_newest_script(forky_iso: dict[str, object], tmp_path: Path) -> None:
    log, squash = forky_iso["log"], forky_iso["dir"]
    assert isinstance(log, Path) and isinstance(squash, Path)
    text = log.read_text()
    if not Path("/usr/share/debootstrap/scripts/forky").exists():  # a trixie host's debootstrap knows forky
        assert "debootstrap has no script for forky: it uses trixie's" in text
        assert re.search(r"\+ debootstrap .* forky \S+ \S+ /usr/share/debootstrap/scripts/trixie\n", text)
    root = extract(squash / "filesystem.squashfs", tmp_path / "root", "etc", "usr/lib/os-release")
    assert (root / "etc/debian_version").read_text().strip() == "forky/sid"
    assert {"/EFI/boot/bootx64.efi", "/EFI/boot/grubx64.efi", "/EFI/boot/mmx64.efi"} <= set(
        efi_files(forky_iso["iso"]).split())  # type: ignore[arg-type]
    sources = (root / "etc/apt/sources.list.d/debian.sources").read_text()
    assert "Suites: forky forky-updates\n" in sources and "Suites: forky-security\n" in sources
    # --no-check-valid-until served the build only.
    assert not list((root / "etc/apt/apt.conf.d").glob("*vmdebootstrap*"))
    assert our_mounts() == []


def test_sid_squashfs(sid_squash: dict[str, object], tmp_path: Path) -> None:
    squash = sid_squash["dir"]
    assert isinstance(squash, Path)
    assert {"filesystem.squashfs", "vmlinuz", "initrd.img"} <= {p.name for p in squash.iterdir()}
    root = extract(squash / "filesystem.squashfs", tmp_path / "root", "etc")
    assert (root / "etc/debian_version").read_text().strip() == "forky/sid"
    sources = (root / "etc/apt/sources.list.d/debian.sources").read_text()
    assert sources.count("Types: deb") == 1 and "Suites: sid\n" in sources


def test_i386_bookworm_iso_has_bios_and_32_bit_uefi(i386_iso: dict[str, object], tmp_path: Path) -> None:
    iso, squash = i386_iso["iso"], i386_iso["dir"]
    assert isinstance(iso, Path) and isinstance(squash, Path)
    report = el_torito(iso)
    assert "BIOS" in report and "UEFI" in report
    assert "bootia32.efi" in efi_files(iso)
    assert any(p.name.endswith("-686-pae") for p in squash.glob("vmlinuz-*"))
