"""Output "image": a disk image -- the file, its partitions, and filesystems image from the tree.

Reads: settings.disk (disk.Request), the finished tree.  Writes: the image under its
partial name.  Undoes: what finishing it mounts or attaches (extlinux, xfs), on the
build's cleanup stack.

The root tree is built beside the image, in the work directory, as for every other
output: mmdebstrap, the package cache and the stage cache serve disk images too.

``partition`` (step "partition", before the bootstrap): a sparse raw file under its
partial name and the partition table (parted), with the disk's and partitions'
identifiers set from the seed (sfdisk), and the filesystem UUIDs chosen (identity.py).
The hook (--customize) gets this file, to write a board's bootloader into the gap.

``write_fstab`` (by the bootstrap step, before the kernel is installed, so that the
initramfs is built once, with the final fstab).

``install_bootloader`` (step "bootloader"): the chosen bootloader's module, in the tree.

``run`` (step "image", last): each partition's filesystem image from
its part of the tree (mkfs.ext4 -d, mkfs.btrfs --rootdir, mkfs.fat and mcopy, mkswap)
and written into its byte range; the bootloader's last words (extlinux installs into
the finished filesystem); the file allocated in full unless --sparse; --convert-qcow2.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Mapping
from pathlib import Path

from .. import bootloaders, digest, disk, faults, identity, mounts, reproducible
from ..bootloaders import loader
from ..chroot import write_file
from ..context import Context
from ..disk import Image
from ..loop import LoopDevice
from ..settings import Settings

log = logging.getLogger("vmdebootstrap")

NAME = "image"
STEP = "image"
TOOLS = {"parted": "parted", "sfdisk": "fdisk", "mkswap": "util-linux", "mkfs.ext4": "e2fsprogs",
         "debugfs": "e2fsprogs", "mkfs.fat": "dosfstools", "mcopy": "mtools", "mmd": "mtools"}  # fmt: skip
ROOT_FS_TOOLS = {"btrfs": {"mkfs.btrfs": "btrfs-progs"}, "xfs": {"mkfs.xfs": "xfsprogs"}}
QCOW2_TOOLS = {"qemu-img": "qemu-utils"}
SCRATCH = "filesystems"  # the work directory's room for filesystems image apart (btrfs, xfs, swap, FAT)


def wanted(settings: Settings) -> bool:
    return settings.disk is not None


def note(ctx: Context) -> str:
    return f" ({ctx.settings.outputs[NAME]})"


def stem(final: Path) -> Path:
    return final


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


def mkfs_fat_argv(part: disk.Partition, fat: Path, uuid: str, label: str) -> list[str]:
    # FAT32 below ~64 MiB wastes clusters or is refused; mkfs.fat picks FAT16 then.
    fat32 = ["-F", "32"] if part.size >= 64 * disk.MiB else []
    # --invariant: no time-based or random values (the volume id is given)
    return ["mkfs.fat", "-C", "--invariant", *fat32, "-n", label, "-i", uuid.replace("-", ""),
            os.fspath(fat), str(part.size // 1024)]


def copy_into(source: Path, image: Path, offset: int) -> None:
    """Copy ``source`` into ``image`` at ``offset``: only its data (SEEK_DATA), and of that no
    block of zeros, so the image stays sparse.  A 512 MiB swap area is one page of data."""
    with open(source, "rb") as reader, open(image, "r+b") as writer:
        for start, end in digest.data_ranges(reader.fileno(), os.fstat(reader.fileno()).st_size):
            position = start
            while position < end:
                chunk = os.pread(reader.fileno(), min(disk.MiB, end - position), position)
                if not chunk:
                    break
                if chunk.count(0) != len(chunk):
                    os.pwrite(writer.fileno(), chunk, offset + position)
                position += len(chunk)


# -- the partition step --------------------------------------------------------------------------------


def identifiers(seed: str, layout: disk.Layout, name: str) -> tuple[dict[str, str], dict[str, str], str]:
    """(filesystem UUIDs, partition GUIDs, disk id) from the seed; the root's UUID also from the
    image's name, so that two images built with one --seed still differ."""
    uuids: dict[str, str] = {}
    for part in layout.partitions:
        if part.role == "bios_grub":
            continue
        if part.fstype == "vfat":
            volume = identity.hex_for(seed, f"volume:{part.role}", 8).upper()
            uuids[part.role] = f"{volume[:4]}-{volume[4:]}"
        else:
            uuids[part.role] = identity.uuid_for(seed, f"filesystem:{part.role}:{name if part.role == 'root' else ''}")
    if layout.label == "gpt":
        disk_id = identity.uuid_for(seed, "gpt:disk")
        parts = {p.role: identity.uuid_for(seed, f"gpt:{p.role}") for p in layout.partitions}
    else:
        disk_id = "0x" + identity.hex_for(seed, "mbr:disk", 8)
        parts = {p.role: f"{disk_id[2:]}-{p.number:02d}" for p in layout.partitions}
    return uuids, parts, disk_id


