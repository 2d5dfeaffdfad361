"""What the stage cache and the base cache share: a directory of entries, each made whole
before anyone sees it, read under a shared lock, deleted only under an exclusive one.

    CACHE/stages/KEY/{info.json, lock, root/}      (stagecache.py)
    CACHE/bases/KEY/{info.json, lock, root/}       (basecache.py)

An entry is made as ``.new-*`` (``begin``), under an exclusive lock on its own lock file,
filled by the caller, and renamed into place whole with its info.json (``publish``); a
killed build leaves only a ``.new-*`` whose lock nobody holds, which the next build
removes (``remove_partial``).  Readers hold a shared lock on the entry for as long as
they use it (``open_shared``); eviction (``evict``) takes the exclusive one without
waiting and skips what it cannot lock.  Keys hash an entry's inputs (``key_of``).

Whoever deletes an entry holds its lock until the tree is gone and unlinks the lock file
last (``delete_held``): a big tree takes minutes to delete under load, and an entry whose
lock file went first looked abandoned to every other build, which then deleted it too,
each failing on the files the others had removed.  Deleting someone else's leftovers is
housekeeping: when it fails, the build says so and goes on.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Protocol

from . import mounts
from .errors import BuildError

log = logging.getLogger("vmdebootstrap")

INFO = "info.json"
LOCK = "lock"
# ``begin`` makes its partial entry (mkdtemp) an instant before it creates and locks the lock
# file inside; a partial entry without one is a killed build's only once it is this old.
LOCKLESS_GRACE = 60.0


class Inputs(Protocol):
    """What made an entry (a typed record: stagecache.StageInputs, BaseInputs)."""

    def values(self) -> dict[str, object]:
        """The inputs by name, as info.json has them and as the key hashes them."""


@dataclasses.dataclass
class Entry:
    """One entry of a cache: its key, its directory (CACHE/KIND/KEY) and what made it."""

    key: str
    directory: Path
    inputs: Inputs

    @property
    def root(self) -> Path:
        return self.directory / "root"


@dataclasses.dataclass
class Staged:
    """An entry being made: ``directory`` (a ``.new-*``) and the exclusive lock on it."""

    directory: Path
    fd: int

    @property
    def root(self) -> Path:
        return self.directory / "root"


def key_of(inputs: Inputs) -> str:
    return hashlib.sha256(json.dumps(inputs.values(), sort_keys=True).encode()).hexdigest()[:32]


def begin(cache: Path) -> Staged:
    """A new partial entry in ``cache``, locked: a ``.new-*`` whose lock is free is a killed build's."""
    partial = Path(tempfile.mkdtemp(prefix=".new-", dir=cache))
    fd = os.open(partial / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return Staged(partial, fd)


def publish(staged: Staged, entry: Entry) -> Path:
    """Write the entry's info.json and rename it into place, whole; its lock becomes a shared
    one (the caller closes ``staged.fd`` when it is done reading).  Returns where the tree
    is: ``entry.directory``, or the partial directory when another build published the same
    key meanwhile (then the caller removes it when done)."""
    info = {"inputs": entry.inputs.values(), "created": time.strftime("%Y-%m-%d %H:%M:%S")}
    (staged.directory / INFO).write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")
    fcntl.flock(staged.fd, fcntl.LOCK_SH)  # from now on a reader like any other
    try:
        os.rename(staged.directory, entry.directory)
    except OSError:  # an entry of that key is there already
        return staged.directory
    return entry.directory


def discard(staged: Staged) -> None:
    """Give up a partial entry: its files, then its lock."""
    delete_held(staged.directory, staged.fd)


def delete_held(directory: Path, fd: int) -> None:
    """Delete an entry whose lock ``fd`` holds, the lock file last, then let the lock go."""
    try:
        _delete(directory)
    finally:
        os.close(fd)


def _delete(directory: Path) -> None:
    """An entry's files, its lock file last; nothing while something is mounted below it (a
    running build's overlay)."""
    if not directory.is_dir() or mounts.mounts_below(directory):
        return  # gone already, or in use
    for child in directory.iterdir():
        if child.name != LOCK:
            mounts.safe_rmtree(child)
    (directory / LOCK).unlink(missing_ok=True)
    directory.rmdir()


def open_shared(directory: Path) -> int | None:
    """A shared lock on a complete entry, as a descriptor (None: no such entry, or being evicted)."""
    if not (directory / INFO).is_file():
        return None
    fd = lock(directory / LOCK, fcntl.LOCK_SH)
    if fd is not None and not (directory / INFO).is_file():
        os.close(fd)
        return None
    return fd


def lock(path: Path, how: int) -> int | None:
    """``how`` (LOCK_SH, LOCK_EX) on ``path`` without waiting, as a descriptor (None: taken, or no file)."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, how | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def remove_partial(cache: Path) -> None:
    """Entries a killed build left half made (or half evicted)."""
    for partial in [*cache.glob(".new-*"), *cache.glob(".old-*")]:
        fd = lock(partial / LOCK, fcntl.LOCK_EX)
        if fd is None and (partial / LOCK).exists():
            continue  # a running build's, or being deleted by one
        if fd is None and _seconds_since_made(partial) < LOCKLESS_GRACE:
            continue  # made a moment ago: its build is about to create and lock its lock file
        log.info("removing a partial cache entry %s (left by a killed build)", partial)
        _tidy(partial, fd)


def _tidy(directory: Path, fd: int | None) -> None:
    """Delete a leftover entry (``fd``: its lock, None when it has no lock file); a failure is logged."""
    try:
        _delete(directory)
    except (OSError, BuildError) as exc:
        log.warning("cache: could not remove %s (%s); the build goes on", directory, exc)
    finally:
        if fd is not None:
            os.close(fd)


def _seconds_since_made(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return 0.0  # gone already: nothing to remove


def evict(cache: Path, keep: str, limit: int) -> list[Path]:
    """Delete the least recently used entries beyond ``limit`` that no build is using."""
    entries = [p for p in cache.iterdir() if not p.name.startswith(".") and (p / INFO).is_file()]
    entries.sort(key=lambda p: (p / INFO).stat().st_mtime, reverse=True)
    removed = []
    for entry in entries[limit:]:
        if entry.name == keep:
            continue
        fd = lock(entry / LOCK, fcntl.LOCK_EX)
        if fd is None:
            continue  # in use
        trash = cache / f".old-{entry.name}"
        try:
            os.rename(entry, trash)
        except OSError:  # another build evicted it first
            os.close(fd)
            continue
        log.info("cache: removing the least recently used entry %s", entry)
        _tidy(trash, fd)
        removed.append(entry)
    return removed
