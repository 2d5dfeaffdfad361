"""Name the full filesystem when a build fails for lack of space.

"No space left on device" in the last lines of apt's or debootstrap's output, or an
OSError with errno ENOSPC, says *that* a disk is full, not *which*: the build writes
to its work directory, its output directories and the package cache, often on
different filesystems.  The one with the least free space is named, with its mount
point and what of ours lives there (reliability.md B22).

The free space is that of the moment the step failed (``remember``, called by
recipe.running): by the time the error is reported the cleanup has emptied the work
directory and the full filesystem looks roomy again.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from . import mounts
from .options import BY_NAME
from .run import CommandFailed
from .settings import Settings

TEXT = "No space left on device"
_SNAPSHOT = "vmdebootstrap_free_space"  # attribute of the exception: {mount point: (free, total)}


@dataclasses.dataclass(frozen=True)
class Usage:
    mount_point: str
    device: int
    free: int
    total: int


def _existing(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _space(path: str) -> tuple[int, int]:
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize, stats.f_blocks * stats.f_frsize


def usage(path: Path, snapshot: dict[str, tuple[int, int]] | None = None) -> Usage:
    """The filesystem that holds ``path`` (or its nearest existing ancestor); its free
    space as ``snapshot`` recorded it, if it did."""
    path = Path(os.path.realpath(_existing(path)))
    point = path
    while not os.path.ismount(point) and point != point.parent:
        point = point.parent
    free, total = (snapshot or {}).get(os.fspath(point)) or _space(os.fspath(path))
    return Usage(os.fspath(point), os.stat(path).st_dev, free, total)


UsageReader = Callable[[Path], Usage]


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def is_disk_full(exc: BaseException) -> bool:
    for link in _chain(exc):
        if isinstance(link, OSError) and link.errno == errno.ENOSPC:
            return True
        if isinstance(link, CommandFailed) and any(TEXT in line for line in link.tail):
            return True
        if TEXT in str(link):
            return True
    return False


def remember(exc: BaseException, reader: mounts.MountinfoReader = mounts.read_mountinfo) -> None:
    """Record every filesystem's free space on ``exc`` if it is about a full disk, while it still is."""
    if not is_disk_full(exc) or hasattr(exc, _SNAPSHOT):
        return
    snapshot = {}
    # "/" too: in a plain chroot (pbuilder's, a build inside a chroot) mountinfo does not list
    # the root, which os.path.ismount still takes for a mount point (usage() looks it up).
    for point in dict.fromkeys(["/", *mounts.mount_points(reader)]):
        try:
            snapshot[point] = _space(point)
        except OSError:
            continue
    setattr(exc, _SNAPSHOT, snapshot)


def _snapshot(exc: BaseException) -> dict[str, tuple[int, int]] | None:
    for link in _chain(exc):
        found = getattr(link, _SNAPSHOT, None)
        if isinstance(found, dict):
            return found
    return None


def places(settings: Settings) -> list[tuple[str, Path]]:
    """(what, where) the build writes: its work directory, outputs and package cache."""
    found = [("work directory", settings.workdir or Path(tempfile.gettempdir()))]
    for kind, target in settings.outputs.items():
        found.append((f"--{kind} output", target if BY_NAME[kind].output == "directory" else target.parent))
    if settings.cache_dir is not None:
        found.append(("package cache", settings.cache_dir))
    return found


def explain(exc: BaseException, where: list[tuple[str, Path]], reader: UsageReader | None = None) -> str | None:
    """'no space left on device: the filesystem at M (the work directory W) is too small (T MiB, F MiB
    free after the failure)', or None when ``exc`` is not about a full disk."""
    if not is_disk_full(exc):
        return None
    if reader is None:
        snapshot = _snapshot(exc)

        def reader(path: Path) -> Usage:
            return usage(path, snapshot)
    candidates = list(where)
    for link in _chain(exc):  # the files an OSError names (shutil.copy names source and target)
        if isinstance(link, OSError):
            for name in (link.filename, link.filename2):
                if isinstance(name, str) and name:
                    candidates.append(("file", Path(name)))
    filesystems: dict[int, tuple[Usage, list[str]]] = {}
    for what, path in candidates:
        try:
            found = reader(path)
        except OSError:
            continue
        label = os.fspath(path) if what == "file" else f"the {what} {path}"
        filesystems.setdefault(found.device, (found, []))[1].append(label)
    if not filesystems:
        return "no space left on device"
    fullest, labels = min(filesystems.values(), key=lambda item: item[0].free)
    # Name what of ours lives there; a file an OSError named only when nothing else does.
    ours = [label for label in labels if label.startswith("the ")] or labels[:1]
    # "After the failure": a command that fails for want of space often deletes what it
    # was writing (dpkg does), so the space it found missing may be free again.
    return (f"no space left on device: the filesystem at {fullest.mount_point} ({', '.join(ours)}) is too "
            f"small ({fullest.total // 2**20} MiB, {fullest.free // 2**20} MiB free after the failure)")
