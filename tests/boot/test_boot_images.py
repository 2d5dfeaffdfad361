"""Boot tier: the disk images the integration tier built boot in QEMU and log in.

Each image is booted with ``-snapshot`` (the image file is never changed), over its
serial console; the checks run inside the booted system: the system state, no
failed unit (so /boot, /boot/efi and swap mounted from fstab), the kernel command
line naming the root by UUID, the root's filesystem type.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from vmdebootstrap.architectures import ARCHITECTURES
from vmdebootstrap.boot import console as boot_console
from vmdebootstrap.boot import qemu

from ..conftest import PASSWORD, SLOW_GUEST_APPEND
from .test_boot_iso import no_qemu_left

pytestmark = [pytest.mark.boot, pytest.mark.images]


def boot_disk(image: object, arch: str, firmware: str, workdir: Path, timeout: int = 900) -> boot_console.BootResult:
    assert isinstance(image, Path)
    target = qemu.BootTarget(image=image, kind="disk", arch=ARCHITECTURES[arch], firmware=firmware)
    result = boot_console.boot_test(target, "user", PASSWORD, workdir, timeout=timeout, sudo=True)  # all --sudo
    console = result.console_log.read_text(errors="replace")
    assert result.passed, f"{result.verdict}\n{console[-3000:]}"
    assert result.sudo_status not in (0, None), result.verdict
    assert result.system_state == "running", result.verdict
    assert "root=UUID=" in result.cmdline and "/dev/loop" not in result.cmdline
    assert PASSWORD not in console
    assert no_qemu_left(image)
    print(f"{image.name} ({arch} {firmware}): login after {result.seconds_to_login:.0f} s; {result.verdict}")
    return result


def test_bios_grub_image_with_boot_and_swap_partitions_logs_in(bios_image: dict[str, object],
                                                              tmp_path: Path) -> None:
    result = boot_disk(bios_image["image"], "amd64", "bios", tmp_path)
    assert result.root_fstype == "ext4" and "(sudo)" in result.id_output
    assert "console=ttyS0,115200n8" in result.cmdline


def test_uefi_grub_qcow2_image_logs_in_with_secure_boot(uefi_image: dict[str, object], tmp_path: Path) -> None:
    result = boot_disk(uefi_image["image"], "amd64", "uefi-secure", tmp_path)
    assert result.root_fstype == "btrfs"
    assert result.secure_boot and result.lockdown == "integrity", result.verdict


def test_enforcing_firmware_refuses_a_loader_its_keys_do_not_sign(uefi_image: dict[str, object],
                                                                  tmp_path: Path) -> None:
    """The boot test can fail: the removable-path shim replaced by GRUB, which Debian signs but
    Microsoft's keys in the firmware do not; the verdict names the refusal, not a timeout."""
    raw = tmp_path / "unsigned.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(uefi_image["image"]), str(raw)], check=True)
    start = json.loads(subprocess.run(["sfdisk", "--json", str(raw)], capture_output=True, text=True,
                                      check=True).stdout)["partitiontable"]["partitions"][0]["start"] * 512
    esp = f"{raw}@@{start}"
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
    loader = tmp_path / "loader.efi"
    subprocess.run(["mcopy", "-i", esp, "::/EFI/debian/grubx64.efi", str(loader)], check=True, env=env)
    subprocess.run(["mcopy", "-o", "-i", esp, str(loader), "::/EFI/BOOT/BOOTX64.EFI"], check=True, env=env)
    target = qemu.BootTarget(image=raw, kind="disk", arch=ARCHITECTURES["amd64"], firmware="uefi-secure")
    result = boot_console.boot_test(target, "user", PASSWORD, tmp_path / "work", timeout=600)
    assert not result.passed
    assert result.verdict.startswith("Secure Boot: the firmware refused the loader ("), result.verdict
    assert "Access Denied" in result.verdict
    assert no_qemu_left(raw)


def test_extlinux_image_logs_in(extlinux_image: dict[str, object], tmp_path: Path) -> None:
    result = boot_disk(extlinux_image["image"], "amd64", "bios", tmp_path)
    assert result.root_fstype == "ext3"


@pytest.mark.slow_image
def test_arm64_uefi_image_logs_in_with_secure_boot(arm64_image: dict[str, object], tmp_path: Path) -> None:
    result = boot_disk(arm64_image["image"], "arm64", "uefi-secure", tmp_path, timeout=1800)
    assert "console=ttyAMA0,115200n8" in result.cmdline
    assert SLOW_GUEST_APPEND[1] in result.cmdline  # --kernel-append, through GRUB's defaults
    assert result.secure_boot and result.lockdown == "integrity", result.verdict
