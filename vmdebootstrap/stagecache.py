"""The stage cache: the root filesystem as it stands after the packages step, reused.

Everything up to and including the packages step is decided by a few inputs: the
release, the architecture, the mirror and what it serves today, the components, the
variant, the package list, Recommends, the keyring, the bootstrapper and this tool's
version.  ``key`` hashes all of them (the mirror's state by its signed InRelease file,
so a point release or a security upload invalidates the entry by itself).  A build
whose key is in the cache skips debootstrap and apt entirely.  A disk image's fstab is
part of the key (it is in the tree before the kernel's initramfs is made); its
identifiers come from the seed, so the same image's rebuild finds its entry.

No copying either way:

* saving: the packages step built the tree in the work directory; it is *renamed*
  into ``CACHE/stages/KEY/root`` (the same filesystem: otherwise nothing is saved);
* using: an overlay mount puts the build's own upper directory over the cached tree,
  so the system, users and customize steps, the hook and ``finish`` change only the
  build's copy, and the cached tree is never written.

Entries are read under a shared lock and deleted only under an exclusive one: a build
that uses an entry keeps it alive.  The least recently used entries beyond
``KEEP_ENTRIES`` are deleted at the end of a build that saved one.  Partial entries of
killed builds (``.new-*``) are removed by the next build.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from . import __version__, mounts
from .digest import file_sha256
from .errors import BuildError
from .run import CommandRunner
from .settings import Settings

log = logging.getLogger("vmdebootstrap")

KEEP_ENTRIES = 6
# A save makes its partial entry (mkdtemp) an instant before it creates and locks the lock
# file inside; a partial entry without one is a killed build's only once it is this old.
LOCKLESS_GRACE = 60.0
INFO = "info.json"
LOCK = "lock"


@dataclasses.dataclass
class Entry:
    """One stage of the cache: the tree after the packages step, for one key."""

    key: str
    directory: Path  # CACHE/stages/KEY
    inputs: dict[str, object]

    @property
    def root(self) -> Path:
        return self.directory / "root"


def stages_dir(settings: Settings) -> Path | None:
    if settings.cache_dir is None or not settings.stage_cache:
        return None
    path = settings.cache_dir / "stages"
    path.mkdir(parents=True, exist_ok=True)
    return path


def tool_version() -> str:
    """The version and a hash of the code itself: a changed step invalidates what it made."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.rglob("*.py")):
        digest.update(path.read_bytes())
    return f"{__version__}+{digest.hexdigest()[:12]}"


def inputs(settings: Settings, packages: Sequence[str], bootstrapper: str, release_hash: str,
           image: str = "") -> dict[str, object]:
    """Everything that shapes the tree after the packages step (``image``: a disk image's
    fstab, written before the kernel's initramfs is made)."""
    bootstrap = settings.bootstrap
    return {
        "tool": tool_version(),
        "bootstrapper": bootstrapper,
        "suite": settings.release.name,
        "arch": settings.arch.name,
        "mirror": settings.mirrors.build,
        "release": release_hash,
        "components": list(settings.mirrors.components),
        "variant": bootstrap.variant,
        "debootstrapopts": list(bootstrap.extra_options),
        "keyring": file_sha256(bootstrap.keyring) if bootstrap.keyring else "",
        "check-gpg": bootstrap.check_gpg,
        "check-valid-until": bootstrap.check_valid_until,
        "recommends": settings.recommends,
        "packages": list(packages),
        "custom-packages": [file_sha256(deb) for deb in settings.custom_packages],
        "image": image,
    }


def key_of(values: dict[str, object]) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:32]


def lookup(settings: Settings, stack: contextlib.ExitStack, *, release_file: bytes | None,
           packages: Sequence[str], bootstrapper: str, image: str = "") -> tuple[Entry | None, bool]:
    """(this build's entry, or None when the cache is off or unusable; whether it is cached).

    ``release_file``: the mirror's InRelease for the release, what it serves today."""
    directory = stages_dir(settings)
    if directory is None:
        return None, False
    remove_partial(directory)
    if release_file is None:
        log.info("stage cache not used: the mirror's Release file for %s could not be read", settings.release)
        return None, False
    values = inputs(settings, packages, bootstrapper, hashlib.sha256(release_file).hexdigest(), image)
    key = key_of(values)
    entry = Entry(key, directory / key, values)
    fd = open_shared(entry.directory)
    if fd is None:
        return entry, False
    stack.callback(os.close, fd)  # held until the build ends: no one deletes it under us
    os.utime(entry.directory / INFO)  # most recently used
    return entry, True


