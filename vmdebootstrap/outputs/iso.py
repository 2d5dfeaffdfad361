"""Output "iso": a bootable hybrid live ISO, laid out as Debian's own live images are.

Reads: ctx.live_files (the squashfs step's), the boot files the finish step unpacked from
the release (GRUB's EFI modules or signed images, ISOLINUX).  Writes: the ISO under its
partial name; its tree in the work directory.  Undoes: nothing.

    /live/filesystem.squashfs, vmlinuz, initrd.img, filesystem.packages
    /isolinux/...            BIOS El Torito entry (ISOLINUX; amd64 and i386)
    /boot/grub/efi.img       UEFI El Torito entry: a FAT ESP with GRUB's EFI binary
    /boot/grub/grub.cfg      GRUB's menu (UEFI)
    /EFI/boot/boot*.efi      the same binary, for sticks whose files are copied

xorriso writes an isohybrid MBR and a GPT that marks the ESP (-isohybrid-gpt-basdat)
so that ``dd`` to a USB stick boots on BIOS and UEFI machines, like Debian's ISOs
(check with ``xorriso -indev X -report_el_torito plain``).  arm64 gets a UEFI-only
ISO with the ESP appended as a GPT partition.

Every file the ISO boots with comes from the image's own release (``apt-get download``
inside the target by the finish step, unpacked into the work directory, never installed
in the image), as the build's SBOM lists them: GRUB's EFI modules or signed images, and
ISOLINUX, its MBR and modules (isolinux, syslinux-common); a Debian 12 and a Debian 13
host make the same ISO.  Only ``grub-mkimage`` runs on the host, without Secure Boot (it
assembles the release's modules into the GRUB image).  With Secure Boot (the
default where the release has the signed chain for the architecture) EFI/BOOT holds
shim, signed by Microsoft, and the GRUB image Debian signs for CDs instead, from the
release's shim-signed, shim-helpers-*-signed and grub-efi-*-signed (docs/secureboot.md).
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from .. import identity, reproducible
from ..context import Context
from ..errors import BuildError
from ..settings import Settings
from . import offline

log = logging.getLogger("vmdebootstrap")

NAME = "iso"
STEP = "iso"

# Where the release's isolinux and syslinux-common put them (below ctx.downloads).
ISOLINUX_DIR = "usr/lib/ISOLINUX"
SYSLINUX_MODULES = "usr/lib/syslinux/modules/bios"
ISOLINUX_MODULES = ("ldlinux.c32", "menu.c32", "libutil.c32", "libcom32.c32")
ISOLINUX_PACKAGES = ("isolinux", "syslinux-common")

GRUB_MODULES = (
    "iso9660", "fat", "part_gpt", "part_msdos", "normal", "configfile", "linux", "search",
    "search_fs_file", "search_label", "echo", "test", "serial", "terminal", "efi_gop", "all_video",
    "gfxterm", "sleep", "ls", "cat", "reboot", "halt",
)  # fmt: skip
# Host tools the ISO needs; grub-mkimage only without Secure Boot.
TOOLS = {"xorriso": "xorriso", "mkfs.fat": "dosfstools", "mcopy": "mtools", "mmd": "mtools",
         **offline.TOOLS}  # fmt: skip
UNSIGNED_TOOLS = {"grub-mkimage": "grub-common"}


def wanted(settings: Settings) -> bool:
    return NAME in settings.outputs


def note(ctx: Context) -> str:
    return f" ({ctx.settings.outputs[NAME]})"


def stem(final: Path) -> Path:
    return final


def packages(_settings: Settings) -> list[str]:
    return ["live-boot"]  # its initramfs hook mounts the squashfs at boot


def downloads(settings: Settings) -> list[str]:
    efi = settings.arch.efi
    assert efi is not None  # validation refuses --iso for other architectures
    bios = ISOLINUX_PACKAGES if settings.arch.pc_bios else ()
    return [efi.grub_modules_package, *(efi.signed_packages if settings.secure_boot else ()), *bios]


def host_tools(settings: Settings | None) -> Mapping[str, str]:
    unsigned = settings is None or not settings.secure_boot
    return {**TOOLS, **(UNSIGNED_TOOLS if unsigned else {})}


def boot_parameters(ctx: Context) -> str:
    extra = ctx.settings.kernel_append
    return "boot=live components" + (f" {extra}" if extra else "")


def menu_entries(ctx: Context) -> list[tuple[str, str]]:
    """(title, kernel parameters): the live system, the same on a serial console, and toram."""
    settings = ctx.settings
    name = f"Debian live ({settings.release} {settings.arch.name})"
    params = boot_parameters(ctx)
    return [
        (name, params),
        (f"{name}, serial console", f"{params} console=tty0 console={settings.serial_port}"),
        (f"{name}, copied to RAM (toram)", f"{params} toram"),
    ]


def grub_cfg(ctx: Context) -> str:
    lines = [
        "set default=0",
        "set timeout=5",
        # Menus on the serial line too: headless machines and the boot test use it.
        "serial --unit=0 --speed=115200",
        "terminal_input console serial",
        "terminal_output console serial",
        "insmod all_video",
        "",
    ]
    for title, params in menu_entries(ctx):
        lines += [
            f'menuentry "{title}" {{',
            f"    linux /live/vmlinuz {params}",
            "    initrd /live/initrd.img",
            "}",
        ]
    return "\n".join(lines) + "\n"


def isolinux_cfg(ctx: Context) -> str:
    lines = [
        "SERIAL 0 115200",
        "UI menu.c32",
        "PROMPT 0",
        "TIMEOUT 50",
        f"MENU TITLE Debian live ({ctx.settings.release} {ctx.settings.arch.name})",
        "",
    ]
    for number, (title, params) in enumerate(menu_entries(ctx)):
        lines += [
            f"LABEL live{number}",
            f"  MENU LABEL {title}",
            "  KERNEL /live/vmlinuz",
            f"  APPEND initrd=/live/initrd.img {params}",
            "",
        ]
    return "\n".join(lines)


def label(ctx: Context) -> str:
    chosen = ctx.settings.iso_label
    return chosen or f"DEBIAN_LIVE_{ctx.settings.release}_{ctx.settings.arch.name}".upper()[:32]


def early_config(marker: str) -> str:
    """Find the ISO (or the stick it was copied to) by a file unique to this build, and its menu."""
    return f"search --no-floppy --set=root --file {marker}\nset prefix=($root)/boot/grub\nconfigfile $prefix/grub.cfg\n"


def unsigned_loaders(ctx: Context, marker: str) -> dict[str, Path]:
    """GRUB made by grub-mkimage from the release's modules, with the early config built in."""
    efi = ctx.settings.arch.efi
    assert efi is not None
    modules = ctx.downloads / "usr/lib/grub" / efi.grub_platform
    if not modules.is_dir():
        raise BuildError(f"GRUB's {efi.grub_platform} modules were not found in {efi.grub_modules_package}")
    early = ctx.workdir / "grub-early.cfg"
    early.write_text(early_config(marker))
    binary = ctx.workdir / efi.removable_name
    available = [m for m in GRUB_MODULES if (modules / f"{m}.mod").exists()]
    ctx.runner.run(["grub-mkimage", "-O", efi.grub_platform, "-d", os.fspath(modules), "-p", "/boot/grub",
                    "-c", os.fspath(early), "-o", os.fspath(binary), *available])
    return {efi.removable_name: binary}


