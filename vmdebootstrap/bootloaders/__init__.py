"""The bootloaders of disk images: one module each, behind one small interface.

A bootloader is chosen once, in settings.validate (``--bootloader``, or the old
``--grub``/``--use-uefi``/``--extlinux``), and only its module is loaded.  Each module
provides what ``loader.Bootloader`` lists.  This registry is plain data, read by the
option table and settings.validate before any module is loaded (the partition layout
depends on it); a new bootloader is one module here and one entry in ``REGISTRY``.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Entry:
    name: str  # --bootloader NAME
    module: str  # vmdebootstrap.bootloaders.<module>
    esp: bool = False  # boots with UEFI from an EFI system partition
    bios_grub: bool = False  # on GPT its core image needs a bios_grub partition
    legacy_boot: bool = False  # on GPT it boots the partition marked legacy_boot


REGISTRY: dict[str, Entry] = {e.name: e for e in (
    Entry("grub-pc", "grub_pc", bios_grub=True),
    Entry("grub-efi", "grub_efi", esp=True),
    Entry("extlinux", "extlinux", legacy_boot=True),
    Entry("none", "none"),
)}
NAMES = tuple(REGISTRY)
