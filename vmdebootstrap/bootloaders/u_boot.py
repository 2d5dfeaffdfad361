"""u-boot's /boot/extlinux/extlinux.conf on a disk image (--bootloader u-boot; what the old
--extlinux default means where there is no PC BIOS: ARM and RISC-V).

u-boot itself lives on the board (its flash, or raw on the SD card: boards.py) or is
QEMU's -bios; its distro boot reads /boot/extlinux/extlinux.conf (or /extlinux/… on a
separate /boot) from the partitions marked bootable, and from partition 1 alone when none
is.  The layout marks the partition holding /boot (msdos boot flag, GPT legacy_boot).

The file is u-boot-menu's: installed with the image's packages, configured in
/etc/default/u-boot (the root by UUID, the kernel's parameters, the serial console), run
here once more, and run again by its kernel hooks at every later kernel install or
removal in the booted system.  u-boot-update writes paths relative to the filesystem that
holds /boot only when /boot is a filesystem of its own (it compares the devices of / and
/boot), so on a separate /boot its run here sees the tree's /boot as a tmpfs copy.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from .. import mounts
from ..boards import Payload
from ..chroot import exists_in, target_path, write_file
from ..context import Context
from ..disk import GPT_RESERVED_SECTORS, SECTOR, Image
from ..errors import BuildError
from ..settings import Settings
from .grub import kernel_console_args

log = logging.getLogger("vmdebootstrap")

DEFAULTS = "/etc/default/u-boot"
CONFIG = "/boot/extlinux/extlinux.conf"
KERNEL_HOOK = "/etc/kernel/postinst.d/zz-u-boot-menu"


def packages(settings: Settings) -> list[str]:
    # rsync: u-boot-menu's hook copies the kernel's device trees onto a separate ext* /boot.
    board = settings.board.packages if settings.board else ()
    return ["u-boot-menu", *(["rsync"] if syncs_device_trees(settings) else []), *board]


def host_tools(_settings: Settings | None) -> Mapping[str, str]:
    return {}  # u-boot-menu runs in the image


def syncs_device_trees(settings: Settings) -> bool:
    """A separate ext* /boot gets the device trees (U_BOOT_SYNC_DTBS): u-boot cannot reach
    /usr/lib/linux-image-*/ there.  Not on vfat, where rsync -a cannot keep owners and modes
    and would fail the kernel's later upgrades: u-boot passes the board's own tree."""
    request = settings.disk
    return request is not None and request.boot_fs.startswith("ext")


def defaults(ctx: Context, image: Image, shipped: str) -> str:
    """/etc/default/u-boot as shipped, with our settings in place of its commented examples."""
    parameters = "ro quiet"
    if ctx.settings.serial_console:
        parameters += " " + kernel_console_args(ctx)
    if ctx.settings.kernel_append:
        parameters += " " + ctx.settings.kernel_append
    ours = {"U_BOOT_ROOT": f"root=UUID={image.uuids['root']}", "U_BOOT_PARAMETERS": parameters}
    if syncs_device_trees(ctx.settings):
        ours["U_BOOT_SYNC_DTBS"] = "true"
    lines = shipped.splitlines()
    for key, value in ours.items():
        line = f'{key}="{value}"  # vmdebootstrap'
        found = [i for i, text in enumerate(lines) if re.match(rf"#?\s*{key}=", text)]
        if found:
            lines[found[0]] = line
        else:
            lines.append(line)
    return "\n".join(lines) + "\n"


def prepare(_ctx: Context, _image: Image) -> None:
    return None  # u-boot-menu's hooks run again in install, configured


def install(ctx: Context, image: Image) -> None:
    """/etc/default/u-boot, then u-boot-menu's kernel hook for the newest kernel (its device
    trees, then u-boot-update), seeing /boot as the filesystem it will be; the board's u-boot
    into the gap before the first partition."""
    path = target_path(ctx.root, DEFAULTS)
    if not path.exists():
        raise BuildError(f"u-boot-menu is not installed in the image ({DEFAULTS} is missing)")
    write_file(ctx.root, DEFAULTS, defaults(ctx, image, path.read_text()))
    version = newest_kernel(ctx)
    with boot_as_its_own_filesystem(ctx, separate=image.layout.boot_holder.role == "boot"):
        ctx.runner.run([KERNEL_HOOK, version], chroot=ctx.root)
    check(ctx, image, target_path(ctx.root, CONFIG))
    if ctx.settings.board is not None:
        write_payloads(ctx, image, ctx.settings.board.payloads)


def newest_kernel(ctx: Context) -> str:
    prefix = ctx.settings.arch.kernel_image + "-"
    boot = target_path(ctx.root, "/boot")
    versions = sorted(p.name.removeprefix(prefix) for p in boot.glob(prefix + "*"))
    if not versions:
        raise BuildError("no kernel in /boot: u-boot has nothing to boot (use --bootloader none with --no-kernel)")
    return versions[-1]


@contextlib.contextmanager
def boot_as_its_own_filesystem(ctx: Context, separate: bool) -> Iterator[None]:
    """The tree's /boot, for the block, as a tmpfs holding a copy of it (``separate``);
    afterwards what the block wrote there is copied back."""
    if not separate:
        yield
        return
    boot = ctx.root / "boot"
    copy = ctx.workdir / "u-boot-boot"
    copy.mkdir()
    with contextlib.ExitStack() as stack:
        stack.callback(copy.rmdir)
        mounts.mount(ctx.runner, stack, "tmpfs", copy, fstype="tmpfs", options="mode=0755")
        ctx.runner.run(["cp", "-a", f"{boot}/.", os.fspath(copy)])
        with contextlib.ExitStack() as over:
            mounts.mount(ctx.runner, over, os.fspath(copy), boot, bind=True, chroot_root=ctx.root)
            yield
        ctx.runner.run(["cp", "-a", f"{copy}/.", os.fspath(boot)])


def check(ctx: Context, image: Image, config: Path) -> None:
    """extlinux.conf names a kernel and an initrd that exist on the /boot filesystem, and the
    root by its UUID: never a build-time device."""
    text = config.read_text() if config.exists() else ""
    if "/dev/loop" in text or "/dev/mapper" in text:
        raise BuildError(f"u-boot-update wrote a build-time device into {CONFIG}")
    if f"root=UUID={image.uuids['root']}" not in text:
        raise BuildError(f"u-boot-update did not write the image's root (UUID {image.uuids['root']}) into {CONFIG}")
    separate = image.layout.boot_holder.role == "boot"
    named = re.findall(r"^\s*(?:linux|initrd)\s+(\S+)", text, re.MULTILINE)
    if not named:
        raise BuildError(f"u-boot-update wrote no kernel into {CONFIG}")
    for path in named:
        on_disk = target_path(ctx.root, "/boot" + path if separate else path)
        if not on_disk.is_file():
            raise BuildError(f"{CONFIG} names {path}, which the /boot filesystem does not hold")


def write_payloads(ctx: Context, image: Image, payloads: Sequence[Payload]) -> None:
    """The board's SPL and u-boot, from the image's own u-boot package (checked against the
    release's signed Release file like every package), raw at the offsets its ROM reads."""
    first = min(part.start for part in image.layout.partitions)
    table_end = GPT_RESERVED_SECTORS * SECTOR if image.layout.label == "gpt" else SECTOR
    for payload in payloads:
        data = target_path(ctx.root, payload.path).read_bytes() if exists_in(ctx.root, payload.path) else None
        if data is None:
            raise BuildError(f"{payload.path} is not in the image: the board's u-boot package did not install it")
        end = payload.offset + len(data)
        if payload.offset < table_end or end > first:
            raise BuildError(f"{payload.path} ({len(data)} bytes at {payload.offset}) does not fit between the "
                             f"partition table and the first partition ({table_end}..{first})")
        with open(image.raw, "r+b") as stream:
            os.pwrite(stream.fileno(), data, payload.offset)
        log.info("%s written at byte %d of the image (%d bytes)", payload.path, payload.offset, len(data))


def finish(_ctx: Context, _image: Image) -> None:
    return None  # everything is in the tree and the gap already
