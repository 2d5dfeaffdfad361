"""What makes two builds of the same inputs give the same bytes (docs/reproducible.md).

* ``clamp_mtimes``: no file in the tree is newer than the build's epoch (SOURCE_DATE_EPOCH):
  files written during the build (by maintainer scripts, our steps, the hook) carry the
  epoch, files from packages keep their own older times.  Every output then holds the
  same times: the squashfs, the tarball, the ISO, the disk image's filesystems.
* ``remove_build_state``: files that record the build itself (logs, a cache keyed by
  inode times), each with the difference that found it.
* ``ext_times``: mke2fs -d copies the build host's atime and ctime of every file (the
  time our build touched it); debugfs sets them to the epoch afterwards.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from .errors import BuildError
from .run import CommandRunner

log = logging.getLogger("vmdebootstrap")

# (glob below the root, the difference it made between two builds of the same inputs): each
# was seen in two cold trixie builds (mmdebstrap and debootstrap, with man-db, python3,
# fontconfig, openssh-server and dbus) compared file by file without it.  Looked for and not
# different there, so kept: *.pyc, man-db's index, fontconfig's caches, apt's eipp.log.xz,
# the -old and passwd- style backups (docs/reproducible.md).
BUILD_STATE: tuple[tuple[str, str], ...] = (
    ("var/log/dpkg.log", "dpkg's log: the time of every installation"),
    ("var/log/alternatives.log", "update-alternatives' log: the time of every change"),
    ("var/log/bootstrap.log", "debootstrap's log: times and download progress"),
    ("var/log/apt/history.log", "apt's history: start and end times of every run"),
    ("var/log/apt/term.log", "apt's terminal log: start and end times of every run"),
    ("var/cache/ldconfig/aux-cache", "ldconfig's cache of the libraries' inode numbers and ctimes"),
)


def clamp_mtimes(root: Path, epoch: int) -> int:
    """No mtime below ``root`` later than ``epoch`` (symbolic links themselves, never their
    targets); the number of entries changed."""
    changed = 0
    for directory, dirnames, filenames in os.walk(root):
        for name in ["", *filenames, *_linked_dirs(directory, dirnames)]:
            path = os.path.join(directory, name) if name else directory
            if os.lstat(path).st_mtime > epoch:
                os.utime(path, (epoch, epoch), follow_symlinks=False)
                changed += 1
    return changed


def _linked_dirs(directory: str, dirnames: list[str]) -> list[str]:
    """os.walk lists a symbolic link to a directory (merged /usr's /bin) among the directories
    and does not enter it: it is a file here."""
    return [name for name in dirnames if os.path.islink(os.path.join(directory, name))]


def remove_build_state(root: Path) -> list[str]:
    """Remove the files of BUILD_STATE from the tree; what was removed, relative to the root."""
    removed = []
    for pattern, _why in BUILD_STATE:
        for path in sorted(root.glob(pattern)):
            if path.is_file() or path.is_symlink():
                path.unlink()
                removed.append(os.fspath(path.relative_to(root)))
    return removed


def _debugfs_quoted(path: str) -> str:
    # debugfs's parser takes a doubled quote inside quotes as a quote.
    return '"' + path.replace('"', '""') + '"'


def ext_times_script(source: Path, epoch: int) -> str:
    """debugfs commands setting atime and ctime of every file of ``source`` to ``epoch``.

    One ``cd`` per directory and names relative to it: debugfs then looks up one name per
    command instead of walking every path from the root (0.26 s instead of 0.95 s for a
    15,000-file trixie image, and the same filesystem but for its count of bytes written).
    """
    lines = []
    for directory, dirnames, filenames in os.walk(source):
        dirnames.sort()
        inside = "/" + os.path.relpath(directory, source) if directory != os.fspath(source) else "/"
        if "\n" in inside:
            log.warning("files below a directory whose name has a newline keep their build-time ctime: %r", inside)
            dirnames.clear()
            continue
        lines.append(f"cd {_debugfs_quoted(inside)}")
        for name in [".", *sorted([*filenames, *_linked_dirs(directory, dirnames)])]:
            if "\n" in name:
                log.warning("a file name with a newline keeps its build-time ctime: %r", os.path.join(inside, name))
                continue
            quoted = _debugfs_quoted(name)
            lines += [f"sif {quoted} atime @{epoch}", f"sif {quoted} ctime @{epoch}"]
    return "\n".join(lines) + "\n"


def ext_times(runner: CommandRunner, image: Path, offset: int, source: Path, *, epoch: int, scratch: Path) -> None:
    """Set the times mke2fs -d took from the build host (atime, ctime) to the epoch, in the
    ext filesystem at ``offset`` of ``image`` that was made from ``source``."""
    commands = scratch / "debugfs-times"
    commands.write_text(ext_times_script(source, epoch))
    result = runner.run(["debugfs", "-w", "-f", os.fspath(commands), f"{os.fspath(image)}?offset={offset}"],
                        env={"E2FSPROGS_FAKE_TIME": str(epoch)}, capture=True, quiet=True)
    commands.unlink()
    failures = [line for line in result.lines if ": " in line and not line.startswith(("debugfs", "sif ", "cd "))]
    if failures:
        raise BuildError(f"debugfs could not set the times of the filesystem at offset {offset}: {failures[0]}")
