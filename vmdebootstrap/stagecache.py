"""The stage cache: the root filesystem as it stands after the packages step, reused.

Everything up to and including the packages step is decided by a few inputs: the
release, the architecture, the mirror and what it serves today, the components, the
variant, the package list, Recommends, the keyring, the bootstrapper and this tool's
version.  ``key`` hashes all of them (the mirror's state by its signed InRelease file,
so a point release or a security upload invalidates the entry by itself).  A build
whose key is in the cache skips debootstrap and apt entirely.

No copying either way:

* saving: the packages step built the tree in the work directory; it is *renamed*
  into ``CACHE/stages/KEY/root`` (the same filesystem: otherwise nothing is saved);
* using: an overlay mount puts the build's own upper directory over the cached tree,
  so the system, users and customize steps, the hook and ``finish`` change only the
  build's copy, and the cached tree is never written.

Entries are read under a shared lock and deleted only under an exclusive one: a build
that uses an entry keeps it alive.  The least recently used entries beyond
``KEEP_ENTRIES`` are deleted at the end of a build that saved one.  Partial entries of
killed builds (``.new-*``) are removed by the next build.  Disk images do not use the
cache: their root is a filesystem of its own, which an overlay cannot be.
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
import urllib.error
import urllib.request
from pathlib import Path

from . import __version__, mounts
from .context import Context
from .errors import BuildError

log = logging.getLogger("vmdebootstrap")

KEEP_ENTRIES = 6
INFO = "info.json"
LOCK = "lock"


@dataclasses.dataclass
class Stage:
    key: str
    directory: Path  # CACHE/stages/KEY
    inputs: dict[str, object]

    @property
    def root(self) -> Path:
        return self.directory / "root"


def stages_dir(ctx: Context) -> Path | None:
    base = ctx.settings.text("cache-dir")
    if not base or not ctx.settings.flag("stage-cache") or ctx.settings.text("image"):
        return None
    path = Path(base) / "stages"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _file_hash(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def mirror_state(mirror: str, suite: str) -> str | None:
    """The hash of the suite's InRelease (or Release) on the mirror: what it serves today."""
    base = mirror.rstrip("/")
    for name in ("InRelease", "Release"):
        try:
            with urllib.request.urlopen(f"{base}/dists/{suite}/{name}", timeout=20) as response:
                return hashlib.sha256(response.read()).hexdigest()
        except (urllib.error.URLError, OSError, ValueError):
            continue
    return None


def tool_version() -> str:
    """The version and a hash of the code itself: a changed step invalidates what it made."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.rglob("*.py")):
        digest.update(path.read_bytes())
    return f"{__version__}+{digest.hexdigest()[:12]}"


def inputs(ctx: Context, bootstrapper: str, release_hash: str) -> dict[str, object]:
    """Everything that shapes the tree after the packages step."""
    s = ctx.settings
    return {
        "tool": tool_version(),
        "bootstrapper": bootstrapper,
        "suite": s.suite,
        "arch": s.arch,
        "mirror": s.text("mirror"),
        "release": release_hash,
        "components": s.items("components"),
        "variant": s.text("variant"),
        "debootstrapopts": s.items("debootstrapopts"),
        "keyring": _file_hash(s.text("keyring")) if s.text("keyring") else "",
        "check-gpg": s.flag("check-gpg"),
        "recommends": s.flag("recommends"),
        "packages": list(s.packages),
        "custom-packages": [_file_hash(deb) for deb in s.items("custom-package")],
    }


def key_of(values: dict[str, object]) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:32]


def lookup(ctx: Context, bootstrapper: str) -> tuple[Stage | None, bool]:
    """(the stage for this build or None when the cache is off or unusable, whether it is cached)."""
    directory = stages_dir(ctx)
    if directory is None:
        return None, False
    remove_partial(directory)
    release = mirror_state(ctx.settings.text("mirror"), ctx.settings.suite)
    if release is None:
        log.info("stage cache not used: the mirror's Release file for %s could not be read",
                 ctx.settings.suite)
        return None, False
    values = inputs(ctx, bootstrapper, release)
    key = key_of(values)
    stage = Stage(key, directory / key, values)
    if not (stage.directory / INFO).is_file():
        return stage, False
    fd = _lock(stage.directory / LOCK, fcntl.LOCK_SH)
    if fd is None or not (stage.directory / INFO).is_file():
        return stage, False
    ctx.stack.callback(os.close, fd)  # held until the build ends: no one deletes it under us
    os.utime(stage.directory / INFO)  # most recently used
    return stage, True


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


def use(ctx: Context, stage: Stage) -> None:
    """Mount the build's writable layer over the cached tree at the target root."""
    upper, work = ctx.workdir / "upper", ctx.workdir / "overlay-work"
    upper.mkdir()
    work.mkdir()
    ctx.root.mkdir(exist_ok=True)
    options = f"lowerdir={stage.root},upperdir={upper},workdir={work}"
    mounts.mount(ctx.runner, ctx.stack, "overlay", ctx.root, fstype="overlay", options=options)


def save(ctx: Context, stage: Stage) -> None:
    """Move the freshly built tree into the cache and continue on an overlay above it."""
    directory = stage.directory.parent
    ctx.runner.run(["apt-get", "clean"], chroot=ctx.root)  # the .debs stay in the package cache
    mounted = mounts.mounts_below(ctx.root)
    if mounted:
        raise BuildError(f"internal error: {mounted[0]} still mounted at the stage save")
    partial = Path(tempfile.mkdtemp(prefix=".new-", dir=directory))
    fd = os.open(partial / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)  # a partial entry whose lock is free is a killed build's
    try:
        os.rename(ctx.root, partial / "root")
    except OSError as exc:  # EXDEV: the work directory is on another filesystem
        os.close(fd)
        mounts.safe_rmtree(partial)
        log.info("stage not cached: cannot move %s into %s (%s)", ctx.root, directory, exc.strerror)
        return
    info = {"inputs": stage.inputs, "created": time.strftime("%Y-%m-%d %H:%M:%S")}
    (partial / INFO).write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")
    fcntl.flock(fd, fcntl.LOCK_SH)  # from now on a reader like any other
    try:
        os.rename(partial, stage.directory)
        stage_root = stage.root
    except OSError:  # another build saved the same key meanwhile: ours serves this build only
        stage_root = partial / "root"
        ctx.stack.callback(_remove_entry, partial)
    ctx.stack.callback(os.close, fd)
    log.info("stage saved in the cache as %s", stage.directory)
    use(ctx, dataclasses.replace(stage, directory=stage_root.parent))
    evict(directory, keep=stage.key)


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
        try:
            log.info("removing a partial stage-cache entry %s (left by a killed build)", partial)
            _remove_entry(partial)
        finally:
            if fd is not None:
                os.close(fd)


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
