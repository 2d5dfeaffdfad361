"""Boot tier of the boards (issue 25): each u-boot image boots on QEMU's virt machine through
Debian's u-boot (u-boot-qemu; on riscv64 started by OpenSBI) and the Raspberry Pi image on
raspi3b with what its firmware partition names; each logs in over the serial console.
The seconds to login are printed, not asserted."""

from __future__ import annotations

from pathlib import Path

import pytest

from vmdebootstrap.architectures import ARCHITECTURES
from vmdebootstrap.boot import console as boot_console
from vmdebootstrap.boot import qemu

from ..conftest import PASSWORD
from .test_boot_iso import no_qemu_left

pytestmark = pytest.mark.boot


def boot_board(image: object, arch: str, firmware: str, workdir: Path) -> boot_console.BootResult:
    assert isinstance(image, Path)
    target = qemu.BootTarget(image=image, kind="disk", arch=ARCHITECTURES[arch], firmware=firmware)
    result = boot_console.boot_test(target, "user", PASSWORD, workdir, timeout=1500, sudo=True)
    console = result.console_log.read_text(errors="replace")
    assert result.passed, f"{result.verdict}\n{console[-3000:]}"
    assert result.system_state == "running" and result.sudo_status not in (0, None), result.verdict
    assert "/dev/loop" not in result.cmdline and PASSWORD not in console
    assert no_qemu_left(image)
    print(f"{image.name} ({arch}, {firmware}): login after {result.seconds_to_login:.0f} s; {result.verdict}")
    return result


def booted_through_u_boot(result: boot_console.BootResult) -> str:
    console = result.console_log.read_text(errors="replace")
    assert "U-Boot " in console and "extlinux" in console.lower(), console[:3000]
    assert "root=UUID=" in result.cmdline
    return console


@pytest.mark.boards_arm64
def test_arm64_u_boot_image_logs_in(uboot_arm64_image: dict[str, object], tmp_path: Path) -> None:
    result = boot_board(uboot_arm64_image["image"], "arm64", "u-boot", tmp_path)
    booted_through_u_boot(result)
    assert "console=ttyAMA0,115200n8" in result.cmdline and result.root_fstype == "ext4"


@pytest.mark.boards_armhf_riscv64
def test_beaglebone_image_logs_in_on_qemu_virt(beaglebone_image: dict[str, object], tmp_path: Path) -> None:
    """The BeagleBone image's own extlinux.conf on its FAT /boot, read by u-boot-qemu's qemu_arm
    build (a BeagleBone cannot be emulated: its MLO and u-boot.img are checked by their bytes)."""
    result = boot_board(beaglebone_image["image"], "armhf", "u-boot", tmp_path)
    booted_through_u_boot(result)
    assert "console=ttyAMA0,115200n8" in result.cmdline


@pytest.mark.boards_armhf_riscv64
def test_riscv64_image_logs_in_through_opensbi_and_u_boot(riscv64_image: dict[str, object], tmp_path: Path) -> None:
    result = boot_board(riscv64_image["image"], "riscv64", "u-boot", tmp_path)
    console = booted_through_u_boot(result)
    assert "OpenSBI" in console and "console=ttyS0,115200n8" in result.cmdline


@pytest.mark.boards_raspi
def test_raspberry_pi_image_logs_in_on_raspi3b(raspi_image: dict[str, object], tmp_path: Path) -> None:
    result = boot_board(raspi_image["image"], "arm64", "raspi3b", tmp_path)
    assert "root=LABEL=RASPIROOT" in result.cmdline and "console=ttyS1,115200" in result.cmdline
    assert result.root_fstype == "ext4"
    console = result.console_log.read_text(errors="replace")
    assert "Raspberry Pi 3 Model B" in console  # the device tree's model, as the kernel printed it
