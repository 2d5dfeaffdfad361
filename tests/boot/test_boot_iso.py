"""Boot tier: the ISOs the integration tier built boot in QEMU to a login prompt.

Logs in over the serial console (the ISO's serial-console menu entry), checks the
user's groups, the kernel command line and the live overlay root, powers off, and
leaves no QEMU process behind.  KVM is used only where it works (qemu.kvm_usable);
here that means TCG.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from vmdebootstrap.architectures import ARCHITECTURES
from vmdebootstrap.boot import console as boot_console
from vmdebootstrap.boot import qemu
from vmdebootstrap.boot.check import SERIAL_ENTRY_KEYS

from ..conftest import PASSWORD, SLOW_GUEST_APPEND

pytestmark = pytest.mark.boot


def no_qemu_left(image: Path) -> bool:
    """No QEMU still runs this image (another session may boot other images meanwhile)."""
    return subprocess.run(["pgrep", "-f", f"qemu-system.*{image}"], capture_output=True,
                          check=False).stdout == b""


def boot(image: Path, arch: str, firmware: str, workdir: Path, timeout: int = 900) -> boot_console.BootResult:
    target = qemu.BootTarget(image=image, kind="iso", arch=ARCHITECTURES[arch], firmware=firmware)
    # Every ISO here is built with --sudo: the user is in the sudo group, and sudo asks for the
    # password (live-config's sudo component would give the live user NOPASSWD: issue 22).
    result = boot_console.boot_test(target, "user", PASSWORD, workdir, timeout=timeout,
                                grub_entry_keys=SERIAL_ENTRY_KEYS, sudo=True)
    assert result.sudo_status not in (0, None) or not result.passed, result.verdict
    return result


@pytest.mark.parametrize("firmware", ["bios", "uefi-secure"])
def test_amd64_live_iso_boots_and_logs_in(live: dict[str, object], firmware: str, tmp_path: Path) -> None:
    iso = live["iso"]
    assert isinstance(iso, Path)
    result = boot(iso, "amd64", firmware, tmp_path)
    console = result.console_log.read_text(errors="replace")
    assert result.passed, f"{result.verdict}\n{console[-3000:]}"
    assert result.seconds_to_login is not None
    assert "(sudo)" in result.id_output, result.id_output
    assert "boot=live" in result.cmdline and "console=ttyS0" in result.cmdline
    assert result.root_fstype == "overlay"
    assert result.system_state in ("running", "degraded"), result.verdict
    if firmware == "uefi-secure":  # shim, signed GRUB and kernel: the guest says Secure Boot was on
        assert result.secure_boot and result.lockdown == "integrity", result.verdict
    assert PASSWORD not in console
    assert no_qemu_left(iso)
    print(f"amd64 {firmware}: login after {result.seconds_to_login:.0f} s; {result.verdict}")


@pytest.mark.slow
def test_arm64_live_iso_boots_with_secure_boot(arm64: Path, tmp_path: Path) -> None:
    iso = arm64.parent / "arm64.iso"
    result = boot(iso, "arm64", "uefi-secure", tmp_path, timeout=1800)
    console = result.console_log.read_text(errors="replace")
    assert result.passed, f"{result.verdict}\n{console[-3000:]}"
    assert "boot=live" in result.cmdline and "console=ttyAMA0" in result.cmdline
    assert SLOW_GUEST_APPEND[1] in result.cmdline  # --kernel-append reached the GRUB menus
    assert result.root_fstype == "overlay"
    assert result.secure_boot and result.lockdown == "integrity", result.verdict
    assert no_qemu_left(iso)
    print(f"arm64 uefi-secure: login after {result.seconds_to_login:.0f} s; {result.verdict}")


def test_warm_rebuild_from_the_stage_cache_boots(live_warm: dict[str, object], tmp_path: Path) -> None:
    """A build whose root came from the stage cache boots like the cold one (issue 8)."""
    iso = live_warm["iso"]
    assert isinstance(iso, Path)
    result = boot(iso, "amd64", "bios", tmp_path)
    console = result.console_log.read_text(errors="replace")
    assert result.passed, f"{result.verdict}\n{console[-3000:]}"
    assert "(sudo)" in result.id_output, result.id_output
    assert result.root_fstype == "overlay"
    assert no_qemu_left(iso)
    print(f"warm rebuild, amd64 bios: login after {result.seconds_to_login:.0f} s; {result.verdict}")
