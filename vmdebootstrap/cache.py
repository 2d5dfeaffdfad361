"""The persistent package cache (--cache-dir), shared between builds.

One directory of .deb files named as apt names them (debootstrap's --cache-dir
uses the same names), used by debootstrap directly and bind-mounted over the
target's /var/cache/apt/archives while our own apt runs.  It is never part of the
image: the bind mount is gone before the hook and the finishing steps run.
An exclusive lock serialises two builds' downloads into it.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from . import mounts
from .context import Context

log = logging.getLogger("vmdebootstrap")


def debs_dir(ctx: Context) -> Path | None:
    base = ctx.settings.text("cache-dir")
    if not base:
        return None
    path = Path(base) / "debs"
    (path / "partial").mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def locked(ctx: Context) -> Iterator[None]:
    """Hold the cache's lock (waiting for another build that holds it)."""
    directory = debs_dir(ctx)
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
    directory = debs_dir(ctx)
    if directory is None:
        yield
        return
    archives = ctx.root / "var/cache/apt/archives"
    archives.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        mounts.mount(ctx.runner, stack, os.fspath(directory), archives, bind=True, chroot_root=ctx.root)
        yield
