"""Bootloaders of disk images: GRUB for BIOS, GRUB for UEFI, extlinux.

GRUB comes from the image itself (grub-pc or grub-efi-*, installed by the packages
step), and its tools run inside the image.  grub-install is not used: it needs the
partitions as the kernel's partition devices (and the ESP mounted as vfat), which a
build host's kernel may lack.  Instead the steps grub-install performs are done
explicitly, and each is visible here:

* the modules are copied to /boot/grub/<platform> and ``update-grub`` writes
  grub.cfg.  It sees the root as the loop device of its partition, so the chroot's
  private /dev gets that node and /dev/disk/by-uuid/<uuid>: grub.cfg then says
  ``root=UUID=...``, never a build-time loop device (elbe#431, grml-debootstrap#87);
* ``grub-mkimage`` makes the core image with a small embedded configuration that
  finds the /boot filesystem by UUID;
* BIOS: boot.img goes into the MBR (the partition table kept) and core.img into
  the gap before the first partition (msdos) or the bios_grub partition (GPT);
* UEFI: the core image goes onto the ESP both at the Debian path and at the
  removable-media path (EFI/BOOT/BOOTX64.EFI, so firmware with empty variables
  finds it).  The files are put below /boot/efi and the FAT partition is made from
  them at the end (image.copy_fat_partitions), so the ESP is never mounted and no
  firmware variable (NVRAM) of the build host is ever touched -- grub-install
  without --no-nvram did (vmdebootstrap-features.md §6.3).

extlinux (the old default, deprecated) is the host's, installed into /boot/extlinux
of the filesystem that holds /boot, with syslinux's MBR (or install-mbr with --mbr).
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import struct
from pathlib import Path

from .. import debian
from ..chroot import inside, write_file
from ..context import Context
from ..errors import BuildError
from .image import Disk, uses_extlinux

log = logging.getLogger("vmdebootstrap")

SECTOR = 512
# <grub/i386/pc/boot.h>: fields of boot.img, and the blocklist at the end of core.img's first sector.
BOOT_KERNEL_SECTOR = 0x5C
BOOT_DRIVE_CHECK = 0x66
MBR_CODE_END = 0x1B8  # disk signature and partition table follow: kept
CORE_BLOCKLIST = SECTOR - 12  # start (u64), length (u16), segment (u16)

# UEFI per architecture: grub platform, file name at the removable path, Debian's name.
EFI = {
    "amd64": ("x86_64-efi", "BOOTX64.EFI", "grubx64.efi"),
    "i386": ("i386-efi", "BOOTIA32.EFI", "grubia32.efi"),
    "arm64": ("arm64-efi", "BOOTAA64.EFI", "grubaa64.efi"),
}
BUILD_ONLY_DEFAULTS = "/etc/default/grub.d/zz-vmdebootstrap-build.cfg"
FS_MODULES = {"ext2": "ext2", "ext3": "ext2", "ext4": "ext2", "btrfs": "btrfs", "xfs": "xfs", "vfat": "fat"}


def install(ctx: Context, made: Disk) -> None:
    settings = ctx.settings
    if settings.flag("use-uefi"):
        expose_devices(ctx, made)
        write_grub_defaults(ctx)
        update_grub(ctx, made)
        platforms = [settings.arch]
        if settings.arch == "amd64" and settings.flag("uefi-ia32"):
            platforms.append("i386")
        fill_esp(ctx, made, platforms)
    elif settings.flag("grub"):
        expose_devices(ctx, made)
        write_grub_defaults(ctx)
        update_grub(ctx, made)
        install_grub_bios(ctx, made)
    elif uses_extlinux(settings):
        install_extlinux(ctx, made)


def serial_device(arch: str) -> str:
    return debian.serial_console(arch)


def kernel_console_args(arch: str) -> str:
    return f"console=tty0 console={serial_device(arch)},115200n8"


def expose_devices(ctx: Context, made: Disk) -> None:
    """The partitions' loop devices and their by-uuid links in the chroot's own /dev (a tmpfs)."""
    dev = ctx.root / "dev"
    by_uuid = dev / "disk/by-uuid"
    by_uuid.mkdir(parents=True, exist_ok=True)
    for role, device in made.devices.items():
        node = dev / os.path.basename(device.path)
        if not node.exists():
            os.mknod(node, 0o600 | stat.S_IFBLK, os.stat(device.path).st_rdev)
        link = by_uuid / made.uuids[role]
        if not link.is_symlink():
            link.symlink_to(f"../../{node.name}")


def write_grub_defaults(ctx: Context) -> None:
    """/etc/default/grub.d/vmdebootstrap.cfg: the serial console (#782304: only when asked)."""
    settings = ctx.settings
    lines = ["# Written by vmdebootstrap."]
    # A text menu: the graphical one's font lookup in 00_header aborts update-grub when
    # grub-probe cannot resolve the build's loop device (it did on arm64).
    terminal = "console"
    if settings.flag("serial-console"):
        lines.append(f'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX {kernel_console_args(settings.arch)}"')
        if settings.arch in ("amd64", "i386"):  # UEFI on ARM shows its console on the serial port
            terminal = "console serial"
            lines.append('GRUB_SERIAL_COMMAND="serial --speed=115200 --unit=0 --word=8 --parity=no --stop=1"')
    lines.append(f'GRUB_TERMINAL="{terminal}"')
    write_file(ctx.root, "/etc/default/grub.d/vmdebootstrap.cfg", "\n".join(lines) + "\n")


def update_grub(ctx: Context, made: Disk) -> None:
    # 10_linux writes no entry at all for a root on /dev/loop[0-9] ("we can't cope with
    # devices loop-mounted from files"): name the root by its UUID link for this one run.
    override = write_file(ctx.root, BUILD_ONLY_DEFAULTS, f"GRUB_DEVICE=/dev/disk/by-uuid/{made.uuids['root']}\n")
    try:
        ctx.runner.run(["update-grub"], chroot=ctx.root)
    finally:
        override.unlink()
    config = inside(ctx.root, "/boot/grub/grub.cfg")
    text = config.read_text() if config.exists() else ""
    if "/dev/loop" in text:
        raise BuildError("update-grub wrote a build-time loop device into /boot/grub/grub.cfg")
    if "menuentry " not in text:
        raise BuildError("update-grub wrote no menu entry into /boot/grub/grub.cfg (is there a kernel?)")


def _copy_modules(ctx: Context, platform: str) -> None:
    source = inside(ctx.root, f"/usr/lib/grub/{platform}")
    if not source.is_dir():
        raise BuildError(f"the image has no GRUB modules for {platform} ({source} is missing)")
    target = inside(ctx.root, "/boot/grub") / platform
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for path in source.iterdir():
        if path.suffix in (".mod", ".lst", ".img", ".o") or path.name == "modinfo.sh":
            shutil.copy2(path, target / path.name)


def _early_config(made: Disk) -> str:
    holder = made.layout.boot_holder
    prefix = "/grub" if holder.role == "boot" else "/boot/grub"
    return f"search.fs_uuid {made.uuids[holder.role]} root\nset prefix=($root)'{prefix}'\n"


def make_core_image(ctx: Context, made: Disk, platform: str, output: str, extra: list[str]) -> Path:
    """grub-mkimage in the image: the core image for ``platform`` at ``output`` (a path inside)."""
    _copy_modules(ctx, platform)
    write_file(ctx.root, f"/boot/grub/{platform}/load.cfg", _early_config(made))
    fs_modules = sorted({FS_MODULES[made.layout.boot_holder.fstype]})
    modules = [*extra, "part_msdos", "part_gpt", *fs_modules, "search_fs_uuid"]
    ctx.runner.run(["grub-mkimage", "--format", platform, "--directory", f"/usr/lib/grub/{platform}",
                    "--config", f"/boot/grub/{platform}/load.cfg", "--prefix", "/boot/grub",
                    "--output", output, *modules], chroot=ctx.root)
    return inside(ctx.root, output)


def install_grub_bios(ctx: Context, made: Disk) -> None:
    core_path = make_core_image(ctx, made, "i386-pc", "/boot/grub/i386-pc/core.img", ["biosdisk"])
    core = bytearray(core_path.read_bytes())
    boot = bytearray(inside(ctx.root, "/usr/lib/grub/i386-pc/boot.img").read_bytes())
    grub_part = made.layout.by_role("bios_grub")
    if grub_part is not None:
        first, room = grub_part.start // SECTOR, grub_part.size
    else:  # msdos: the gap between the MBR and the first partition
        first, room = 1, made.layout.partitions[0].start - SECTOR
    if len(core) > room:
        raise BuildError(f"GRUB's core image ({len(core)} bytes) does not fit into the {room} bytes before "
                         "the first partition")
    sectors = -(-len(core) // SECTOR)
    core += bytes(sectors * SECTOR - len(core))
    # diskboot.img (core.img's first sector) loads the rest from the sectors after it.
    struct.pack_into("<QH", core, CORE_BLOCKLIST, first + 1, sectors - 1)
    struct.pack_into("<Q", boot, BOOT_KERNEL_SECTOR, first)
    boot[BOOT_DRIVE_CHECK:BOOT_DRIVE_CHECK + 2] = b"\x90\x90"  # use the drive the BIOS booted (as grub-setup)
    with open(made.raw, "r+b") as image:
        os.pwrite(image.fileno(), bytes(boot[:MBR_CODE_END]), 0)
        os.pwrite(image.fileno(), bytes(core), first * SECTOR)
        os.fsync(image.fileno())
    log.info("GRUB for BIOS: boot.img in the MBR, core.img (%d sectors) from sector %d", sectors, first)


def fill_esp(ctx: Context, made: Disk, arches: list[str]) -> None:
    """GRUB at the Debian path and the removable-media path of the ESP (written into the
    FAT partition at the end: image.copy_fat_partitions)."""
    esp = inside(ctx.root, "/boot/efi")
    for arch in arches:
        platform, removable, debian_name = EFI[arch]
        binary = make_core_image(ctx, made, platform, f"/boot/grub/{platform}/core.efi", [])
        for target in (esp / "EFI/debian" / debian_name, esp / "EFI/BOOT" / removable):
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(binary, target)
    # Later upgrades of grub-efi in the booted system keep the removable path current.
    ctx.runner.run(["debconf-set-selections"], chroot=ctx.root,
                   input="grub-efi-amd64 grub2/force_efi_extra_removable boolean true\n"
                         "grub-efi-arm64 grub2/force_efi_extra_removable boolean true\n")


def extlinux_conf(ctx: Context, made: Disk) -> str:
    boot = inside(ctx.root, "/boot")
    kernels = sorted(boot.glob("vmlinuz-*"))
    if not kernels:
        raise BuildError("no kernel in /boot: extlinux has nothing to boot (use --no-extlinux with --no-kernel)")
    version = kernels[-1].name[len("vmlinuz-"):]
    prefix = "/" if made.layout.boot_holder.role == "boot" else "/boot/"
    append = f"initrd={prefix}initrd.img-{version} root=UUID={made.uuids['root']} ro"
    lines = ["# Written by vmdebootstrap (extlinux is deprecated: kernel upgrades do not update this file)",
             "default linux", "timeout 10", "prompt 0"]
    if ctx.settings.flag("serial-console"):
        lines.insert(1, "serial 0 115200")
        append += " " + kernel_console_args(ctx.settings.arch)
    lines += ["label linux", f"  kernel {prefix}vmlinuz-{version}", f"  append {append}"]
    return "\n".join(lines) + "\n"


def install_extlinux(ctx: Context, made: Disk) -> None:
    directory = inside(ctx.root, "/boot") / "extlinux"
    directory.mkdir(exist_ok=True)
    (directory / "extlinux.conf").write_text(extlinux_conf(ctx, made))
    ctx.runner.run(["extlinux", "--install", os.fspath(directory)])
    holder = made.layout.boot_holder
    # extlinux reads the partition's offset from the kernel, which knows none for a loop
    # device over a byte range: write the "hidden sectors" of the boot sector ourselves.
    with open(made.devices[holder.role].path, "r+b") as device:
        sector = bytearray(os.pread(device.fileno(), SECTOR, 0))
        struct.pack_into("<I", sector, 0x1C, holder.start // SECTOR)
        os.pwrite(device.fileno(), bytes(sector), 0)
        os.fsync(device.fileno())
    if ctx.settings.flag("mbr"):
        ctx.runner.run(["install-mbr", os.fspath(made.raw)])
    else:
        mbr = "/usr/lib/syslinux/mbr/gptmbr.bin" if made.layout.label == "gpt" else "/usr/lib/syslinux/mbr/mbr.bin"
        code = Path(mbr).read_bytes()[:440]
        with open(made.raw, "r+b") as image:
            os.pwrite(image.fileno(), code, 0)
            os.fsync(image.fileno())
