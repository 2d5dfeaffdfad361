"""A Raspberry Pi's own boot (--board raspi-3, raspi-4): its GPU firmware, no u-boot.

The Pi's ROM and GPU firmware read the first FAT partition of the SD card: bootcode.bin,
start*.elf, config.txt (which kernel, which initramfs) and cmdline.txt (the kernel's
command line), and the board's device tree.  raspi-firmware (non-free-firmware) puts the
firmware there and its kernel hook (/etc/kernel/postinst.d/z50-raspi-firmware) copies the
newest kernel, initrd and the Broadcom device trees and writes both files, at every later
kernel upgrade too.  The layout is https://raspi.debian.net's (boards.py): that partition from
4 MiB to 512 MiB at /boot/firmware, labelled RASPIFIRM, the root RASPIROOT, fstab by label.

The hook reads /etc/default/raspi-firmware, written here before the kernel is installed:
the root by label (otherwise findmnt names the build's own root) and the consoles
(otherwise it looks for /dev/ttyS1 in the build's /dev).  Its package's postinst wants
/boot/firmware mounted unless it runs in a chroot, which ischroot sees here.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..chroot import target_path, write_file
from ..context import Context
from ..disk import Image
from ..errors import BuildError
from ..settings import Settings

DEFAULTS = "/etc/default/raspi-firmware"
EXTRA_CMDLINE = "/etc/default/raspi-extra-cmdline"
FIRMWARE = "/boot/firmware"


def packages(settings: Settings) -> list[str]:
    return list(settings.board.packages) if settings.board else ["raspi-firmware"]


def host_tools(_settings: Settings | None) -> Mapping[str, str]:
    return {}


def defaults(settings: Settings, image: Image) -> str:
    """Our /etc/default/raspi-firmware: the root by its label, the consoles, and the board's own."""
    consoles = f"tty0 {settings.serial_port}" if settings.serial_console else "tty0"
    values = {"ROOTPART": f"LABEL={image.request.label_of('root')}", "CONSOLES": consoles,
              **dict(settings.board.firmware_settings if settings.board else ())}
    lines = ["# Written by vmdebootstrap before the kernel was installed; raspi-firmware's kernel hook",
             "# reads it at every kernel install and writes /boot/firmware/config.txt and cmdline.txt.",
             *(f'{key}="{value}"' for key, value in values.items())]
    return "\n".join(lines) + "\n"


def prepare(ctx: Context, image: Image) -> None:
    write_file(ctx.root, DEFAULTS, defaults(ctx.settings, image))
    if ctx.settings.kernel_append:  # raspi-firmware's kernel hook appends this file to cmdline.txt
        write_file(ctx.root, EXTRA_CMDLINE, ctx.settings.kernel_append + "\n")
    target_path(ctx.root, FIRMWARE).mkdir(parents=True, exist_ok=True)


def install(ctx: Context, image: Image) -> None:
    """Check what raspi-firmware's hook left on the firmware partition: the firmware, the
    kernel and initrd config.txt names, and the root by label in cmdline.txt."""
    firmware = target_path(ctx.root, FIRMWARE)
    config = firmware / "config.txt"
    if not config.is_file():
        raise BuildError(f"raspi-firmware wrote no {FIRMWARE}/config.txt (is there a kernel and an initrd?)")
    named = [line.split("=", 1)[1] if line.startswith("kernel=") else line.split()[1]
             for line in config.read_text().splitlines() if line.startswith(("kernel=", "initramfs "))]
    for name in ["bootcode.bin", "start.elf", *named]:
        if not (firmware / name).is_file():
            raise BuildError(f"{FIRMWARE}/{name} is missing: the Pi's firmware could not start the kernel")
    cmdline = (firmware / "cmdline.txt").read_text()
    if f"root=LABEL={image.request.label_of('root')}" not in cmdline:
        raise BuildError(f"{FIRMWARE}/cmdline.txt does not name the root by its label: {cmdline.strip()}")


def finish(_ctx: Context, _image: Image) -> None:
    return None  # the firmware partition is made from the tree's /boot/firmware