def open_shared(directory: Path) -> int | None:
    """A shared lock on a complete entry, as a descriptor (None: no such entry, or being evicted)."""
    if not (directory / INFO).is_file():
        return None
    fd = _lock(directory / LOCK, fcntl.LOCK_SH)
    if fd is not None and not (directory / INFO).is_file():
        os.close(fd)
        return None
    return fd


def _lock(path: Path, how: int) -> int | None:
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


def use(runner: CommandRunner, stack: contextlib.ExitStack, workdir: Path, root: Path, entry: Entry) -> None:
    """Mount the build's writable layer over the cached tree at the target root."""
    upper, work = workdir / "upper", workdir / "overlay-work"
    upper.mkdir()
    work.mkdir()
    root.mkdir(exist_ok=True)
    options = f"lowerdir={entry.root},upperdir={upper},workdir={work}"
    mounts.mount(runner, stack, "overlay", root, fstype="overlay", options=options)


def save(runner: CommandRunner, stack: contextlib.ExitStack, workdir: Path, root: Path, entry: Entry) -> None:
    """Move the freshly built tree into the cache and continue on an overlay above it."""
    directory = entry.directory.parent
    runner.run(["apt-get", "clean"], chroot=root)  # the .debs stay in the package cache
    mounted = mounts.mounts_below(root)
    if mounted:
        raise BuildError(f"internal error: {mounted[0]} still mounted at the stage save")
    partial = Path(tempfile.mkdtemp(prefix=".new-", dir=directory))
    fd = os.open(partial / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)  # a partial entry whose lock is free is a killed build's
    try:
        os.rename(root, partial / "root")
    except OSError as exc:  # EXDEV: the work directory is on another filesystem
        os.close(fd)
        mounts.safe_rmtree(partial)
        log.info("stage not cached: cannot move %s into %s (%s)", root, directory, exc.strerror)
        return
    info = {"inputs": entry.inputs, "created": time.strftime("%Y-%m-%d %H:%M:%S")}
    (partial / INFO).write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")
    fcntl.flock(fd, fcntl.LOCK_SH)  # from now on a reader like any other
    try:
        os.rename(partial, entry.directory)
        saved = entry.root
    except OSError:  # another build saved the same key meanwhile: ours serves this build only
        saved = partial / "root"
        stack.callback(_remove_entry, partial)
    stack.callback(os.close, fd)
    log.info("stage saved in the cache as %s", entry.directory)
    use(runner, stack, workdir, root, dataclasses.replace(entry, directory=saved.parent))
    evict(directory, keep=entry.key)


def _remove_entry(directory: Path) -> None:
    if mounts.mounts_below(directory):
        return
    mounts.safe_rmtree(directory)


def remove_partial(directory: Path) -> None:
    """Entries a killed build left half made."""
    for partial in [*directory.glob(".new-*"), *directory.glob(".old-*")]:
        fd = _lock(partial / LOCK, fcntl.LOCK_EX)
        if fd is None and (partial / LOCK).exists():
            continue  # a running build's
        if fd is None and _seconds_since_made(partial) < LOCKLESS_GRACE:
            continue  # made a moment ago: its build is about to create and lock its lock file
        try:
            log.info("removing a partial stage-cache entry %s (left by a killed build)", partial)
            _remove_entry(partial)
        finally:
            if fd is not None:
                os.close(fd)


def _seconds_since_made(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return 0.0  # gone already: nothing to remove


def evict(directory: Path, keep: str, limit: int = KEEP_ENTRIES) -> list[Path]:
    """Delete the least recently used entries beyond ``limit`` that no build is using."""
    entries = [p for p in directory.iterdir() if not p.name.startswith(".") and (p / INFO).is_file()]
    entries.sort(key=lambda p: (p / INFO).stat().st_mtime, reverse=True)
    removed = []
    for entry in entries[limit:]:
        if entry.name == keep:
            continue
        fd = _lock(entry / LOCK, fcntl.LOCK_EX)
        if fd is None:
            continue  # in use
        try:
            trash = directory / f".old-{entry.name}"
            os.rename(entry, trash)
            log.info("stage cache: removed the least recently used entry %s", entry.name)
            mounts.safe_rmtree(trash)
            removed.append(entry)
        finally:
            os.close(fd)
    return removed
