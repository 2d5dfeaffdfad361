"""Disk images: the file, its partitions and filesystems, and finishing it.

``prepare`` (step "partition", before the bootstrap): a sparse raw file under its
staging name, the partition table (parted, on the file), one autoclear loop device
per partition (loop.py), the filesystems, and the root (and a separate /boot)
mounted at the build's root directory -- every mount and device on the build's
cleanup stack.  The ESP is filled later without mounting it (bootloader.py), so
the host kernel needs no vfat driver either.

``write_fstab`` (right after the bootstrap, before the kernel is installed, so
that the initramfs is built once, with the final fstab).

``finish`` (step "image", after the bootloader): the package list, zero-filling
or trimming the free space, unmounting and detaching, and ``--convert-qcow2``
after that (#831029: never from a mounted image).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import logging
import os
from pathlib import Path

from .. import disk, mounts
from ..chroot import write_file
from ..context import Context
from ..errors import BuildError
from ..loop import LoopDevice
from ..publish import Staging

log = logging.getLogger("vmdebootstrap")

MKFS = {
    "ext2": ["mkfs.ext2", "-q", "-F"], "ext3": ["mkfs.ext3", "-q", "-F"], "ext4": ["mkfs.ext4", "-q", "-F"],
    "btrfs": ["mkfs.btrfs", "-q", "-f"], "xfs": ["mkfs.xfs", "-q", "-f"], "swap": ["mkswap"],
}  # fmt: skip
LABELS = {"root": "root", "boot": "boot", "swap": "swap", "esp": "ESP"}
ZERO_CHUNK = 4 * disk.MiB


@dataclasses.dataclass
class Disk:
    layout: disk.Layout
    raw: Path  # the raw image being written (a staging name)
    final: Path  # where the image is published
    devices: dict[str, LoopDevice]  # by partition role
    uuids: dict[str, str]  # filesystem UUIDs by partition role
    stack: contextlib.ExitStack  # mounts and loop devices, closed by finish() or on failure

    def device(self, role: str) -> str:
        return self.devices[role].path


def mkfs_argv(fstype: str, role: str, device: str, suite: str, size: int) -> list[str]:
    if fstype == "vfat":
        # FAT32 below ~64 MiB wastes clusters or is refused; mkfs.fat picks FAT16 then.
        return ["mkfs.fat", *(["-F", "32"] if size >= 64 * disk.MiB else []), "-n", LABELS[role], device]
    argv = [*MKFS[fstype], "-L", LABELS[role]]
    if fstype.startswith("ext") and suite in ("wheezy", "jessie"):
        argv += ["-O", "^metadata_csum"]  # their e2fsck cannot read it (#827130)
    return [*argv, device]


def prepare(ctx: Context, staging: Staging) -> Disk:
    settings = ctx.settings
    layout = disk.plan(settings.values, settings.arch)
    final = Path(settings.text("image")).resolve()
    staging.directory(final.parent)
    raw = staging.stage(final)
    if settings.flag("convert-qcow2"):
        raw = staging.scratch(final.with_name(f".vmdebootstrap-partial-{final.name}.raw"))
    with open(raw, "wb") as stream:
        stream.truncate(layout.image_size)  # sparse: only what is written takes space
    script = disk.parted_script(layout, settings.text("bootflag"), legacy_boot=uses_extlinux(settings))
    ctx.runner.run(["parted", "--script", "--align", "none", os.fspath(raw), *script])
    ctx.runner.run(["parted", "--script", os.fspath(raw), "unit", "MiB", "print"])

    stack = ctx.stack.enter_context(contextlib.ExitStack())
    devices: dict[str, LoopDevice] = {}
    uuids: dict[str, str] = {}
    for part in layout.partitions:
        if part.role == "bios_grub":
            continue
        device = LoopDevice(raw, part.start, part.size)
        stack.callback(device.detach)
        devices[part.role] = device
        ctx.runner.run(mkfs_argv(part.fstype, part.role, device.path, settings.suite, part.size))
        uuids[part.role] = filesystem_uuid(ctx, device.path)
    made = Disk(layout, raw, final, devices, uuids, stack)
    mount_filesystems(ctx, made)
    return made


def uses_extlinux(settings: object) -> bool:
    from ..settings import Settings

    assert isinstance(settings, Settings)
    return settings.flag("extlinux") and not settings.flag("grub")


def filesystem_uuid(ctx: Context, device: str) -> str:
    result = ctx.runner.run(["blkid", "-c", "/dev/null", "-o", "value", "-s", "UUID", device], capture=True)
    uuid = result.output.strip()
    if not uuid:
        raise BuildError(f"blkid found no filesystem UUID on {device}")
    return uuid


def mount_filesystems(ctx: Context, made: Disk) -> None:
    ctx.root.mkdir(mode=0o755)
    mounts.mount(ctx.runner, made.stack, made.device("root"), ctx.root, chroot_root=ctx.root)
    if "boot" in made.devices:
        (ctx.root / "boot").mkdir(mode=0o755)
        mounts.mount(ctx.runner, made.stack, made.device("boot"), ctx.root / "boot", chroot_root=ctx.root)
    if "esp" in made.devices:
        (ctx.root / "boot/efi").mkdir(mode=0o755, parents=True, exist_ok=True)
    for leftover in ("lost+found",):  # mkfs.ext*'s; the installed system's e2fsck makes its own
        path = ctx.root / leftover
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()


def write_fstab(ctx: Context, made: Disk) -> None:
    write_file(ctx.root, "/etc/fstab", disk.fstab(made.layout, made.uuids))
    # initramfs-tools' resume hook would otherwise look at the *host's* swap (/proc/swaps).
    resume = f"RESUME=UUID={made.uuids['swap']}\n" if "swap" in made.uuids else "RESUME=none\n"
    write_file(ctx.root, "/etc/initramfs-tools/conf.d/resume", resume)


def finish(ctx: Context, made: Disk, staging: Staging) -> None:
    settings = ctx.settings
    if settings.flag("pkglist"):
        manifest = ctx.runner.run(["dpkg-query", "--show"], chroot=ctx.root, capture=True).output
        staging.stage(made.final.with_name(made.final.name + ".packages")).write_text(manifest)
    mounted = [ctx.root / "boot", ctx.root] if "boot" in made.devices else [ctx.root]
    if settings.flag("sparse"):
        for point in mounted:  # freed blocks become holes in the file
            ctx.runner.run(["fstrim", os.fspath(point)], check=False)
    else:
        for point in mounted:
            zero_fill(point)
    made.stack.close()  # unmount, then detach every loop device and wait until it is free
    if settings.flag("convert-qcow2"):
        staged = staging.stage(made.final)
        ctx.runner.run(["qemu-img", "convert", "-O", "qcow2", os.fspath(made.raw), os.fspath(staged)])
        made.raw.unlink()  # the old tool left IMAGE.raw behind (§6.4 item 5)


def zero_fill(directory: Path) -> None:
    """Write zeros into the free space and remove them again (the old default, without --sparse):
    deleted files' old contents become zeros and the image file is fully allocated."""
    filler = directory / "vmdebootstrap-zeros"
    chunk = bytes(ZERO_CHUNK)
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        while True:
            try:
                if os.write(fd, chunk) == 0:
                    break
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                break
        os.fsync(fd)
    finally:
        os.close(fd)
        filler.unlink()
