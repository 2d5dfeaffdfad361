"""The base cache: the tree as the bootstrapper left it, shared by builds whose package
lists differ.

The stage cache (stagecache.py) keeps the tree after the packages step, so it serves
only a build with the same package list.  A live ISO and a disk image of the same
release and architecture, or two images with different kernels, still run the same
bootstrap: minutes under qemu-user (thirteen for trixie arm64 on a busy 2-core machine).
This cache keeps that tree, keyed by the stage key's inputs without those of the
packages step (the package list, Recommends, custom packages, a disk image's fstab).

Unlike a stage, a base is written to: the packages step installs into it.  So it is
copied both ways with ``cp -a --reflink=auto`` (hard links, ownership, modes, ACLs,
xattrs and capabilities kept; instant on btrfs or XFS, about a second for a 300 MB
tree elsewhere), never mounted.

Two builds that need the same missing base at the same time (make check's two arm64
sessions, a CI matrix) would both bootstrap it; the second waits instead, under an
exclusive lock the first holds while it bootstraps, and then copies the result.  A
build that dies releases the lock with its descriptor; the waiter then bootstraps
itself.  Entries are made, read, evicted (``KEEP_BASES``, least recently used first) and
cleaned up after a killed build as cachestore.py has it, exactly as stage entries are.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from . import cachestore, mounts
from .cachestore import INFO, Entry
from .chroot import write_file
from .run import CommandFailed, CommandRunner
from .stagecache import StageInputs

log = logging.getLogger("vmdebootstrap")

KEEP_BASES = 4


def key(made_of: StageInputs) -> str:
    """The name in CACHE/bases of the base of the stage ``made_of`` makes: its inputs are the
    stage's without those of the packages step."""
    return cachestore.key_of(made_of.base())


def entry_for(stage: Entry) -> Entry:
    """The base entry beside the build's stage entry (CACHE/bases/KEY)."""
    assert isinstance(stage.inputs, StageInputs)
    directory = stage.directory.parent.parent / "bases"
    directory.mkdir(exist_ok=True)
    name = key(stage.inputs)
    return Entry(name, directory / name, stage.inputs.base())


@contextlib.contextmanager
def claimed(base: Entry, description: str) -> Iterator[bool]:
    """Yields whether ``base`` is in the cache; while the block runs, this build alone may make it.

    Waits while another build makes the same base.  When the base is there, the entry's
    shared lock is held for the block (no eviction while it is copied)."""
    cachestore.remove_partial(base.directory.parent)
    making = _lock_blocking(base.directory.parent / f".making-{base.key}", description)
    try:
        reading = cachestore.open_shared(base.directory)
        try:
            if reading is not None:
                os.utime(base.directory / INFO)  # most recently used
            yield reading is not None
        finally:
            if reading is not None:
                os.close(reading)
    finally:
        os.close(making)


def _lock_blocking(path: Path, description: str) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        log.info("waiting for another build that is bootstrapping the same base (%s): it will be copied from "
                 "the base cache", description)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # a signal's exception ends the wait
        except BaseException:
            os.close(fd)
            raise
    return fd


def restore(runner: CommandRunner, base: Entry, root: Path, components: Sequence[str]) -> None:
    """Copy the cached base to the (missing or empty) target root, its build source given
    this build's ``components`` (they are not in the base's key: stagecache.StageInputs)."""
    root.mkdir(mode=0o755, exist_ok=True)
    runner.run(["cp", "-a", "--reflink=auto", f"{base.root}/.", f"{root}/"])
    sources = root / "etc/apt/sources.list"
    if sources.is_file() and not sources.is_symlink():  # never read or write through a link out of the root
        write_file(root, "/etc/apt/sources.list", with_components(sources.read_text(), components))


def with_components(sources: str, components: Sequence[str]) -> str:
    """One-line sources (what debootstrap and mmdebstrap write) with ``components``:
    ``deb [OPTIONS] URI SUITE COMPONENT...``."""
    lines = []
    for line in sources.splitlines():
        fields = line.split()
        if not fields or fields[0] != "deb":
            lines.append(line)
            continue
        start = 1
        if fields[1].startswith("["):  # options, up to the field that closes them
            start = next(i for i, field in enumerate(fields) if field.endswith("]")) + 1
        lines.append(" ".join([*fields[:start + 2], *components]))
    return "".join(f"{line}\n" for line in lines)


def save(runner: CommandRunner, base: Entry, root: Path, limit: int = KEEP_BASES) -> None:
    """Copy the freshly bootstrapped tree into the cache (before anything else changes it)."""
    # The root's own tmpfs (Settings.root_in_memory) is no mount a copy goes through.
    mounted = [point for point in mounts.mounts_below(root) if point != os.path.realpath(root)]
    if mounted:  # the bootstrappers unmount what they mounted; a copy must not go through one
        log.info("base not cached: %s is still mounted after the bootstrap", mounted[0])
        return
    staged = cachestore.begin(base.directory.parent)
    try:
        staged.root.mkdir()
        runner.run(["cp", "-a", "--reflink=auto", f"{root}/.", f"{staged.root}/"])
    except CommandFailed as exc:  # the cache's filesystem is full, say: the build goes on without it
        log.warning("base not cached: %s", exc)
        cachestore.discard(staged)
        return
    except BaseException:
        cachestore.discard(staged)
        raise
    saved = cachestore.publish(staged, base)
    if saved != base.directory:  # an entry of that key is there after all: keep it
        cachestore.delete_held(saved, staged.fd)
        return
    os.close(staged.fd)
    log.info("base saved in the base cache as %s", base.directory)
    cachestore.evict(base.directory.parent, keep=base.key, limit=limit)
