"""The partition layout of a disk image, computed before anything is written.

Pure arithmetic on the disk request (settings.disk), so every layout is a unit test:

* sizes are exact bytes on MiB boundaries, never parted's default unit (MB);
  ``--bootoffset`` is honoured with or without ``--bootsize``;
* the first partition starts at 1 MiB at least (room for GRUB's core image, #767913);
* ``--swap`` works with every layout;
* on GPT a BIOS-booting GRUB gets a bios_grub partition for its core image, in the
  gap before the first partition and numbered last, so the other partitions keep
  the numbers of the msdos layout;
* the ESP defaults to 256 MiB instead of 5 MiB: room for GRUB for both word sizes
  and firmware updates.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Mapping
from pathlib import Path

from .errors import UsageError

MiB = 1024 * 1024
SECTOR = 512
MIN_SWAP = 256 * MiB  # a smaller swap partition is rounded up to this
MIN_ROOT = 64 * MiB
GPT_RESERVED_SECTORS = 34  # protective MBR, header and 32 sectors of entries (and their backup)
DEFAULT_LABELS = {"root": "root", "boot": "boot", "swap": "swap", "esp": "ESP", "firmware": "firmware"}


@dataclasses.dataclass(frozen=True)
class Request:
    """What --image asks for: the layout options and the bootloader (settings.validate)."""

    size: int = 1_000_000_000
    table: str = "msdos"  # msdos or gpt
    root_fs: str = "ext4"
    boot_size: int = 0  # a separate /boot partition first
    boot_fs: str = ""  # its filesystem ("" without one)
    offset: int = 0  # room before the first partition
    flag: str = ""  # an extra parted flag on partition 1
    swap: int = 0
    esp_size: int = 0  # 0: no EFI system partition
    bootloader: str = "extlinux"  # bootloaders.REGISTRY
    bios_grub: bool = False  # GRUB for BIOS: on GPT its core image gets a bios_grub partition
    legacy_boot: bool = False  # extlinux: on GPT gptmbr.bin boots the partition marked legacy_boot
    uefi_ia32: bool = False
    mbr: bool = False  # extlinux with install-mbr's MBR
    sparse: bool = False
    qcow2: bool = False
    firmware_size: int = 0  # a Raspberry Pi's FAT /boot/firmware partition first (boards.py)
    labels: tuple[tuple[str, str], ...] = ()  # filesystem labels by role; with them fstab names those by label

    def label_of(self, role: str) -> str:
        """The filesystem label of the partition with ``role``: the board's, else the role's own."""
        return dict(self.labels).get(role) or DEFAULT_LABELS.get(role, role)


@dataclasses.dataclass(frozen=True)
class Partition:
    number: int
    role: str  # esp, firmware, boot, root, swap, bios_grub
    start: int  # bytes from the start of the image
    end: int  # bytes, exclusive
    fstype: str  # vfat, ext2, ext3, ext4, btrfs, xfs, swap; '' for bios_grub

    @property
    def size(self) -> int:
        return self.end - self.start

    @property
    def mountpoint(self) -> str:
        return {"esp": "/boot/efi", "firmware": "/boot/firmware", "boot": "/boot", "root": "/"}.get(self.role, "")


@dataclasses.dataclass(frozen=True)
class Layout:
    image_size: int
    label: str  # msdos or gpt
    partitions: tuple[Partition, ...]

    def by_role(self, role: str) -> Partition | None:
        return next((p for p in self.partitions if p.role == role), None)

    @property
    def root(self) -> Partition:
        root = self.by_role("root")
        assert root is not None
        return root

    @property
    def boot_holder(self) -> Partition:
        """The partition whose filesystem holds /boot (the kernel and GRUB's files)."""
        return self.by_role("boot") or self.root


def _mib_up(value: int) -> int:
    return -(-value // MiB) * MiB


def _mib_down(value: int) -> int:
    return value // MiB * MiB


def plan(request: Request) -> Layout:
    """The partitions, in partition-number order.  Raises UsageError if they do not fit."""
    size = request.size // SECTOR * SECTOR
    start = max(MiB, _mib_up(request.offset))
    tail = GPT_RESERVED_SECTORS * SECTOR if request.table == "gpt" else 0
    end = _mib_down(size - tail)
    swap = _mib_up(max(request.swap, MIN_SWAP)) if request.swap else 0

    parts: list[Partition] = []
    position = start
    if request.esp_size:
        parts.append(Partition(1, "esp", position, position + _mib_up(request.esp_size), "vfat"))
    elif request.firmware_size:
        parts.append(Partition(1, "firmware", position, position + _mib_up(request.firmware_size), "vfat"))
    elif request.boot_size:
        parts.append(Partition(1, "boot", position, position + _mib_up(request.boot_size), request.boot_fs))
    position = parts[-1].end if parts else position
    root_end = end - swap
    if root_end - position < MIN_ROOT:
        raise UsageError(
            f"--size {size}: leaves {max(0, root_end - position) // MiB} MiB for the root filesystem "
            f"(at least {MIN_ROOT // MiB} MiB) after the other partitions")
    parts.append(Partition(len(parts) + 1, "root", position, root_end, request.root_fs))
    if swap:
        parts.append(Partition(len(parts) + 1, "swap", root_end, end, "swap"))
    if request.bios_grub and request.table == "gpt":
        # Sectors 34..2047: the gap GPT leaves before the first partition at 1 MiB.
        parts.append(Partition(len(parts) + 1, "bios_grub", GPT_RESERVED_SECTORS * SECTOR, MiB, ""))
    return Layout(size, request.table, tuple(parts))


# parted's file-system hint only chooses the partition type (msdos id or GPT GUID).
_PARTED_FS_HINT = {"vfat": "fat32", "swap": "linux-swap", "ext2": "ext2", "ext3": "ext2", "ext4": "ext2",
                   "btrfs": "btrfs", "xfs": "xfs", "": ""}  # fmt: skip


def parted_script(layout: Layout, bootflag: str = "", legacy_boot: bool = False) -> list[str]:
    """parted commands (after ``parted --script --align none IMAGE``), in sectors."""
    script = ["unit", "s", "mklabel", layout.label]
    for part in layout.partitions:
        name = "primary" if layout.label == "msdos" else part.role
        hint = _PARTED_FS_HINT.get(part.fstype, "")
        script += ["mkpart", name, *([hint] if hint else []), f"{part.start // SECTOR}s",
                   f"{part.end // SECTOR - 1}s"]
    first = layout.partitions[0]
    if first.role == "esp":
        script += ["set", "1", "esp", "on"]
    if layout.label == "msdos":
        script += ["set", str(layout.boot_holder.number if first.role != "esp" else 1), "boot", "on"]
    elif legacy_boot:
        # gptmbr.bin (extlinux on GPT) boots the partition with this attribute.
        script += ["set", str(layout.boot_holder.number), "legacy_boot", "on"]
    grub_part = layout.by_role("bios_grub")
    if grub_part:
        script += ["set", str(grub_part.number), "bios_grub", "on"]
    if bootflag:
        script += ["set", "1", bootflag, "on"]
    return script


def fstab(layout: Layout, uuids: Mapping[str, str], labels: Mapping[str, str] | None = None) -> str:
    """fstab with every partition by UUID (device names change between machines), or by the
    board's labels where it has them (a Raspberry Pi's, as https://raspi.debian.net's images)."""
    by = "label" if labels else "UUID"
    lines = [f"# /etc/fstab: written by vmdebootstrap; every partition by its {by}",
             "# <file system>\t<mount point>\t<type>\t<options>\t<dump>\t<pass>"]
    for part in sorted(layout.partitions, key=lambda p: (len(p.mountpoint) or 99, p.number)):
        spec = f"LABEL={labels[part.role]}" if labels and part.role in labels else f"UUID={uuids.get(part.role, '')}"
        if part.role == "swap":
            lines.append(f"{spec}\tnone\tswap\tsw\t0\t0")
        elif part.role == "esp":
            # nofail: the system runs without its ESP (only bootloader updates need it), and a
            # slow device (seen under emulation on a loaded host) must not mean emergency mode.
            lines.append(f"{spec}\t/boot/efi\tvfat\tumask=0077,nofail,x-systemd.device-timeout=5min\t0\t1")
        elif part.mountpoint:
            options = "errors=remount-ro" if part.fstype.startswith("ext") else "defaults"
            passno = 0 if part.fstype in ("btrfs", "xfs") else (1 if part.role == "root" else 2)
            lines.append(f"{spec}\t{part.mountpoint}\t{part.fstype}\t{options}\t0\t{passno}")
    return "\n".join(lines) + "\n"


@dataclasses.dataclass
class Image:
    """The disk image being written: its layout and the identifiers chosen for it."""

    request: Request
    layout: Layout
    raw: Path  # the raw image being written (a partial name beside the output)
    final: Path  # where the image is published
    uuids: dict[str, str]  # filesystem UUIDs (FAT: volume ids) by partition role
    part_uuids: dict[str, str]  # partition GUIDs by role (GPT); msdos: <disk id>-<number>
    disk_id: str  # the GPT disk GUID, or the MBR disk identifier (0x........)
    stack: contextlib.ExitStack  # what finishing the image mounts or attaches, closed with it or on failure
