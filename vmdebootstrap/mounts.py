"""Mounts, their undoing, and deletion that never crosses a mount.

A host whose /dev was wiped by ``rm -r`` of a work directory with devtmpfs still
mounted below it (andsens/bootstrap-vz#293) is the failure this module exists to
prevent: nothing here deletes while /proc/self/mountinfo lists a mount at or
below the path, and the chroot never gets the host's devtmpfs at all.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path

from .errors import BuildError
from .run import CommandRunner, namespace_ids

log = logging.getLogger("vmdebootstrap")

MountinfoReader = Callable[[], str]


def read_mountinfo() -> str:
    return Path("/proc/self/mountinfo").read_text()


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo octal.
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1 : i + 4].isdigit() and len(field[i + 1 : i + 4]) == 3:
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mount_points(reader: MountinfoReader = read_mountinfo) -> list[str]:
    points = []
    for line in reader().splitlines():
        fields = line.split()
        if len(fields) > 4:
            points.append(_unescape(fields[4]))
    return points


def mounts_below(path: str | Path, reader: MountinfoReader = read_mountinfo) -> list[str]:
    """Mount points at or below ``path``, deepest first."""
    base = os.path.realpath(path)
    found = [p for p in mount_points(reader) if p == base or p.startswith(base.rstrip("/") + "/")]
    return sorted(set(found), key=lambda p: p.count("/"), reverse=True)


def safe_rmtree(path: str | Path, reader: MountinfoReader = read_mountinfo) -> None:
    """Remove a tree, refusing if anything is mounted at or below it or it spans filesystems."""
    path = os.fspath(path)
    if not os.path.lexists(path):
        return
    mounted = mounts_below(path, reader)
    if mounted:
        raise BuildError(f"refusing to delete {path}: {mounted[0]} is still mounted")
    if os.path.islink(path) or not os.path.isdir(path):
        os.unlink(path)
        return
    top_dev = os.lstat(path).st_dev
    for dirpath, dirnames, _ in os.walk(path):
        for name in dirnames:
            sub = os.path.join(dirpath, name)
            st = os.lstat(sub)
            if st.st_dev != top_dev:
                raise BuildError(f"refusing to delete {path}: {sub} is on another filesystem")
    shutil.rmtree(path)


def signallable_pid(pid: int, proc: Path = Path("/proc")) -> int | None:
    """The PID by which this process can signal the process ``proc`` lists as ``pid``.

    The build runs in its own PID namespace but sees the host's /proc, which lists host
    PIDs: ``kill(host_pid)`` there would miss the process (or hit another one).  The
    NSpid line of /proc/PID/status gives the PID in each namespace from /proc's own down
    to the process's; ours has as many entries as we are deep.  None: the process is
    outside our namespace (not one of ours to kill).
    """
    try:
        own = namespace_ids((proc / "self/status").read_text(), "NSpid")
        theirs = namespace_ids((proc / str(pid) / "status").read_text(), "NSpid")
    except OSError:
        return None
    if not own or not theirs:
        return pid  # a kernel without NSpid (before 4.1) has no PID namespaces to translate
    if len(theirs) < len(own):
        return None
    return theirs[len(own) - 1]


def processes_rooted_in(root: str | Path, proc: Path = Path("/proc")) -> list[int]:
    """PIDs (as this process can signal them) whose root directory is ``root`` or below."""
    base = os.path.realpath(root)
    pids = []
    for entry in os.listdir(proc):
        if not entry.isdigit():
            continue
        try:
            proc_root = os.readlink(proc / entry / "root")
        except OSError:
            continue
        if proc_root == base or proc_root.startswith(base.rstrip("/") + "/"):
            pid = signallable_pid(int(entry), proc)
            if pid is None:
                log.warning("process %s runs inside %s but outside this build's PID namespace; not killed",
                            entry, root)
            else:
                pids.append(pid)
    return pids


def kill_processes_in(root: str | Path, proc: Path = Path("/proc")) -> list[int]:
    """SIGKILL what still runs inside the chroot (a daemon a postinst or hook left)."""
    pids = processes_rooted_in(root, proc)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if pids:
        log.warning("killed %d process(es) left running inside %s: %s", len(pids), root, pids)
        time.sleep(0.2)
    return pids


def unmount(runner: CommandRunner, target: str | Path, chroot_root: str | Path | None = None) -> None:
    """Unmount, killing chroot leftovers and retrying once; lazily detach as a last resort.

    A lazily detached mount is gone from the tree, so a later delete cannot reach it.
    """
    target = os.fspath(target)
    if runner.run(["umount", target], check=False).returncode == 0:
        return
    if chroot_root is not None:
        kill_processes_in(chroot_root)
    time.sleep(0.5)
    if runner.run(["umount", target], check=False).returncode == 0:
        return
    log.warning("%s is busy; detaching it lazily", target)
    if runner.run(["umount", "--lazy", target], check=False).returncode == 0:
        return
    if os.path.realpath(target) not in mount_points():
        log.warning("%s was unmounted already (by someone else)", target)
        return
    runner.run(["umount", "--lazy", target])  # fails again: the error names it


def unmount_below(runner: CommandRunner, path: str | Path, chroot_root: str | Path | None = None,
                  reader: MountinfoReader = read_mountinfo, keep: list[str] | None = None) -> list[str]:
    """Unmount everything at or below ``path``, deepest first, except the mounts listed in
    ``keep`` (a list from ``stacked_mounts_below``: a disk image's own root and /boot).
    Returns what was unmounted."""
    base = os.path.realpath(path)
    points = [p for p in mount_points(reader) if p == base or p.startswith(base.rstrip("/") + "/")]
    for kept in keep or []:
        if kept in points:  # the oldest mount at that place (mountinfo lists them in order)
            points.remove(kept)
    done = []
    for point in sorted(points, key=lambda p: p.count("/"), reverse=True):
        unmount(runner, point, chroot_root)
        done.append(point)
    return done


def stacked_mounts_below(path: str | Path, reader: MountinfoReader = read_mountinfo) -> list[str]:
    """Every mount at or below ``path``, as often as it is stacked there (for ``keep``)."""
    base = os.path.realpath(path)
    return [p for p in mount_points(reader) if p == base or p.startswith(base.rstrip("/") + "/")]


def mount(runner: CommandRunner, stack: contextlib.ExitStack, source: str, target: str | Path, *,
          fstype: str | None = None, options: str | None = None, bind: bool = False,
          chroot_root: str | Path | None = None) -> None:
    """Mount and register the unmount on ``stack`` in one move."""
    target = os.fspath(target)
    argv = ["mount"]
    if bind:
        argv.append("--bind")
    if fstype:
        argv += ["-t", fstype]
    if options:
        argv += ["-o", options]
    argv += [source, target]
    runner.run(argv)
    stack.callback(unmount, runner, target, chroot_root)

