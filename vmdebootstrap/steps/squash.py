"""The live root filesystem: ``DIR/filesystem.squashfs`` with the kernel beside it.

Fixes the old tool (vmdebootstrap-features.md §3.9, §6.4 item 7): the exclusions of
/proc, /sys, /dev and /run contents really work; ``-noappend`` so an existing
image is replaced, never appended to; free space is checked first; the result is
verified with unsquashfs and must be at least 1 MiB (live.rst: mksquashfs can fail
without saying so and leave a few KiB of junk) before it is renamed into place.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from .. import debian
from ..context import Context
from ..errors import BuildError
from ..settings import Settings

log = logging.getLogger("vmdebootstrap")

MIN_SQUASHFS_BYTES = 1024 * 1024
# Contents (not the directories themselves) that a live system gets at boot.
EXCLUDED = ("proc/*", "sys/*", "dev/*", "run/*")
# A compressed tree needs at most this share of its unpacked size, plus slack.
SPACE_FACTOR = {"xz": 0.5, "lzma": 0.5, "zstd": 0.6, "gzip": 0.6, "lzo": 0.75, "lz4": 0.8}


# The default compressor, chosen by measurement (docs/performance.md): zstd at level 9
# makes the standard live squashfs about 15 times faster than xz on two cores, 14 %
# larger, and it unpacks faster at boot.  Higher zstd levels cost xz's time for little.
# Debian's kernels read zstd squashfs from bookworm on (CONFIG_SQUASHFS_ZSTD=y, checked
# in its config); older targets get xz, which every Debian kernel reads.
DEFAULT_COMPRESSION = "zstd:9"
OLD_KERNEL_COMPRESSION = "xz"
ZSTD_FROM = "bookworm"


def compression(settings: Settings) -> str:
    """--squash-compression, or the default for the target release."""
    chosen = settings.text("squash-compression")
    if chosen:
        return chosen
    return DEFAULT_COMPRESSION if debian.at_least(settings.suite, ZSTD_FROM) else OLD_KERNEL_COMPRESSION


def squashfs_argv(root: Path, output: Path, compression: str) -> list[str]:
    name, _, level = compression.partition(":")
    return [
        "mksquashfs", os.fspath(root), os.fspath(output),
        "-noappend", "-no-progress", "-comp", name,
        *(["-Xcompression-level", level] if level else []),
        "-one-file-system", "-exit-on-error",
        "-wildcards", "-e", *EXCLUDED,
    ]  # fmt: skip


def tree_size(root: Path) -> int:
    total = 0
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        if rel in ("proc", "sys", "dev", "run"):
            dirnames[:] = []
            continue
        for name in filenames:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
            except OSError:
                pass
    return total


def check_free_space(root: Path, directory: Path, compression: str) -> None:
    needed = int(tree_size(root) * SPACE_FACTOR.get(compression.partition(":")[0], 1.0)) + 64 * 1024 * 1024
    stats = os.statvfs(directory)
    free = stats.f_bavail * stats.f_frsize
    if free < needed:
        raise BuildError(f"not enough free space in {directory} for the squashfs: about "
                         f"{needed // 2**20} MiB needed, {free // 2**20} MiB free")


def kernel_files(root: Path) -> list[tuple[Path, str]]:
    """(source, name in the output) for /boot's kernels and initrds, plus plain names for the newest."""
    boot = root / "boot"
    files = [(p, p.name) for p in sorted(boot.glob("*")) if p.is_file() and not p.is_symlink()]
    kernels = sorted((p for p, _ in files if p.name.startswith("vmlinuz-")), key=_version_key)
    if kernels:
        newest = kernels[-1].name[len("vmlinuz-"):]
        files.append((boot / f"vmlinuz-{newest}", "vmlinuz"))
        initrd = boot / f"initrd.img-{newest}"
        if initrd.is_file():
            files.append((initrd, "initrd.img"))
    return files


def _version_key(path: Path) -> list[object]:
    import re

    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def make(ctx: Context, outdir: Path, stage: Callable[[Path], Path]) -> dict[str, Path]:
    """Write the live files into ``outdir``; ``stage`` maps a final path to the path to write now.

    Returns the written files by their names in a live medium's /live directory.
    """
    settings, root = ctx.settings, ctx.root
    chosen = compression(settings)
    written: dict[str, Path] = {}
    for source, name in kernel_files(root):
        written[name] = stage(outdir / name)
        shutil.copy2(source, written[name])
    if not settings.flag("no-kernel") and "vmlinuz" not in written:
        raise BuildError(f"no kernel found in {root}/boot although {settings.kernel_package} was to be "
                         "installed")
    manifest = ctx.runner.run(["dpkg-query", "--show"], chroot=root, capture=True).output
    written["filesystem.packages"] = stage(outdir / "filesystem.packages")
    written["filesystem.packages"].write_text(manifest)

    check_free_space(root, outdir, chosen)
    squashfs = written["filesystem.squashfs"] = stage(outdir / "filesystem.squashfs")
    ctx.runner.run(squashfs_argv(root, squashfs, chosen))
    verify(ctx, squashfs)
    return {name: path for name, path in written.items()
            if name in ("vmlinuz", "initrd.img", "filesystem.squashfs", "filesystem.packages")}


def verify(ctx: Context, squashfs: Path) -> None:
    size = squashfs.stat().st_size if squashfs.exists() else 0
    if size < MIN_SQUASHFS_BYTES:
        raise BuildError(f"mksquashfs produced {size} bytes (less than 1 MiB): the output is junk, "
                         "most likely the disk filled up")
    ctx.runner.run(["unsquashfs", "-s", os.fspath(squashfs)])
    listing = ctx.runner.run(["unsquashfs", "-l", "-d", "/", os.fspath(squashfs)], capture=True, quiet=True)
    if "/etc/debian_version" not in listing.output:
        raise BuildError(f"{squashfs} does not list /etc/debian_version: the squashfs is damaged")
