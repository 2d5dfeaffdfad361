"""A disk image's request from the options: its layout, its bootloader and the board's."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from . import boards, bootloaders, disk, values
from .architectures import Architecture
from .bootloaders import chosen_bootloader
from .errors import UsageError
from .parsed import Parsed

# parted's partition flags (parted(8), "set").
PARTED_FLAGS = ("boot", "root", "swap", "hidden", "raid", "lvm", "lba", "legacy_boot", "irst", "esp", "palo",
                "bios_grub", "msftres", "msftdata", "prep", "diag", "chromeos_kernel", "bls_boot")


def disk_request(v: Parsed, arch: Architecture) -> disk.Request:
    """The disk image's layout and bootloader; raises when they do not go together or do not fit."""
    bootloader = chosen_bootloader(v.text("bootloader"), v.flag("use-uefi"), v.flag("grub"), v.flag("extlinux"), arch)
    if bootloader not in bootloaders.REGISTRY:
        raise UsageError(f"--bootloader {bootloader}: use one of {', '.join(bootloaders.NAMES)}")
    entry = bootloaders.REGISTRY[bootloader]
    board = boards.BOARDS.get(v.text("board"))
    if entry.name == "raspi" and (board is None or not board.firmware_partition):
        raise UsageError("--bootloader raspi is a Raspberry Pi's: give --board " + " or ".join(
            b.name for b in boards.BOARDS.values() if b.bootloader == "raspi"))
    boot_fs = v.text("boottype") if v.number("bootsize") else ""
    if v.text("bootflag") and v.text("bootflag") not in PARTED_FLAGS:
        raise UsageError(f"--bootflag {v.text('bootflag')}: not a parted flag ({', '.join(PARTED_FLAGS)})")
    _check_bootloader(entry, arch, v.text("roottype"), boot_fs, v.flag("mbr"))
    if v.flag("uefi-ia32") and not (entry.esp and arch.efi_companion):
        raise UsageError("--uefi-ia32 adds 32-bit UEFI GRUB to an amd64 --use-uefi image")
    request = disk.Request(
        size=v.number("size"), table=v.text("part-type"), root_fs=v.text("roottype"),
        boot_size=v.number("bootsize"), boot_fs=boot_fs, offset=v.number("bootoffset"), flag=v.text("bootflag"),
        swap=v.number("swap"), esp_size=v.number("esp-size") if entry.esp else 0, bootloader=bootloader,
        bios_grub=entry.bios_grub and arch.pc_bios, legacy_boot=entry.legacy_boot, uefi_ia32=v.flag("uefi-ia32"),
        mbr=v.flag("mbr"), sparse=v.flag("sparse"),
        firmware_size=board.firmware_partition if board else 0, labels=board.labels if board else (),
        # The old tool wrote raw bytes into a FILE.qcow2 without --convert-qcow2; the name says qcow2.
        qcow2=v.flag("convert-qcow2") or v.get("image", Path).suffix == ".qcow2",
    )
    disk.plan(request)  # raises when the partitions do not fit
    return request


def _check_bootloader(entry: bootloaders.Entry, arch: Architecture, root_fs: str, boot_fs: str, mbr: bool) -> None:
    """What the bootloader's registry entry says it cannot do (bootloaders/__init__.py)."""
    if entry.pc_bios and not arch.pc_bios:
        raise UsageError(f"--bootloader {entry.name} boots through a PC BIOS: {arch.name} has none")
    if root_fs in entry.unbootable_roots:
        raise UsageError(f"{entry.name} cannot boot from {root_fs}. Use grub.")
    if boot_fs in entry.unbootable_boots:
        raise UsageError(f"{entry.name} installs into the /boot filesystem, not {boot_fs}: {entry.why_not_boot}")
    if mbr and not entry.mbr:
        takers = " or ".join(e.name for e in bootloaders.REGISTRY.values() if e.mbr)
        raise UsageError(f"--mbr writes an MBR for {takers}; {entry.name} writes its own")


def serial_port(v: Parsed, arch: Architecture) -> str:
    """--serial-port (at 115200n8 unless it says), else the board's, else the architecture's first port."""
    given = v.text("serial-port")
    if given:
        return given if "," in given else f"{given},115200n8"
    board = boards.BOARDS.get(v.text("board"))
    return board.console if board is not None else f"{arch.serial_console},115200n8"


def with_board(raw: Mapping[str, object]) -> Mapping[str, object]:
    """The options --board sets where nothing else set them; what contradicts it is refused."""
    board = boards.BOARDS.get(str(raw["board"] or ""))
    if board is None:
        return raw
    name = f"--board {board.name}"
    if not raw["image"]:
        raise UsageError(f"{name} makes a disk image for the board: give --image FILE")
    if raw["arch"] and raw["arch"] != board.arch:
        raise UsageError(f"{name} is an {board.arch} board: drop --arch {raw['arch']}")
    if (raw["bootloader"] and raw["bootloader"] != board.bootloader) or raw["grub"] or raw["use-uefi"]:
        raise UsageError(f"{name} boots with {board.bootloader}: drop --bootloader, --grub and --use-uefi")
    if raw["part-type"] == "gpt" and not board.gpt:
        raise UsageError(f"--part-type gpt: {board.name}'s u-boot lies where a GPT's partition entries would be: "
                         "use msdos")
    if board.firmware_partition and raw["bootsize"]:
        raise UsageError(f"--bootsize: {board.name}'s kernel is on its firmware partition (/boot/firmware)")
    components = values.strings(raw["components"])
    offset = values.number(raw["bootoffset"])
    return {**raw, "arch": board.arch, "bootloader": board.bootloader, "bootoffset": max(offset, board.first_partition),
            "components": [*components, *(c for c in board.components if c not in components)]}
