"""The persistent package cache (--cache-dir), shared between builds.

One directory of .deb files named as apt names them (debootstrap's --cache-dir
uses the same names), used by debootstrap directly and, for our own apt runs,
bind-mounted over the target's /var/cache/apt/archives for the download only; the
files are then linked into the target, and ``apt-get clean`` removes the links.  It is
never part of the image.  An exclusive lock serialises two builds' downloads into it;
installations run outside the lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from . import mounts
from .context import Context
from .settings import Settings

log = logging.getLogger("vmdebootstrap")


def debs_path(settings: Settings) -> Path | None:
    """Where the .debs are kept, made or not (--cache-keys looks without making anything)."""
    return settings.cache_dir / "debs" if settings.cache_dir is not None else None


def debs_dir(settings: Settings) -> Path | None:
    path = debs_path(settings)
    if path is not None:
        (path / "partial").mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def locked(settings: Settings) -> Iterator[None]:
    """Hold the cache's lock (waiting for another build that holds it)."""
    directory = debs_dir(settings)
    if directory is None:
        yield
        return
    fd = os.open(directory.parent / "lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("waiting for another build to release the package cache %s", directory.parent)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def apt_archives(ctx: Context) -> Iterator[None]:
    """The cache as the target's apt archive directory, for the duration."""
    directory = debs_dir(ctx.settings)
    if directory is None:
        yield
        return
    archives = ctx.root / "var/cache/apt/archives"
    archives.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        mounts.mount(ctx.runner, stack, os.fspath(directory), archives, bind=True, chroot_root=ctx.root)
        yield


def link_into(ctx: Context, debs: Path, names: list[str]) -> None:
    """Hard-link (or copy, across filesystems) cached .debs into the target's archives."""
    archives = ctx.root / "var/cache/apt/archives"
    archives.mkdir(parents=True, exist_ok=True)
    for name in names:
        source, target = debs / name, archives / name
        if "/" in name or not source.is_file() or target.exists():
            continue
        try:
            os.link(source, target)
        except OSError:
            shutil.copy2(source, target)
