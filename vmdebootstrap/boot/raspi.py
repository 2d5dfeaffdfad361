"""A Raspberry Pi image booted on QEMU's raspi3b machine (--boot-firmware raspi3b).

A Pi starts from its GPU firmware (bootcode.bin, start*.elf), which reads config.txt and
cmdline.txt on the first FAT partition and loads the kernel, initrd and device tree they
name.  QEMU cannot run that firmware, so here the same files are read from the image's
firmware partition (mtools: nothing is mounted) and QEMU loads them itself.  What a boot
proves: the image's kernel, initrd, device tree, command line (root by label, the serial
console), fstab and root filesystem on a Pi 3's SoC and SD controller.  What only a real
board proves: the GPU firmware's part (config.txt's settings, the firmware files).

raspi3b takes an SD card whose size is a power of two: the image is the backing file of a
qcow2 overlay of the next power of two, so the image itself is never written.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from ..errors import BuildError

FAT_TYPES = ("b", "c", "e")  # the msdos partition types of FAT32 (CHS, LBA) and FAT16 (LBA)
DEVICE_TREE = "bcm2837-rpi-3-b.dtb"  # raspi3b is a Pi 3 B; raspi-firmware copies its tree for every arm64 image


class RaspiBootError(BuildError):
    """The image is not one a Pi's firmware could start (no firmware partition, no kernel named)."""


def firmware_partition_offset(image: Path) -> int:
    """The byte offset of the first FAT partition, where the Pi's firmware looks."""
    listed = _command(["sfdisk", "--json", os.fspath(image)], "read the image's partition table")
    table = json.loads(listed)["partitiontable"]
    if table.get("label") != "dos":
        raise RaspiBootError(f"{image}: a Raspberry Pi boots from an msdos partition table, not {table.get('label')}")
    for part in table.get("partitions", []):
        if part.get("type", "").lower() in FAT_TYPES:
            return int(part["start"]) * int(table.get("sectorsize", 512))
    raise RaspiBootError(f"{image}: no FAT partition for the Pi's firmware")


def read_fat_file(image: Path, offset: int, name: str, target: Path | None = None) -> bytes:
    """A file of the FAT at ``offset``; copied to ``target`` too when given."""
    destination = target or Path(os.devnull)
    argv = ["mcopy", "-n", "-o", "-i", f"{image}@@{offset}", f"::{name}", os.fspath(destination)]
    environment = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
    result = subprocess.run(argv, capture_output=True, check=False, env=environment)
    if result.returncode != 0:
        raise RaspiBootError(f"{image}: no {name} on the firmware partition "
                             f"({result.stderr.decode(errors='replace').strip()})")
    return target.read_bytes() if target is not None else b""


def boot_files(config_txt: str) -> tuple[str, str]:
    """(kernel, initramfs) as config.txt names them: ``kernel=FILE`` and ``initramfs FILE [followkernel]``
    in the common part (raspi-firmware writes no [pi*] section for them)."""
    kernel = initramfs = ""
    for text in config_txt.splitlines():
        line = text.split("#", 1)[0].strip()
        if line.startswith("[") and line.lower() != "[all]":
            break  # the settings of one model follow: not those of every Pi
        if line.startswith("kernel="):
            kernel = line.removeprefix("kernel=").strip()
        elif line.startswith("initramfs "):
            initramfs = line.split()[1]
    if not kernel or not initramfs:
        raise RaspiBootError("config.txt names no kernel= and initramfs: raspi-firmware did not configure the image")
    return kernel, initramfs


def sd_card_size(size: int) -> int:
    """The next power of two of ``size`` bytes: the only sizes QEMU's SD card takes."""
    return 1 << max(0, size - 1).bit_length()


DEVICE_TIMEOUT = 600


def qemu_command(image: Path, workdir: Path, binary: str, machine: str) -> list[str]:
    """QEMU's argv for ``machine`` (raspi3b) with the files the firmware partition names;
    writes them, and the SD card's overlay, into ``workdir``."""
    offset = firmware_partition_offset(image)
    config = read_fat_file(image, offset, "config.txt", workdir / "raspi-config.txt").decode(errors="replace")
    kernel_name, initramfs_name = boot_files(config)
    kernel, initrd, tree = workdir / "raspi-kernel", workdir / "raspi-initrd", workdir / "raspi.dtb"
    read_fat_file(image, offset, kernel_name, kernel)
    read_fat_file(image, offset, initramfs_name, initrd)
    read_fat_file(image, offset, DEVICE_TREE, tree)
    cmdline = read_fat_file(image, offset, "cmdline.txt", workdir / "raspi-cmdline.txt").decode().strip()
    # The emulated Pi's udev takes minutes to name the firmware partition when the host is busy
    # (make check: RASPIFIRM came after systemd's 90 s and the boot ended in emergency mode);
    # a real Pi names it in seconds.  Only the boot test's command line waits longer.
    cmdline += f" systemd.default_device_timeout_sec={DEVICE_TIMEOUT}"
    # QEMU has no VideoCore and runs none of its firmware: vchiq's probe can only fail, and on
    # trixie's 6.12.117 its error path once oopsed the guest ("bcm2835_vchiq: Could not
    # initialize vchiq platform", then a paging request in the kernel; make check, 2026-12-06).
    # A real Pi's firmware answers it.  Only the boot test's command line leaves it out.
    cmdline += " module_blacklist=vchiq"
    card = workdir / "sd-card.qcow2"
    card.unlink(missing_ok=True)
    _command(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", os.fspath(image.absolute()),
              os.fspath(card), str(sd_card_size(image.stat().st_size))], "make the SD card's overlay")
    # The Pi's first UART (PL011) serves Bluetooth; its console is the mini-UART, ttyS1:
    # QEMU's second serial port.  No -m or -smp: raspi3b has 1 GiB and 4 cores, nothing else.
    return [binary, "-machine", machine, "-accel", "tcg", "-no-reboot",
            "-kernel", os.fspath(kernel), "-initrd", os.fspath(initrd), "-dtb", os.fspath(tree), "-append", cmdline,
            "-drive", f"if=sd,format=qcow2,file={_file(card)}",
            "-display", "none", "-monitor", "none", "-serial", "null",
            "-chardev", "stdio,id=con,signal=off", "-serial", "chardev:con"]


def _file(path: Path) -> str:
    return os.fspath(path.absolute()).replace(",", ",,")


def _command(argv: list[str], purpose: str) -> str:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise RaspiBootError(f"cannot {purpose}: {argv[0]} not found") from None
    if result.returncode != 0:
        raise RaspiBootError(f"cannot {purpose}: {' '.join(argv)}: {result.stderr.strip()}")
    return result.stdout
