"""Output "image": a disk image -- the file, its partitions and filesystems, its bootloader.

Reads: settings.disk (disk.Request).  Writes: the image under its partial name.
Undoes: every mount and loop device, on the build's cleanup stack.

``partition`` (step "partition", before the bootstrap): a sparse raw file under its
partial name, the partition table (parted, on the file), one autoclear loop device
per partition (loop.py), the filesystems, and the root (and a separate /boot)
mounted at the build's root directory.  The ESP is filled later without mounting it
(bootloaders/grub_efi.py), so the host kernel needs no vfat driver either.

``write_fstab`` (by the bootstrap step, before the kernel is installed, so that the
initramfs is built once, with the final fstab).

``install_bootloader`` (step "bootloader"): the chosen bootloader's module.

``run`` (step "image", last): the package list, zero-filling or trimming the free
space, unmounting and detaching, and ``--convert-qcow2`` after that (#831029: never
from a mounted image).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import secrets
import shutil
from collections.abc import Mapping
from pathlib import Path

from .. import bootloaders, disk, mounts
from ..bootloaders import loader
from ..chroot import write_file
from ..context import Context
from ..disk import Image
from ..errors import BuildError
from ..loop import LoopDevice
from ..settings import Settings

log = logging.getLogger("vmdebootstrap")

NAME = "image"
STEP = "image"
TOOLS = {"parted": "parted", "blkid": "util-linux", "mkswap": "util-linux", "fstrim": "util-linux",
         "mkfs.ext4": "e2fsprogs", "mkfs.fat": "dosfstools", "mcopy": "mtools", "mmd": "mtools"}  # fmt: skip
ROOT_FS_TOOLS = {"btrfs": {"mkfs.btrfs": "btrfs-progs"}, "xfs": {"mkfs.xfs": "xfsprogs"}}
QCOW2_TOOLS = {"qemu-img": "qemu-utils"}

MKFS = {
    "ext2": ["mkfs.ext2", "-q", "-F"], "ext3": ["mkfs.ext3", "-q", "-F"], "ext4": ["mkfs.ext4", "-q", "-F"],
    "btrfs": ["mkfs.btrfs", "-q", "-f"], "xfs": ["mkfs.xfs", "-q", "-f"], "swap": ["mkswap"],
}  # fmt: skip
LABELS = {"root": "root", "boot": "boot", "swap": "swap", "esp": "ESP"}
ZERO_CHUNK = 4 * disk.MiB


def wanted(settings: Settings) -> bool:
    return settings.disk is not None


def note(ctx: Context) -> str:
    return f" ({ctx.settings.outputs[NAME]})"


def packages(_settings: Settings) -> list[str]:
    return []  # the bootloader's come from its module (steps/packages.py)


def downloads(_settings: Settings) -> list[str]:
    return []


def host_tools(settings: Settings | None) -> Mapping[str, str]:
    request = settings.disk if settings else None
    tools = dict(TOOLS)
    for fs, extra in ROOT_FS_TOOLS.items():
        if request is None or request.root_fs == fs:
            tools.update(extra)
    if request is None or request.qcow2:
        tools.update(QCOW2_TOOLS)
    names = [request.bootloader] if request else list(bootloaders.NAMES)
    for name in names:
        tools.update(loader.load(name).host_tools(settings))
    return tools


def mkfs_argv(fstype: str, role: str, device: str, metadata_csum: bool = True) -> list[str]:
    argv = [*MKFS[fstype], "-L", LABELS[role]]
    if fstype.startswith("ext") and not metadata_csum:
        argv += ["-O", "^metadata_csum"]  # the release's e2fsck cannot read it (#827130)
    return [*argv, device]


def partition(ctx: Context) -> None:
    """The image file, its partitions and filesystems, mounted at the build's root."""
    request = ctx.settings.disk
    assert request is not None
    layout = disk.plan(request)
    final = ctx.settings.outputs[NAME]
    ctx.outputs.directory(final.parent)
    if request.qcow2:  # the raw file is converted at the end, then removed
        raw = ctx.outputs.scratch(final.with_name(f".vmdebootstrap-partial-{final.name}.raw"))
    else:
        raw = ctx.outputs.partial(final)
    with open(raw, "wb") as stream:
        stream.truncate(layout.image_size)  # sparse: only what is written takes space
    script = disk.parted_script(layout, request.flag, legacy_boot=request.legacy_boot)
    ctx.runner.run(["parted", "--script", "--align", "none", os.fspath(raw), *script])
    ctx.runner.run(["parted", "--script", os.fspath(raw), "unit", "MiB", "print"])

    stack = ctx.stack.enter_context(contextlib.ExitStack())
    devices: dict[str, LoopDevice] = {}
    uuids: dict[str, str] = {}
    for part in layout.partitions:
        if part.role == "bios_grub":
            continue
        if part.fstype == "vfat":  # made at the end (copy_fat_partitions); its volume id now
            uuids[part.role] = f"{secrets.token_hex(2)}-{secrets.token_hex(2)}".upper()
            continue
        device = LoopDevice(raw, part.start, part.size)
        stack.callback(device.detach)
        devices[part.role] = device
        ctx.runner.run(mkfs_argv(part.fstype, part.role, device.path, ctx.settings.release.ext4_metadata_csum))
        uuids[part.role] = filesystem_uuid(ctx, device.path)
    ctx.image = Image(request, layout, raw, final, devices, uuids, stack)
    mount_filesystems(ctx, ctx.image)


