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

Entries are made, read, locked and evicted as cachestore.py has it: a build that uses
an entry keeps it alive; the least recently used entries beyond ``--cache-entries`` (default
``KEEP_ENTRIES``) are deleted at the end of a build that saved one; partial entries of killed builds
(``.new-*``) are removed by the next build.  The key's inputs are typed records
(``StageInputs``, and the base cache's ``BaseInputs``, a projection of them).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from . import __version__, cachestore, mounts
from .cachestore import INFO, Entry
from .digest import file_sha256
from .errors import BuildError
from .run import CommandRunner
from .settings import Settings

log = logging.getLogger("vmdebootstrap")

KEEP_ENTRIES = 6


@dataclasses.dataclass(frozen=True)
class BaseInputs:
    """What shapes the tree the bootstrapper makes (the base cache's key, basecache.py)."""

    tool: str
    bootstrapper: str
    suite: str
    arch: str
    mirror: str
    release: str  # the SHA-256 of the mirror's InRelease for the suite
    variant: str
    debootstrapopts: tuple[str, ...]
    keyring: str  # the keyring's SHA-256; "": the archive keyring
    check_gpg: bool
    check_valid_until: bool

    def values(self) -> dict[str, object]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class StageInputs(BaseInputs):
    """What shapes the tree after the packages step (the stage cache's key)."""

    # Not the base's: the required packages all come from main, and a base's build source is
    # given this build's components as it is copied (basecache.restore): a Raspberry Pi's
    # non-free-firmware build shares the bootstrap of every other arm64 build.
    components: tuple[str, ...]
    recommends: bool
    packages: tuple[str, ...]
    custom_packages: tuple[str, ...]  # the .debs' SHA-256
    image: str  # a disk image's fstab, written before the kernel's initramfs is made

    def base(self) -> BaseInputs:
        """The same inputs without those of the packages step."""
        return BaseInputs(**{field.name: getattr(self, field.name) for field in dataclasses.fields(BaseInputs)})


def enabled(settings: Settings) -> bool:
    """Whether the build uses the stage cache (and the base cache, which serves its misses)."""
    return settings.cache_dir is not None and settings.stage_cache


def stages_dir(settings: Settings) -> Path | None:
    if settings.cache_dir is None or not enabled(settings):
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
           image: str = "") -> StageInputs:
    """Everything that shapes the tree after the packages step (``image``: a disk image's
    fstab, written before the kernel's initramfs is made)."""
    bootstrap = settings.bootstrap
    return StageInputs(
        tool=tool_version(), bootstrapper=bootstrapper, suite=settings.release.name, arch=settings.arch.name,
        mirror=settings.mirrors.build, release=release_hash, components=tuple(settings.mirrors.components),
        variant=bootstrap.variant, debootstrapopts=tuple(bootstrap.extra_options),
        keyring=file_sha256(bootstrap.keyring) if bootstrap.keyring else "", check_gpg=bootstrap.check_gpg,
        check_valid_until=bootstrap.check_valid_until, recommends=settings.recommends, packages=tuple(packages),
        custom_packages=tuple(file_sha256(deb) for deb in settings.custom_packages), image=image,
    )


def key(made_of: StageInputs) -> str:
    """The entry's name in CACHE/stages."""
    return cachestore.key_of(made_of)


def lookup(settings: Settings, stack: contextlib.ExitStack, made_of: StageInputs | None) -> tuple[Entry | None, bool]:
    """(this build's entry, or None when the cache is off or unusable; whether it is cached).

    ``made_of``: the build's inputs (bootstrap.source), None when the mirror sent no Release file."""
    directory = stages_dir(settings)
    if directory is None:
        return None, False
    cachestore.remove_partial(directory)
    if made_of is None:
        log.info("stage cache not used: the mirror's Release file for %s could not be read", settings.release)
        return None, False
    name = key(made_of)
    entry = Entry(name, directory / name, made_of)
    fd = cachestore.open_shared(entry.directory)
    if fd is None:
        return entry, False
    stack.callback(os.close, fd)  # held until the build ends: no one deletes it under us
    os.utime(entry.directory / INFO)  # most recently used
    return entry, True


def use(runner: CommandRunner, stack: contextlib.ExitStack, workdir: Path, root: Path, entry: Entry) -> None:
    """Mount the build's writable layer over the cached tree at the target root."""
    upper, work = workdir / "upper", workdir / "overlay-work"
    upper.mkdir()
    work.mkdir()
    root.mkdir(exist_ok=True)
    options = f"lowerdir={entry.root},upperdir={upper},workdir={work}"
    mounts.mount(runner, stack, "overlay", root, fstype="overlay", options=options)


def save(runner: CommandRunner, stack: contextlib.ExitStack, workdir: Path, root: Path, entry: Entry, *,
         limit: int = KEEP_ENTRIES) -> None:
    """Move the freshly built tree into the cache and continue on an overlay above it (its apt
    archive cleaned: bootstrap.save_stage; the .debs stay in the package cache)."""
    mounted = mounts.mounts_below(root)
    if mounted:
        raise BuildError(f"internal error: {mounted[0]} still mounted at the stage save")
    staged = cachestore.begin(entry.directory.parent)
    try:
        os.rename(root, staged.root)
    except OSError as exc:  # EXDEV: the work directory is on another filesystem
        cachestore.discard(staged)
        log.info("stage not cached: cannot move %s into %s (%s)", root, entry.directory.parent, exc.strerror)
        return
    saved = cachestore.publish(staged, entry)
    if saved != entry.directory:  # another build saved the same key meanwhile: ours serves this build only
        stack.callback(cachestore.delete_held, saved, staged.fd)
    else:
        stack.callback(os.close, staged.fd)  # the shared lock, for as long as the overlay uses the tree
    log.info("stage saved in the cache as %s", entry.directory)
    use(runner, stack, workdir, root, dataclasses.replace(entry, directory=saved))
    cachestore.evict(entry.directory.parent, keep=entry.key, limit=limit)
