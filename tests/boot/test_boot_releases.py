"""Boot tier: the ISOs of the other releases (bookworm, forky, i386 bookworm) log in."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..conftest import PASSWORD
from .test_boot_iso import boot, no_qemu_left

pytestmark = [pytest.mark.boot, pytest.mark.releases]


def logs_in(built: dict[str, object], arch: str, firmware: str, workdir: Path) -> str:
    iso = built["iso"]
    assert isinstance(iso, Path)
    result = boot(iso, arch, firmware, workdir)
    console = result.console_log.read_text(errors="replace")
    assert result.passed, f"{result.verdict}\n{console[-3000:]}"
    assert "(sudo)" in result.id_output, result.id_output
    assert "boot=live" in result.cmdline and result.root_fstype == "overlay"
    if firmware == "uefi-secure":
        assert result.secure_boot and result.lockdown == "integrity", result.verdict
    assert PASSWORD not in console
    assert no_qemu_left(iso)
    return f"login after {result.seconds_to_login:.0f} s; {result.verdict}"


def test_bookworm_iso_boots_with_uefi(bookworm_iso: dict[str, object], tmp_path: Path) -> None:
    """Built with --no-secure-boot: GRUB made by grub-mkimage, booted by plain UEFI.  Bookworm's
    BIOS path (ISOLINUX) is booted by the i386 ISO below: one boot less for make check."""
    print(f"bookworm uefi: {logs_in(bookworm_iso, 'amd64', 'uefi', tmp_path)}")


def test_forky_iso_boots_with_secure_boot(forky_iso: dict[str, object], tmp_path: Path) -> None:
    """Testing's signed chain under enforcing firmware: tomorrow's Secure Boot breakage shows here."""
    print(f"forky uefi-secure: {logs_in(forky_iso, 'amd64', 'uefi-secure', tmp_path)}")


def test_i386_bookworm_iso_boots_with_bios(i386_iso: dict[str, object], tmp_path: Path) -> None:
    print(f"i386 bios: {logs_in(i386_iso, 'i386', 'bios', tmp_path)}")
