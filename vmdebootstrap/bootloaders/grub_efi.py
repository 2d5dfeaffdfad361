"""GRUB for UEFI on a disk image (--bootloader grub-efi, the old --use-uefi --grub).

The loaders go onto the ESP both at the Debian path and at the removable-media path
(EFI/BOOT/BOOTX64.EFI, so firmware with empty variables finds it).  The files are put
below /boot/efi and the FAT partition is image from them at the end
(outputs/image.fill_fat), so the ESP is never mounted and no firmware
variable (NVRAM) of the build host is ever touched (grub-install without --no-nvram
would write them).

With Secure Boot (settings.secure_boot) the ESP is what ``grub-install
--uefi-secure-boot --no-nvram --force-extra-removable`` makes from the image's signed
packages: EFI/debian holds shim (signed by Microsoft), GRUB signed by Debian, MokManager,
fallback and a grub.cfg that finds /boot by its UUID; EFI/BOOT holds shim as BOOTX64.EFI
with GRUB and MokManager beside it, but not fallback, which would write a boot entry
into the machine's NVRAM at the first boot.  Without it, GRUB's core image image by
grub-mkimage stands at both paths.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping

from ..architectures import ARCHITECTURES, Architecture, Efi
from ..chroot import target_path
from ..context import Context
from ..disk import Image
from ..errors import BuildError
from ..settings import Settings
from . import grub

log = logging.getLogger("vmdebootstrap")


def _arches(settings: Settings) -> list[Architecture]:
    """The image's own architecture, and with --uefi-ia32 that of 32-bit firmware."""
    assert settings.disk is not None
    companion = [ARCHITECTURES[settings.arch.efi_companion]] if settings.disk.uefi_ia32 else []
    return [settings.arch, *companion]


def packages(settings: Settings) -> list[str]:
    own, *companion = _arches(settings)
    assert own.efi is not None and all(arch.efi for arch in companion)
    signed = list(own.efi.signed_packages) if settings.secure_boot else []
    # The other word size: its modules only (the image boots with its own GRUB).
    return [own.efi.grub_package, *signed, *(arch.efi.grub_modules_package for arch in companion if arch.efi)]


def host_tools(_settings: Settings | None) -> Mapping[str, str]:
    return {}  # GRUB and its tools come from the image


def prepare(_ctx: Context, _image: Image) -> None:
    return None  # its kernel hooks need nothing of it


def install(ctx: Context, image: Image) -> None:
    grub.prepare(ctx, image)
    own, *companion = _arches(ctx.settings)
    if ctx.settings.secure_boot:
        fill_esp_signed(ctx, image, own)
    else:
        if ctx.settings.secure_boot_note:
            log.info("the image boots with unsigned GRUB: %s", ctx.settings.secure_boot_note)
        companion.insert(0, own)
    fill_esp(ctx, image, companion)


def signed_files(efi: Efi) -> dict[str, str]:
    """The files of EFI/debian: name on the ESP -> where the signed packages put it in the image."""
    return {
        **{name: efi.signed_path(name) for name in (efi.shim, efi.grub_name, efi.mokmanager, efi.fallback)},
        efi.fallback_csv: f"/usr/lib/shim/{efi.fallback_csv}",  # what fallback reads (shim-unsigned)
    }


def fill_esp_signed(ctx: Context, image: Image, arch: Architecture) -> None:
    """shim, signed GRUB, MokManager and fallback at the Debian path; shim, GRUB and MokManager
    at the removable path; the image's own files, as grub-install --uefi-secure-boot copies them."""
    efi = arch.efi
    assert efi is not None
    esp = target_path(ctx.root, "/boot/efi")
    debian, removable = esp / "EFI/debian", esp / "EFI/BOOT"
    for directory in (debian, removable):
        directory.mkdir(parents=True, exist_ok=True)
    for name, path in signed_files(efi).items():
        source = target_path(ctx.root, path)
        if source.is_file():
            shutil.copyfile(source, debian / name)
        elif not name.endswith(".CSV"):  # the CSV comes with shim-unsigned, which nothing requires
            raise BuildError(f"the image has no {path} (from {', '.join(efi.signed_packages)})")
    (debian / "grub.cfg").write_text(grub.early_config(image) + "configfile $prefix/grub.cfg\n")
    grub.copy_modules(ctx, efi.grub_platform)  # as grub-install does: for the menu's insmod and later installs
    for name, target in ((efi.shim, efi.removable_name), (efi.grub_name, efi.grub_name),
                         (efi.mokmanager, efi.mokmanager)):
        shutil.copyfile(debian / name, removable / target)
    _keep_removable_path_current(ctx)


def fill_esp(ctx: Context, image: Image, arches: list[Architecture]) -> None:
    """GRUB's core image at the Debian path and the removable-media path of the ESP."""
    esp = target_path(ctx.root, "/boot/efi")
    for arch in arches:
        assert arch.efi is not None
        platform = arch.efi.grub_platform
        binary = grub.make_core_image(ctx, image, platform, f"/boot/grub/{platform}/core.efi", [])
        for target in (esp / "EFI/debian" / arch.efi.grub_name, esp / "EFI/BOOT" / arch.efi.removable_name):
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(binary, target)
    if arches:
        _keep_removable_path_current(ctx)


def removable_path_selections(settings: Settings) -> str:
    """debconf answers that make later upgrades of the image's GRUB packages (grub-efi-amd64,
    grub-efi-ia32, grub-efi-arm64: the architecture record's) keep the removable path current."""
    names = [arch.efi.grub_package for arch in _arches(settings)[:1] if arch.efi]
    return "".join(f"{name} grub2/force_efi_extra_removable boolean true\n" for name in names)


def _keep_removable_path_current(ctx: Context) -> None:
    ctx.runner.run(["debconf-set-selections"], chroot=ctx.root, input=removable_path_selections(ctx.settings))


def finish(_ctx: Context, _image: Image) -> None:
    return None  # everything is in the tree and the gap already
