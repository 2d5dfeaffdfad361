"""Output "squash" (step "squashfs"): ``DIR/filesystem.squashfs`` with the kernel beside it.

Reads: the finished tree, settings.squash_compression.  Writes: the live files under
their partial names in the --squash directory (or, for an ISO alone, in the work
directory); ctx.live_files for the ISO.  Undoes: nothing (partial files go with a
failed build).

The contents of /proc, /sys, /dev and /run are excluded; ``-noappend`` replaces an
existing image instead of appending to it; free space is checked first; the result is
verified with unsquashfs and must be at least 1 MiB (live.rst: mksquashfs can fail
without saying so and leave a few KiB of junk).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path

from ..chroot import package_listing
from ..context import Context
from ..errors import BuildError
from ..settings import Settings
from ..values import Compression

log = logging.getLogger("vmdebootstrap")

NAME = "squash"
STEP = "squashfs"
MIN_SQUASHFS_BYTES = 1024 * 1024
# Contents (not the directories themselves) that a live system gets at boot.
EXCLUDED = ("proc/*", "sys/*", "dev/*", "run/*")
LIVE_FILES = ("vmlinuz", "initrd.img", "filesystem.squashfs", "filesystem.packages")


def wanted(settings: Settings) -> bool:
    return NAME in settings.outputs or "iso" in settings.outputs  # an ISO carries the squashfs


def note(ctx: Context) -> str:
    return f" ({ctx.settings.squash_compression})"


def stem(final: Path) -> Path:
    return final / "filesystem"  # filesystem.packages is a live file: the ISO has it too


def packages(_settings: Settings) -> list[str]:
    return []


def downloads(_settings: Settings) -> list[str]:
    return []


def host_tools(_settings: Settings | None) -> Mapping[str, str]:
    return {"mksquashfs": "squashfs-tools", "unsquashfs": "squashfs-tools"}


def squashfs_argv(root: Path, output: Path, compression: Compression) -> list[str]:
    level = compression.level
    return [
        "mksquashfs", os.fspath(root), os.fspath(output),
        "-noappend", "-no-progress", "-comp", compression.compressor.name,
        *(["-Xcompression-level", str(level)] if level is not None else []),
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


def check_free_space(root: Path, directory: Path, compression: Compression) -> None:
    needed = int(tree_size(root) * compression.compressor.space_factor) + 64 * 1024 * 1024
    stats = os.statvfs(directory)
    free = stats.f_bavail * stats.f_frsize
    if free < needed:
        raise BuildError(f"not enough free space in {directory} for the squashfs: about "
                         f"{needed // 2**20} MiB needed, {free // 2**20} MiB free")


def kernel_files(root: Path, image: str = "vmlinuz") -> list[tuple[Path, str]]:
    """(source, name in the output) for /boot's kernels and initrds, plus plain names for the
    newest; ``image`` is the kernel's file name on the architecture (architectures.py)."""
    boot = root / "boot"
    files = [(p, p.name) for p in sorted(boot.glob("*")) if p.is_file() and not p.is_symlink()]
    kernels = sorted((p for p, _ in files if p.name.startswith(f"{image}-")), key=_version_key)
    if kernels:
        newest = kernels[-1].name[len(f"{image}-"):]
        files.append((boot / f"{image}-{newest}", image))
        initrd = boot / f"initrd.img-{newest}"
        if initrd.is_file():
            files.append((initrd, "initrd.img"))
    return files


def _version_key(path: Path) -> list[object]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def run(ctx: Context) -> None:
    """Write the live files; ctx.live_files names them as a live medium's /live has them."""
    chosen = ctx.settings.outputs.get(NAME)
    if chosen is not None:
        directory = ctx.outputs.directory(chosen)

        def place(name: str) -> Path:
            return ctx.outputs.partial(directory / name)
    else:  # only for the ISO: not published on its own
        directory = ctx.workdir / "live"
        directory.mkdir()

        def place(name: str) -> Path:
            return directory / name
    written = write(ctx, directory, place)
    ctx.live_files = {name: path for name, path in written.items() if name in LIVE_FILES}


def write(ctx: Context, directory: Path, place: Callable[[str], Path]) -> dict[str, Path]:
    """The kernels, initrds, package list and squashfs, each at ``place(its name)``."""
    settings, root = ctx.settings, ctx.root
    written: dict[str, Path] = {}
    image = settings.arch.kernel_image
    for source, name in kernel_files(root, image):
        written[name] = place(name)
        shutil.copy2(source, written[name])
    if settings.kernel_package and image not in written:
        raise BuildError(f"no kernel found in {root}/boot although {settings.kernel_package} was to be "
                         "installed")
    written["filesystem.packages"] = place("filesystem.packages")
    written["filesystem.packages"].write_text(package_listing(ctx))

    check_free_space(root, directory, settings.squash_compression)
    squashfs = written["filesystem.squashfs"] = place("filesystem.squashfs")
    ctx.runner.run(squashfs_argv(root, squashfs, settings.squash_compression))
    verify(ctx, squashfs)
    return written


def verify(ctx: Context, squashfs: Path) -> None:
    size = squashfs.stat().st_size if squashfs.exists() else 0
    if size < MIN_SQUASHFS_BYTES:
        raise BuildError(f"mksquashfs produced {size} bytes (less than 1 MiB): the output is junk, "
                         "most likely the disk filled up")
    ctx.runner.run(["unsquashfs", "-s", os.fspath(squashfs)])
    listing = ctx.runner.run(["unsquashfs", "-l", "-d", "/", os.fspath(squashfs)], capture=True, quiet=True)
    if "/etc/debian_version" not in listing.output:
        raise BuildError(f"{squashfs} does not list /etc/debian_version: the squashfs is damaged")
