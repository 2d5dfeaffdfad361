"""GRUB for UEFI on a disk image (--bootloader grub-efi, the old --use-uefi --grub).

The core image goes onto the ESP both at the Debian path and at the removable-media
path (EFI/BOOT/BOOTX64.EFI, so firmware with empty variables finds it).  The files are
put below /boot/efi and the FAT partition is made from them at the end
(outputs/image.copy_fat_partitions), so the ESP is never mounted and no firmware
variable (NVRAM) of the build host is ever touched (grub-install without --no-nvram
would write them).
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping

from ..architectures import ARCHITECTURES, Architecture
from ..chroot import target_path
from ..context import Context
from ..disk import Image
from ..settings import Settings
from . import grub


def _arches(settings: Settings) -> list[Architecture]:
    """The image's own architecture, and with --uefi-ia32 that of 32-bit firmware."""
    assert settings.disk is not None
    companion = [ARCHITECTURES[settings.arch.efi_companion]] if settings.disk.uefi_ia32 else []
    return [settings.arch, *companion]


def packages(settings: Settings) -> list[str]:
    own, *companion = _arches(settings)
    assert own.efi is not None and all(arch.efi for arch in companion)
    # The other word size: its modules only (the image boots with its own GRUB).
    return [own.efi.grub_package, *(arch.efi.grub_modules_package for arch in companion if arch.efi)]


def host_tools(_settings: Settings | None) -> Mapping[str, str]:
    return {}  # GRUB and its tools come from the image


def install(ctx: Context, made: Image) -> None:
    grub.prepare(ctx, made)
    fill_esp(ctx, made, _arches(ctx.settings))


def fill_esp(ctx: Context, made: Image, arches: list[Architecture]) -> None:
    """GRUB at the Debian path and the removable-media path of the ESP (written into the
    FAT partition at the end: image.copy_fat_partitions)."""
    esp = target_path(ctx.root, "/boot/efi")
    for arch in arches:
        assert arch.efi is not None
        platform = arch.efi.grub_platform
        binary = grub.make_core_image(ctx, made, platform, f"/boot/grub/{platform}/core.efi", [])
        for target in (esp / "EFI/debian" / arch.efi.grub_name, esp / "EFI/BOOT" / arch.efi.removable_name):
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(binary, target)
    # Later upgrades of grub-efi in the booted system keep the removable path current.
    ctx.runner.run(["debconf-set-selections"], chroot=ctx.root,
                   input="grub-efi-amd64 grub2/force_efi_extra_removable boolean true\n"
                         "grub-efi-arm64 grub2/force_efi_extra_removable boolean true\n")
