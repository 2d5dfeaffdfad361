"""extlinux on a disk image (--bootloader extlinux, the old default; deprecated).

The host's extlinux, installed into /boot/extlinux of the filesystem that holds /boot,
with syslinux's MBR (or install-mbr's with --mbr).  Kernel upgrades in the booted
system do not update extlinux.conf.
"""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Mapping
from pathlib import Path

from .. import mounts
from ..chroot import target_path
from ..context import Context
from ..disk import Image
from ..errors import BuildError
from ..loop import LoopDevice
from ..settings import Settings
from .grub import kernel_console_args

SECTOR = 512


def packages(_settings: Settings) -> list[str]:
    return []


def host_tools(settings: Settings | None) -> Mapping[str, str]:
    tools = {"extlinux": "extlinux", "/usr/lib/syslinux/mbr/mbr.bin": "syslinux-common"}
    if settings is None or (settings.disk is not None and settings.disk.mbr):
        tools["install-mbr"] = "mbr"
    return tools


def prepare(_ctx: Context, _image: Image) -> None:
    return None  # its kernel hooks need nothing of it


def install(ctx: Context, image: Image) -> None:
    """extlinux.conf in the tree; extlinux itself goes into the finished filesystem (finish)."""
    directory = target_path(ctx.root, "/boot") / "extlinux"
    directory.mkdir(exist_ok=True)
    (directory / "extlinux.conf").write_text(extlinux_conf(ctx, image))


def extlinux_conf(ctx: Context, image: Image) -> str:
    boot = target_path(ctx.root, "/boot")
    kernel = ctx.settings.arch.kernel_image
    kernels = sorted(boot.glob(f"{kernel}-*"))
    if not kernels:
        raise BuildError("no kernel in /boot: extlinux has nothing to boot (use --no-extlinux with --no-kernel)")
    version = kernels[-1].name[len(kernel) + 1:]
    prefix = "/" if image.layout.boot_holder.role == "boot" else "/boot/"
    append = f"initrd={prefix}initrd.img-{version} root=UUID={image.uuids['root']} ro"
    lines = ["# Written by vmdebootstrap (extlinux is deprecated: kernel upgrades do not update this file)",
             "default linux", "timeout 10", "prompt 0"]
    if ctx.settings.serial_console:
        lines.insert(1, "serial 0 115200")
        append += " " + kernel_console_args(ctx)
    if ctx.settings.kernel_append:
        append += " " + ctx.settings.kernel_append
    lines += ["label linux", f"  kernel {prefix}{kernel}-{version}", f"  append {append}"]
    return "\n".join(lines) + "\n"


def finish(ctx: Context, image: Image) -> None:
    """extlinux --install into the filesystem that holds /boot, mounted from its byte range of
    the image for this alone (extlinux has no way to work on an unmounted filesystem), and the
    MBR.  The mount makes the filesystem's times those of this moment: not reproducible."""
    holder = image.layout.boot_holder
    device = LoopDevice(image.raw, holder.start, holder.size)
    image.stack.callback(device.detach)
    point = ctx.workdir / "extlinux-boot"
    point.mkdir()
    with contextlib.ExitStack() as stack:
        mounts.mount(ctx.runner, stack, device.path, point)
        directory = point / ("extlinux" if holder.role == "boot" else "boot/extlinux")
        ctx.runner.run(["extlinux", "--install", os.fspath(directory)])
    point.rmdir()
    # extlinux reads the partition's offset from the kernel, which knows none for a loop
    # device over a byte range: write the "hidden sectors" of the boot sector ourselves.
    with open(device.path, "r+b") as stream:
        sector = bytearray(os.pread(stream.fileno(), SECTOR, 0))
        struct.pack_into("<I", sector, 0x1C, holder.start // SECTOR)
        os.pwrite(stream.fileno(), bytes(sector), 0)
        os.fsync(stream.fileno())
    device.detach()
    if image.request.mbr:
        ctx.runner.run(["install-mbr", os.fspath(image.raw)])
    else:
        mbr = "/usr/lib/syslinux/mbr/gptmbr.bin" if image.layout.label == "gpt" else "/usr/lib/syslinux/mbr/mbr.bin"
        code = Path(mbr).read_bytes()[:440]
        with open(image.raw, "r+b") as stream:
            os.pwrite(stream.fileno(), code, 0)
            os.fsync(stream.fileno())