def signed_loaders(ctx: Context) -> dict[str, Path]:
    """shim (Microsoft's signature) as the removable-media loader, beside it the GRUB image Debian
    signs for CDs, which shim starts by its name, and MokManager.  The GRUB image reads
    (its device)/boot/grub/grub.cfg: the ISO's menu from a CD, the early config on efi.img
    from a stick (Debian's grub2 debian/build-efi-images, docs/secureboot.md)."""
    efi = ctx.settings.arch.efi
    assert efi is not None
    # shim starts grub<suffix>.efi beside it: that name, with the CD image's contents.
    files = {name: ctx.downloads / efi.signed_path(signed).lstrip("/")
             for name, signed in ((efi.removable_name, efi.shim), (efi.grub_name, efi.cd_grub),
                                  (efi.mokmanager, efi.mokmanager))}
    for name, path in files.items():
        if not path.is_file():
            raise BuildError(f"{path.name} for EFI/BOOT/{name} was not found in {', '.join(efi.signed_packages)}")
    return files


def make_efi_image(ctx: Context, tree: Path, marker: str) -> None:
    """EFI/BOOT's loaders in the ISO tree and in efi.img, the FAT image El Torito and the hybrid
    GPT point at; with the signed chain, efi.img also holds the early config."""
    settings = ctx.settings
    loaders = signed_loaders(ctx) if settings.secure_boot else unsigned_loaders(ctx, marker)
    if settings.secure_boot_note:
        log.info("the ISO boots with unsigned GRUB: %s", settings.secure_boot_note)
    efi_boot = tree / "EFI/boot"
    efi_boot.mkdir(parents=True)
    for name, path in loaders.items():
        shutil.copyfile(path, efi_boot / name.lower())
    image = tree / "boot/grub/efi.img"
    kib = sum(path.stat().st_size for path in loaders.values()) // 1024 + 1024
    kib += (-kib) % 1024  # whole MiB
    volume_id = identity.hex_for(settings.seed, "iso:efi.img", 8)
    ctx.runner.run(["mkfs.fat", "-C", "--invariant", "-i", volume_id, "-n", "ESP", os.fspath(image), str(kib)])
    ctx.runner.run(["mmd", "-i", os.fspath(image), "::/EFI", "::/EFI/BOOT"])
    for name, path in loaders.items():
        ctx.runner.run(["mcopy", "-i", os.fspath(image), os.fspath(path), f"::/EFI/BOOT/{name}"])
    if settings.secure_boot:
        early = ctx.workdir / "efi-grub.cfg"
        early.write_text(early_config(marker))
        ctx.runner.run(["mmd", "-i", os.fspath(image), "::/boot", "::/boot/grub"])
        ctx.runner.run(["mcopy", "-i", os.fspath(image), os.fspath(early), "::/boot/grub/grub.cfg"])


