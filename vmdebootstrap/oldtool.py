"""The old tool's checks, in its order and words (vmdebootstrap-features.md §1.3): applied to
the raw option values before they are parsed, so that its command lines fail as they did."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from . import architectures, bootloaders, releases
from .bootloaders import chosen_bootloader
from .errors import UsageError
from .options import BY_NAME, OUTPUTS
from .releases import Release

MIN_IMAGE_SIZE = 100_000_000  # bytes; #811464
OLD_DEFAULT_ESP_SIZE = 5 * 1024 * 1024


def check_as_the_old_tool(raw: Mapping[str, object], ask: releases.MirrorAnswer | None) -> Release:
    """The old tool's checks of the outputs and the release; returns the release."""
    image, tarball, squash, iso = (str(raw[name]) for name in ("image", "tarball", "squash", "iso"))
    if squash and image:
        raise UsageError("--image can no longer be used with --squash")
    if not any(raw[option.name] for option in OUTPUTS):  # the old tool's words name the old tool's kinds
        raise UsageError("You must give disk image filename or use either a tarball filename or use squash")
    if int(str(raw["size"])) <= MIN_IMAGE_SIZE:
        raise UsageError(f"A size of {raw['size']} bytes is too small for a bootstrap.")
    dist = str(raw["distribution"])
    if not _bootstrappable(dist, Path(str(raw["debootstrap-scripts"]))):
        raise UsageError(f"{dist} is not a valid debootstrap codename.")
    release = releases.resolve(dist, str(raw["distribution-like"]), ask)
    if raw["apt-mirror"] and not raw["configure-apt"]:
        raise UsageError("--apt-mirror requires --configure-apt as well.")
    if raw["convert-qcow2"] and not image:
        raise UsageError("--convert-qcow2 can only be used with --image.")
    if image and tarball:
        raise UsageError("Use --image or --tarball, not both.")
    if squash and tarball:
        raise UsageError("Use --squash or --tarball, not both.")
    if iso and (tarball or image):
        raise UsageError(f"Use --iso or {'--tarball' if tarball else '--image'}, not both.")
    if release.systemd and not raw["systemd-networkd"] and not raw["update-initramfs"]:
        raise UsageError("Disabling systemd-networkd for jessie and later requires updating the initramfs.")
    if not release.ext4_boots and image and raw["roottype"] == "ext4":
        raise UsageError(
            "Wheezy images using ext4 will not be able to boot. Please use --roottype ext2 or --roottype ext3")
    arch = architectures.ARCHITECTURES.get(str(raw["arch"])) if raw["arch"] else architectures.host()
    loader = bootloaders.REGISTRY.get(chosen_bootloader(str(raw["bootloader"] or ""), bool(raw["use-uefi"]),
                                                        bool(raw["grub"]), bool(raw["extlinux"]), arch))
    if image and raw["roottype"] == "btrfs" and loader and "btrfs" in loader.unbootable_roots:
        raise UsageError(f"{loader.name} is not yet supported on btrfs. Use grub.")
    return release


def _bootstrappable(dist: str, scripts: Path) -> bool:
    """debootstrap has a script for ``dist``, or it is a release newer than all it has scripts for."""
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]*$", dist):
        return False
    if (scripts / dist).is_file():
        return True
    name = releases.codename(dist)
    return name in releases.known() and releases.debootstrap_script(scripts, releases.get(name)) is not None


def check_uefi_as_the_old_tool(raw: Mapping[str, object], release: Release) -> None:
    arch = architectures.ARCHITECTURES.get(str(raw["arch"])) if raw["arch"] else architectures.host()
    arch_name = str(raw["arch"]) or (arch.name if arch else "")
    # The old default (5 MiB) still appears in dumped old configurations: not an error.
    if raw["esp-size"] not in (BY_NAME["esp-size"].default, OLD_DEFAULT_ESP_SIZE) and not raw["use-uefi"]:
        raise UsageError("You must specify use-uefi for esp-size to have effect")
    if not raw["use-uefi"]:
        return
    if arch is None or arch.efi is None:
        raise UsageError(f"{arch_name} is not a supported UEFI architecture")
    if raw["bootsize"] or raw["bootoffset"]:
        raise UsageError("A separate boot partition is not supported with UEFI")
    if not raw["grub"]:
        raise UsageError("UEFI without Grub is not supported.")
    if release.uefi_arches is not None and arch_name not in release.uefi_arches:
        raise UsageError(f"Only {' and '.join(release.uefi_arches)} supports UEFI in {release.name.capitalize()}")
