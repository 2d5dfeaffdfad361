"""The build's work directory: created with a marker, removed without crossing mounts.

The marker file is held under an exclusive lock for the whole build.  A build that
was SIGKILLed leaves its directory behind (its mounts died with its namespace); the
next build finds the marker unlocked, knows the directory is stale and removes it,
with the partial outputs its journal lists (publish.py).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import tempfile
from pathlib import Path

from . import mounts, publish
from .run import CommandRunner

log = logging.getLogger("vmdebootstrap")

PREFIX = "vmdebootstrap-"
MARKER = ".vmdebootstrap-workdir"
JOURNAL = ".vmdebootstrap-staged"  # the journal of the build's partial outputs (publish.py)


def create(parent: Path | None, runner: CommandRunner, stack: contextlib.ExitStack) -> Path:
    parent = parent or Path(tempfile.gettempdir())
    remove_stale(parent, runner)
    path = Path(tempfile.mkdtemp(prefix=PREFIX, dir=parent))
    fd = os.open(path / MARKER, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.write(fd, b"vmdebootstrap work directory; safe to delete when no build holds its lock\n")
    stack.callback(remove, path, runner, fd)
    log.debug("work directory %s", path)
    return path


def remove(path: Path, runner: CommandRunner, fd: int) -> None:
    mounts.unmount_below(runner, path, path / "root")
    mounts.kill_processes_in(path / "root")
    os.close(fd)
    mounts.safe_rmtree(path)


def remove_stale(parent: str | Path, runner: CommandRunner) -> list[Path]:
    removed = []
    for candidate in sorted(Path(parent).glob(PREFIX + "*")):
        marker = candidate / MARKER
        if not marker.is_file() or marker.is_symlink():
            continue
        fd = os.open(marker, os.O_RDONLY)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a running build owns it
            log.warning("removing stale work directory %s (left by a build that was killed)", candidate)
            mounts.unmount_below(runner, candidate)
            for leftover in publish.remove_leftovers(candidate / JOURNAL):
                log.warning("removed %s, left half written by that build", leftover)
            mounts.safe_rmtree(candidate)
            removed.append(candidate)
        finally:
            os.close(fd)
    return removed
