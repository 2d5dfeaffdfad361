"""A bootable hybrid live ISO, laid out as Debian's own live images are.

    /live/filesystem.squashfs, vmlinuz, initrd.img, filesystem.packages
    /isolinux/...            BIOS El Torito entry (ISOLINUX; amd64 and i386)
    /boot/grub/efi.img       UEFI El Torito entry: a FAT ESP with GRUB's EFI binary
    /boot/grub/grub.cfg      GRUB's menu (UEFI)
    /EFI/boot/boot*.efi      the same binary, for sticks whose files are copied

xorriso writes an isohybrid MBR and a GPT that marks the ESP (-isohybrid-gpt-basdat)
so that ``dd`` to a USB stick boots on BIOS and UEFI machines, like Debian's ISOs
(check with ``xorriso -indev X -report_el_torito plain``).  arm64 gets a UEFI-only
ISO with the ESP appended as a GPT partition.

GRUB's EFI modules come from the image's own release (``apt-get download`` inside
the target, unpacked into the work directory, never installed in the image);
``grub-mkimage`` and ISOLINUX come from the host.  Secure Boot (shim) is not done.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from pathlib import Path

from .. import debian
from ..context import Context
from ..errors import BuildError
from ..publish import Staging

log = logging.getLogger("vmdebootstrap")

ISOLINUX_DIR = Path("/usr/lib/ISOLINUX")
SYSLINUX_MODULES = Path("/usr/lib/syslinux/modules/bios")
ISOLINUX_MODULES = ("ldlinux.c32", "menu.c32", "libutil.c32", "libcom32.c32")

# arch -> (GRUB package in the target's release, GRUB platform, removable-media file name)
GRUB_EFI = {
    "amd64": ("grub-efi-amd64-bin", "x86_64-efi", "BOOTX64.EFI"),
    "i386": ("grub-efi-ia32-bin", "i386-efi", "BOOTIA32.EFI"),
    "arm64": ("grub-efi-arm64-bin", "arm64-efi", "BOOTAA64.EFI"),
}
BIOS_ARCHES = ("amd64", "i386")
# The serial console a live system on this architecture has (QEMU virt's PL011 on arm64).
GRUB_MODULES = (
    "iso9660", "fat", "part_gpt", "part_msdos", "normal", "configfile", "linux", "search",
    "search_fs_file", "search_label", "echo", "test", "serial", "terminal", "efi_gop", "all_video",
    "gfxterm", "sleep", "ls", "cat", "reboot", "halt",
)  # fmt: skip
STAGE_DIR = "tmp/vmdebootstrap-grub"


def supported(arch: str) -> bool:
    return arch in GRUB_EFI


def fetch_grub(ctx: Context) -> None:
    """Download the release's GRUB EFI package with the image's apt; unpack it in the work dir."""
    package = GRUB_EFI[ctx.settings.arch][0]
    inside = ctx.root / STAGE_DIR
    inside.mkdir(parents=True, exist_ok=True)
    os.chmod(inside, 0o777)  # apt-get download drops to the _apt user
    ctx.runner.run(["sh", "-c", f"cd /{STAGE_DIR} && apt-get download {package}"], chroot=ctx.root)
    unpacked = ctx.workdir / "grub"
    for deb in sorted(inside.glob("*.deb")):
        ctx.runner.run(["dpkg-deb", "-x", os.fspath(deb), os.fspath(unpacked)])
    shutil.rmtree(inside)


def boot_parameters(ctx: Context) -> str:
    extra = ctx.settings.text("kernel-append")
    return "boot=live components" + (f" {extra}" if extra else "")


def menu_entries(ctx: Context) -> list[tuple[str, str]]:
    """(title, kernel parameters): the live system, the same on a serial console, and toram."""
    settings = ctx.settings
    name = f"Debian live ({settings.suite} {settings.arch})"
    params = boot_parameters(ctx)
    serial = debian.serial_console(settings.arch)
    return [
        (name, params),
        (f"{name}, serial console", f"{params} console=tty0 console={serial},115200n8"),
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
        f"MENU TITLE Debian live ({ctx.settings.suite} {ctx.settings.arch})",
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
    chosen = ctx.settings.text("iso-label")
    return chosen or f"DEBIAN_LIVE_{ctx.settings.suite}_{ctx.settings.arch}".upper()[:32]


def make_efi_image(ctx: Context, tree: Path, marker: str) -> None:
    arch = ctx.settings.arch
    _, platform, filename = GRUB_EFI[arch]
    modules = ctx.workdir / "grub/usr/lib/grub" / platform
    if not modules.is_dir():
        raise BuildError(f"GRUB's {platform} modules were not found in {GRUB_EFI[arch][0]}")
    early = ctx.workdir / "grub-early.cfg"
    # Find the ISO (or the stick it was copied to) by a file unique to this build.
    early.write_text(f"search --no-floppy --set=root --file {marker}\n"
                     "set prefix=($root)/boot/grub\nconfigfile $prefix/grub.cfg\n")
    binary = ctx.workdir / filename
    available = [m for m in GRUB_MODULES if (modules / f"{m}.mod").exists()]
    ctx.runner.run(["grub-mkimage", "-O", platform, "-d", os.fspath(modules), "-p", "/boot/grub",
                    "-c", os.fspath(early), "-o", os.fspath(binary), *available])
    efi_boot = tree / "EFI/boot"
    efi_boot.mkdir(parents=True)
    shutil.copy2(binary, efi_boot / filename.lower())
    image = tree / "boot/grub/efi.img"
    kib = (binary.stat().st_size // 1024) + 1024
    kib += (-kib) % 1024  # whole MiB
    ctx.runner.run(["mkfs.fat", "-C", "-n", "ESP", os.fspath(image), str(kib)])
    ctx.runner.run(["mmd", "-i", os.fspath(image), "::/EFI", "::/EFI/BOOT"])
    ctx.runner.run(["mcopy", "-i", os.fspath(image), os.fspath(binary), f"::/EFI/BOOT/{filename}"])


def make_isolinux(ctx: Context, tree: Path) -> None:
    directory = tree / "isolinux"
    directory.mkdir()
    shutil.copy2(ISOLINUX_DIR / "isolinux.bin", directory / "isolinux.bin")
    for module in ISOLINUX_MODULES:
        shutil.copy2(SYSLINUX_MODULES / module, directory / module)
    (directory / "isolinux.cfg").write_text(isolinux_cfg(ctx))


def xorriso_argv(ctx: Context, tree: Path, output: Path, grafts: dict[str, Path]) -> list[str]:
    argv = [
        "xorriso", "-as", "mkisofs", "-o", os.fspath(output), "-V", label(ctx),
        "-r", "-J", "-joliet-long", "-iso-level", "3",
    ]  # fmt: skip
    if ctx.settings.arch in BIOS_ARCHES:
        argv += [
            "-isohybrid-mbr", os.fspath(ISOLINUX_DIR / "isohdpfx.bin"),
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


def make(ctx: Context, staging: Staging, live_files: dict[str, Path]) -> None:
    """Assemble the ISO from the live files (squashfs, vmlinuz, initrd.img, manifest)."""
    for needed in ("vmlinuz", "initrd.img", "filesystem.squashfs"):
        if needed not in live_files:
            raise BuildError(f"no {needed} for the ISO: a live ISO needs a kernel and an initrd "
                             "(do not combine --iso with --no-kernel)")
    final = Path(ctx.settings.text("iso")).resolve()
    staging.directory(final.parent)
    tree = ctx.workdir / "iso"
    (tree / "boot/grub").mkdir(parents=True)
    marker = f"/.disk/vmdebootstrap-{uuid.uuid4().hex}"
    (tree / ".disk").mkdir()
    (tree / marker.lstrip("/")).write_text("")
    (tree / ".disk/info").write_text(f"Debian live {ctx.settings.suite} {ctx.settings.arch}, "
                                     "built by vmdebootstrap\n")
    (tree / "boot/grub/grub.cfg").write_text(grub_cfg(ctx))
    make_efi_image(ctx, tree, marker)
    if ctx.settings.arch in BIOS_ARCHES:
        make_isolinux(ctx, tree)
    grafts = {f"live/{name}": path for name, path in live_files.items()}
    output = staging.stage(final)
    ctx.runner.run(xorriso_argv(ctx, tree, output, grafts))
    verify(ctx, output)
    if ctx.settings.flag("pkglist") and "filesystem.packages" in live_files:
        shutil.copy2(live_files["filesystem.packages"], staging.stage(final.with_name(final.name + ".packages")))


def verify(ctx: Context, iso: Path) -> None:
    report = ctx.runner.run(["xorriso", "-indev", os.fspath(iso), "-report_el_torito", "plain"],
                            capture=True).output
    wanted = ["UEFI"] + (["BIOS"] if ctx.settings.arch in BIOS_ARCHES else [])
    for platform in wanted:
        if not any("El Torito boot img" in line and platform in line for line in report.splitlines()):
            raise BuildError(f"{iso} has no {platform} El Torito boot entry (xorriso -report_el_torito)")