def planned(settings: Settings) -> tuple[disk.Layout, dict[str, str], dict[str, str], str]:
    """The disk's layout and its identifiers (filesystem UUIDs, partition GUIDs, disk id), all from the
    settings: the stage key knows them (before_the_kernel) before the partition step makes the disk."""
    request = settings.disk
    assert request is not None
    layout = disk.plan(request)
    return (layout, *identifiers(settings.seed, layout, settings.outputs[NAME].name))


def partition(ctx: Context) -> None:
    """The image file and its partition table; the identifiers its filesystems will have."""
    request = ctx.settings.disk
    assert request is not None
    layout, uuids, part_uuids, disk_id = planned(ctx.settings)
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
    # parted chose random identifiers: the seed's replace them.  --no-tell-kernel: an image
    # file has no kernel's view to update, and telling it costs sfdisk a 250 ms sleep a call.
    sfdisk = ["sfdisk", "--quiet", "--no-tell-kernel"]
    ctx.runner.run([*sfdisk, "--disk-id", os.fspath(raw), disk_id])
    if layout.label == "gpt":
        for part in layout.partitions:
            ctx.runner.run([*sfdisk, "--part-uuid", os.fspath(raw), str(part.number), part_uuids[part.role]])
    ctx.runner.run(["parted", "--script", os.fspath(raw), "unit", "MiB", "print"])
    stack = ctx.stack.enter_context(contextlib.ExitStack())
    ctx.image = Image(request, layout, raw, final, uuids, part_uuids, disk_id, stack)


def before_the_kernel(settings: Settings) -> str:
    """What write_fstab makes of the settings, in words: part of the stage cache's key, since
    the kernel's initramfs and its hooks (u-boot-menu's, raspi-firmware's) read it; "" without a
    disk image.  From the settings alone (planned), as the partition step makes the disk: so
    --cache-keys prints the key a build uses without making one."""
    request = settings.disk
    if request is None:
        return ""
    layout, uuids, _part_uuids, _disk_id = planned(settings)
    words = (disk.fstab(layout, uuids, dict(request.labels)) +
             f"bootloader {request.bootloader}, board {settings.board.name if settings.board else '-'}, "
             f"serial console {settings.serial_port if settings.serial_console else '-'}\n")
    if settings.kernel_append and request.bootloader in ("u-boot", "raspi"):
        # Written with their defaults before the kernel (GRUB's and extlinux's come after the stage).
        words += f"kernel parameters {settings.kernel_append}\n"
    return words


def write_fstab(ctx: Context, image: Image) -> None:
    write_file(ctx.root, "/etc/fstab", disk.fstab(image.layout, image.uuids, dict(image.request.labels)))
    # initramfs-tools' resume hook would otherwise look at the *host's* swap (/proc/swaps).
    resume = f"RESUME=UUID={image.uuids['swap']}\n" if "swap" in image.uuids else "RESUME=none\n"
    write_file(ctx.root, "/etc/initramfs-tools/conf.d/resume", resume)
    loader.load(image.request.bootloader).prepare(ctx, image)


def install_bootloader(ctx: Context) -> None:
    """Step "bootloader": the chosen bootloader's module makes the tree (and the gap) boot."""
    assert ctx.image is not None
    loader.load(ctx.image.request.bootloader).install(ctx, ctx.image)


# -- the image step ---------------------------------------------------------------------------------------


def run(ctx: Context) -> None:
    image = ctx.image
    assert image is not None
    scratch = ctx.workdir / SCRATCH
    empty = scratch / "empty"  # what a mount point holds in the filesystem above it
    empty.mkdir(parents=True, mode=0o755)
    if ctx.epoch is not None:
        os.utime(empty, (ctx.epoch, ctx.epoch))
    for part in image.layout.partitions:
        if part.role != "bios_grub":
            with contextlib.ExitStack() as hidden:
                hide_other_filesystems(ctx, image, part, hidden, empty)
                make_filesystem(ctx, image, part, scratch)
    loader.load(image.request.bootloader).finish(ctx, image)
    image.stack.close()
    if not image.request.sparse:  # allocated in full, as the old zero-filled images were
        with open(image.raw, "r+b") as stream:
            os.posix_fallocate(stream.fileno(), 0, image.layout.image_size)
    if image.request.qcow2:
        qcow2 = ctx.outputs.partial(image.final)
        ctx.runner.run(["qemu-img", "convert", "-O", "qcow2", os.fspath(image.raw), os.fspath(qcow2)])
        image.raw.unlink()  # no IMAGE.raw is left behind