def make_isolinux(ctx: Context, tree: Path) -> None:
    """ISOLINUX and its modules, the release's (syslinux's ldlinux.c32 must match its isolinux.bin)."""
    directory = tree / "isolinux"
    directory.mkdir()
    sources = {"isolinux.bin": ctx.downloads / ISOLINUX_DIR / "isolinux.bin",
               **{module: ctx.downloads / SYSLINUX_MODULES / module for module in ISOLINUX_MODULES}}
    for name, source in sources.items():
        if not source.is_file():
            raise BuildError(f"{source.name} was not found in {' or '.join(ISOLINUX_PACKAGES)} of "
                             f"{ctx.settings.release}")
        shutil.copy2(source, directory / name)
    (directory / "isolinux.cfg").write_text(isolinux_cfg(ctx))


def xorriso_argv(ctx: Context, tree: Path, output: Path, grafts: dict[str, Path]) -> list[str]:
    argv = [
        "xorriso", "-as", "mkisofs", "-o", os.fspath(output), "-V", label(ctx),
        "-r", "-J", "-joliet-long", "-iso-level", "3",
    ]  # fmt: skip
    if ctx.settings.arch.pc_bios:
        argv += [
            "-isohybrid-mbr", os.fspath(ctx.downloads / ISOLINUX_DIR / "isohdpfx.bin"),
            "-b", "isolinux/isolinux.bin", "-c", "isolinux/boot.cat",
            "-no-emul-boot", "-boot-load-size", "4", "-boot-info-table",
            "-eltorito-alt-boot", "-e", "boot/grub/efi.img", "-no-emul-boot", "-isohybrid-gpt-basdat",
        ]  # fmt: skip
    else:
        argv += [
            "-e", "boot/grub/efi.img", "-no-emul-boot",
            "-append_partition", "2", "0xef", os.fspath(tree / "boot/grub/efi.img"), "-appended_part_as_gpt",
        ]  # fmt: skip
    argv += ["-graft-points", os.fspath(tree)]
    argv += [f"{inside}={os.fspath(path)}" for inside, path in grafts.items()]
    return argv


def run(ctx: Context) -> None:
    """Assemble the ISO from the live files (squashfs, vmlinuz, initrd.img, manifest)."""
    live_files = ctx.live_files
    for needed in ("vmlinuz", "initrd.img", "filesystem.squashfs"):
        if needed not in live_files:
            raise BuildError(f"no {needed} for the ISO: a live ISO needs a kernel and an initrd "
                             "(do not combine --iso with --no-kernel)")
    final = ctx.settings.outputs[NAME]
    ctx.outputs.directory(final.parent)
    tree = ctx.workdir / "iso"
    (tree / "boot/grub").mkdir(parents=True)
    marker = f"/.disk/vmdebootstrap-{identity.hex_for(ctx.settings.seed, 'iso:marker', 32)}"
    (tree / ".disk").mkdir()
    (tree / marker.lstrip("/")).write_text("")
    (tree / ".disk/info").write_text(f"Debian live {ctx.settings.release} {ctx.settings.arch.name}, "
                                     "built by vmdebootstrap\n")
    (tree / "boot/grub/grub.cfg").write_text(grub_cfg(ctx))
    make_efi_image(ctx, tree, marker)
    if ctx.settings.arch.pc_bios:
        make_isolinux(ctx, tree)
    if (ctx.workdir / offline.DEBS).is_dir():
        offline.write(ctx, tree)
    grafts = {f"live/{name}": path for name, path in live_files.items()}
    # A directory of its own: one that xorriso makes for the grafts is dated now, not by the epoch.
    (tree / "live").mkdir()
    if ctx.epoch is not None:  # xorriso takes the files' mtimes (SOURCE_DATE_EPOCH: all dates from them)
        reproducible.clamp_mtimes(tree, ctx.epoch)
        for path in grafts.values():
            os.utime(path, (ctx.epoch, ctx.epoch))
    output = ctx.outputs.partial(final)
    ctx.runner.run(xorriso_argv(ctx, tree, output, grafts))
    verify(ctx, output)


def verify(ctx: Context, iso: Path) -> None:
    report = ctx.runner.run(["xorriso", "-indev", os.fspath(iso), "-report_el_torito", "plain"],
                            capture=True).output
    entries = ["UEFI"] + (["BIOS"] if ctx.settings.arch.pc_bios else [])
    for platform in entries:
        if not any("El Torito boot img" in line and platform in line for line in report.splitlines()):
            raise BuildError(f"{iso} has no {platform} El Torito boot entry (xorriso -report_el_torito)")