def install_bootloader(ctx: Context) -> None:
    """Step "bootloader": the chosen bootloader's module makes the image boot."""
    assert ctx.image is not None
    loader.load(ctx.image.request.bootloader).install(ctx, ctx.image)


def filesystem_uuid(ctx: Context, device: str) -> str:
    result = ctx.runner.run(["blkid", "-c", "/dev/null", "-o", "value", "-s", "UUID", device], capture=True)
    uuid = result.output.strip()
    if not uuid:
        raise BuildError(f"blkid found no filesystem UUID on {device}")
    return uuid


def mount_filesystems(ctx: Context, made: Image) -> None:
    ctx.root.mkdir(mode=0o755)
    mounts.mount(ctx.runner, made.stack, made.device("root"), ctx.root, chroot_root=ctx.root)
    if "boot" in made.devices:
        (ctx.root / "boot").mkdir(mode=0o755)
        mounts.mount(ctx.runner, made.stack, made.device("boot"), ctx.root / "boot", chroot_root=ctx.root)
    # FAT partitions are not mounted (the host kernel may have no vfat driver): their
    # mount points stay directories of the root, copied into them at the end.
    for part in made.layout.partitions:
        if part.fstype == "vfat":
            (ctx.root / part.mountpoint.lstrip("/")).mkdir(mode=0o755, parents=True, exist_ok=True)
    for leftover in ("lost+found",):  # mkfs.ext*'s; the installed system's e2fsck makes its own
        path = ctx.root / leftover
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()


def write_fstab(ctx: Context, made: Image) -> None:
    write_file(ctx.root, "/etc/fstab", disk.fstab(made.layout, made.uuids))
    # initramfs-tools' resume hook would otherwise look at the *host's* swap (/proc/swaps).
    resume = f"RESUME=UUID={made.uuids['swap']}\n" if "swap" in made.uuids else "RESUME=none\n"
    write_file(ctx.root, "/etc/initramfs-tools/conf.d/resume", resume)


def run(ctx: Context) -> None:
    made = ctx.image
    assert made is not None
    if ctx.settings.pkglist:
        manifest = ctx.runner.run(["dpkg-query", "--show"], chroot=ctx.root, capture=True).output
        ctx.outputs.partial(made.final.with_name(made.final.name + ".packages")).write_text(manifest)
    copy_fat_partitions(ctx, made)
    mounted = [ctx.root / "boot", ctx.root] if "boot" in made.devices else [ctx.root]
    if made.request.sparse:
        for point in mounted:  # freed blocks become holes in the file
            ctx.runner.run(["fstrim", os.fspath(point)], check=False)
    else:
        for point in mounted:
            zero_fill(point)
    made.stack.close()  # unmount, then detach every loop device and wait until it is free
    if made.request.qcow2:
        qcow2 = ctx.outputs.partial(made.final)
        ctx.runner.run(["qemu-img", "convert", "-O", "qcow2", os.fspath(made.raw), os.fspath(qcow2)])
        made.raw.unlink()  # no IMAGE.raw is left behind


def copy_fat_partitions(ctx: Context, made: Image) -> None:
    """FAT partitions (the ESP, a vfat /boot) are made last, from what the build put below
    their mount points: a FAT image file filled by mtools and copied into the disk image.
    Nothing is mounted, so the host kernel needs no vfat driver.  The mount point in the
    root filesystem is left empty, as under any mount."""
    for part in made.layout.partitions:
        if part.fstype != "vfat":
            continue
        directory = ctx.root / part.mountpoint.lstrip("/")
        fat = ctx.workdir / f"{part.role}.fat"
        ctx.runner.run(mkfs_fat_argv(part, fat, made.uuids[part.role]))
        entries = sorted(directory.iterdir())
        files = [os.fspath(e) for e in entries if not e.is_symlink()]  # FAT has no symlinks
        if files:
            ctx.runner.run(["mcopy", "-s", "-p", "-Q", "-i", os.fspath(fat), *files, "::/"],
                           env={"MTOOLS_SKIP_CHECK": "1"})
        copy_into(fat, made.raw, part.start)
        fat.unlink()
        for entry in entries:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()


def mkfs_fat_argv(part: disk.Partition, fat: Path, uuid: str) -> list[str]:
    # FAT32 below ~64 MiB wastes clusters or is refused; mkfs.fat picks FAT16 then.
    fat32 = ["-F", "32"] if part.size >= 64 * disk.MiB else []
    return ["mkfs.fat", "-C", *fat32, "-n", LABELS[part.role], "-i", uuid.replace("-", ""), os.fspath(fat),
            str(part.size // 1024)]


def copy_into(source: Path, image: Path, offset: int) -> None:
    """Copy ``source`` into ``image`` at ``offset``, skipping blocks of zeros (the image is sparse)."""
    with open(source, "rb") as reader, open(image, "r+b") as writer:
        position = 0
        while chunk := reader.read(disk.MiB):
            if chunk.count(0) != len(chunk):
                os.pwrite(writer.fileno(), chunk, offset + position)
            position += len(chunk)
        os.fsync(writer.fileno())


def zero_fill(directory: Path) -> None:
    """Write zeros into the free space and remove them again (without --sparse):
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
