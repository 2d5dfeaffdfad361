"""GRUB for BIOS on a disk image (--bootloader grub-pc, the old --grub).

boot.img goes into the MBR (the partition table kept) and core.img into the gap before
the first partition (msdos) or into the bios_grub partition (GPT).
"""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Mapping

from ..chroot import target_path
from ..context import Context
from ..disk import Image
from ..errors import BuildError
from ..settings import Settings
from . import grub

log = logging.getLogger("vmdebootstrap")

SECTOR = 512
# <grub/i386/pc/boot.h>: fields of boot.img, and the blocklist at the end of core.img's first sector.
BOOT_KERNEL_SECTOR = 0x5C
BOOT_DRIVE_CHECK = 0x66
MBR_CODE_END = 0x1B8  # disk signature and partition table follow: kept
CORE_BLOCKLIST = SECTOR - 12  # start (u64), length (u16), segment (u16)


def packages(_settings: Settings) -> list[str]:
    return ["grub-pc"]  # on a PC: its registry entry (pc_bios) has validation refuse the others


def host_tools(_settings: Settings | None) -> Mapping[str, str]:
    return {}  # GRUB and its tools come from the image


def prepare(_ctx: Context, _image: Image) -> None:
    return None  # its kernel hooks need nothing of it


def install(ctx: Context, image: Image) -> None:
    grub.prepare(ctx, image)
    install_grub_bios(ctx, image)


def install_grub_bios(ctx: Context, image: Image) -> None:
    core_path = grub.make_core_image(ctx, image, "i386-pc", "/boot/grub/i386-pc/core.img", ["biosdisk"])
    core = bytearray(core_path.read_bytes())
    boot = bytearray(target_path(ctx.root, "/usr/lib/grub/i386-pc/boot.img").read_bytes())
    grub_part = image.layout.by_role("bios_grub")
    if grub_part is not None:
        first, room = grub_part.start // SECTOR, grub_part.size
    else:  # msdos: the gap between the MBR and the first partition
        first, room = 1, image.layout.partitions[0].start - SECTOR
    if len(core) > room:
        raise BuildError(f"GRUB's core image ({len(core)} bytes) does not fit into the {room} bytes before "
                         "the first partition")
    sectors = -(-len(core) // SECTOR)
    core += bytes(sectors * SECTOR - len(core))
    # diskboot.img (core.img's first sector) loads the rest from the sectors after it.
    struct.pack_into("<QH", core, CORE_BLOCKLIST, first + 1, sectors - 1)
    struct.pack_into("<Q", boot, BOOT_KERNEL_SECTOR, first)
    boot[BOOT_DRIVE_CHECK:BOOT_DRIVE_CHECK + 2] = b"\x90\x90"  # use the drive the BIOS booted (as grub-setup)
    with open(image.raw, "r+b") as stream:
        os.pwrite(stream.fileno(), bytes(boot[:MBR_CODE_END]), 0)
        os.pwrite(stream.fileno(), bytes(core), first * SECTOR)
        os.fsync(stream.fileno())
    log.info("GRUB for BIOS: boot.img in the MBR, core.img (%d sectors) from sector %d", sectors, first)


def finish(_ctx: Context, _image: Image) -> None:
    return None  # everything is in the tree and the gap already
