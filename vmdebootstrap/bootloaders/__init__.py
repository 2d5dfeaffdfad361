"""The bootloaders of disk images: one module each, behind one small interface.

A bootloader is chosen once, in settings.validate (``--bootloader``, or the old
``--grub``/``--use-uefi``/``--extlinux``), and only its module is loaded.  Each module
provides what ``loader.Bootloader`` lists.  This registry is plain data, read by the
option table and settings.validate before any module is loaded (the partition layout
depends on it); a new bootloader is one module here and one entry in ``REGISTRY``.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..architectures import Architecture


@dataclasses.dataclass(frozen=True)
class Entry:
    """One bootloader and what settings.validate must know of it: the partition layout it
    wants and what it cannot boot (every refusal there comes from these fields)."""

    name: str  # --bootloader NAME
    module: str  # vmdebootstrap.bootloaders.<module>
    firmware: str  # the family of the firmware that starts it (architectures.Firmware.family): the boot test's
    esp: bool = False  # boots with UEFI from an EFI system partition (architectures with an Efi record)
    pc_bios: bool = False  # boots through a PC BIOS: only architectures that have one
    bios_grub: bool = False  # on GPT its core image needs a bios_grub partition
    legacy_boot: bool = False  # on GPT it boots the partition marked legacy_boot
    mbr: bool = False  # --mbr: install-mbr's MBR instead of its own
    # Filesystems it cannot boot: the root's (/boot on it) and a separate /boot partition's.
    unbootable_roots: tuple[str, ...] = ()
    unbootable_boots: tuple[str, ...] = ()
    why_not_boot: str = ""  # what to do instead, when the /boot filesystem is one of those


REGISTRY: dict[str, Entry] = {e.name: e for e in (
    Entry("grub-pc", "grub_pc", "bios", pc_bios=True, bios_grub=True),
    Entry("grub-efi", "grub_efi", "uefi", esp=True),
    # extlinux installs into the filesystem that holds /boot (ext2/3/4 here: its btrfs support
    # was never enabled by the old tool, and it cannot read xfs v5 at all).
    Entry("extlinux", "extlinux", "bios", pc_bios=True, legacy_boot=True, mbr=True, unbootable_roots=("btrfs", "xfs"),
          unbootable_boots=("vfat",), why_not_boot="use --grub, or --bootloader u-boot on a board"),
    # u-boot's distro boot reads /boot/extlinux/extlinux.conf (u-boot-menu's) from the partition
    # marked bootable; Debian's u-boot builds read ext2/3/4 and FAT, not btrfs or xfs.
    Entry("u-boot", "u_boot", "u-boot", legacy_boot=True, unbootable_roots=("btrfs", "xfs")),
    # A Raspberry Pi's GPU firmware reads config.txt from its FAT partition (--board raspi-*).
    Entry("raspi", "raspi", "raspi", unbootable_roots=()),
    Entry("none", "none", ""),
)}
NAMES = tuple(REGISTRY)


def chosen_bootloader(bootloader: str, use_uefi: bool, grub: bool, extlinux: bool, arch: Architecture | None) -> str:
    """--bootloader, else what the old options say (--extlinux is on by default, as it was).
    Where there is no PC BIOS, extlinux means the file u-boot reads: /boot/extlinux/extlinux.conf."""
    if bootloader:
        return bootloader
    if use_uefi or grub:
        return "grub-efi" if use_uefi else "grub-pc"
    if not extlinux:
        return "none"
    return "extlinux" if arch is None or arch.pc_bios else "u-boot"