def hide_other_filesystems(ctx: Context, image: Image, part: disk.Partition, stack: contextlib.ExitStack,
                           empty: Path) -> None:
    """An empty directory mounted over every mount point below ``part``'s: the /boot of the
    tree goes into the /boot filesystem, the root filesystem holds an empty /boot (as under
    any mount), and the tree itself is left whole for the other outputs of the build."""
    if not part.mountpoint:
        return
    inside = part.mountpoint.rstrip("/") + "/"
    for other in image.layout.partitions:
        if other is not part and other.mountpoint.startswith(inside):
            target = ctx.root / other.mountpoint.lstrip("/")
            target.mkdir(parents=True, exist_ok=True)
            mounts.mount(ctx.runner, stack, os.fspath(empty), target, bind=True)


def make_filesystem(ctx: Context, image: Image, part: disk.Partition, scratch: Path) -> None:
    """``part``'s filesystem with its part of the tree, written into its byte range of the image."""
    source = ctx.root / part.mountpoint.lstrip("/") if part.mountpoint else None
    uuid, label = image.uuids[part.role], image.request.label_of(part.role)
    if part.fstype.startswith("ext"):
        assert source is not None
        fake_time = {"E2FSPROGS_FAKE_TIME": str(ctx.epoch)} if ctx.epoch is not None else {}
        ctx.runner.run(mkfs_ext_argv(part, image.raw, source, uuid, label=label,
                                     metadata_csum=ctx.settings.release.ext4_metadata_csum),
                       env=fake_time)
        if ctx.epoch is not None:
            reproducible.ext_times(ctx.runner, image.raw, part.start, source, epoch=ctx.epoch, scratch=scratch)
        return
    alone = scratch / f"{part.role}.fs"
    with open(alone, "wb") as stream:
        stream.truncate(part.size)
    if part.fstype == "vfat":
        assert source is not None
        fill_fat(ctx, part, alone, source, uuid=uuid, label=label)
    elif part.fstype == "swap":
        ctx.runner.run(["mkswap", "-L", label, "-U", uuid, os.fspath(alone)])
    elif part.fstype == "btrfs":
        assert source is not None
        ctx.runner.run(["mkfs.btrfs", "-q", "-f", "-L", label, "-U", uuid, "--rootdir",
                        os.fspath(source), os.fspath(alone)])
    else:
        assert source is not None
        fill_by_copy(ctx, part, alone, source, uuid=uuid, label=label)
    copy_into(alone, image.raw, part.start)
    alone.unlink()


def mkfs_ext_argv(part: disk.Partition, image: Path, source: Path, uuid: str, *, label: str,
                  metadata_csum: bool = True) -> list[str]:
    """mke2fs straight into the partition's range of the image file, populated from ``source``."""
    argv = [f"mkfs.{part.fstype}", "-q", "-F", "-L", label, "-U", uuid,
            "-E", f"offset={part.start},hash_seed={uuid},nodiscard", "-d", os.fspath(source)]
    if not metadata_csum:
        argv += ["-O", "^metadata_csum"]  # the release's e2fsck cannot read it (#827130)
    return [*argv, os.fspath(image), f"{part.size // 1024}k"]


def fill_fat(ctx: Context, part: disk.Partition, fat: Path, source: Path, *, uuid: str, label: str) -> None:
    """A FAT filesystem filled by mtools: nothing is mounted, so the host kernel needs no vfat driver."""
    fat.unlink()
    ctx.runner.run(mkfs_fat_argv(part, fat, uuid, label))
    files = [os.fspath(e) for e in sorted(source.iterdir()) if not e.is_symlink()]  # FAT has no symlinks
    if files:
        # -m: the files' own (clamped) times; mtools dates what it makes by SOURCE_DATE_EPOCH
        ctx.runner.run(["mcopy", "-s", "-p", "-m", "-Q", "-i", os.fspath(fat), *files, "::/"],
                       env={"MTOOLS_SKIP_CHECK": "1"})


def fill_by_copy(ctx: Context, part: disk.Partition, alone: Path, source: Path, *, uuid: str, label: str) -> None:
    """xfs, whose mkfs cannot take a directory: image empty, mounted and filled by cp."""
    ctx.runner.run(["mkfs.xfs", "-q", "-f", "-L", label, "-m", f"uuid={uuid}", os.fspath(alone)])
    with contextlib.ExitStack() as stack:
        device = LoopDevice(alone)
        stack.callback(device.detach)
        point = alone.with_suffix(".mnt")
        point.mkdir()
        stack.callback(point.rmdir)
        mounts.mount(ctx.runner, stack, device.path, point)
        faults.maybe_inject("xfs-mounted")  # a point inside the step: a loop device is attached here
        ctx.runner.run(["cp", "-a", "--sparse=always", f"{source}/.", os.fspath(point)])
