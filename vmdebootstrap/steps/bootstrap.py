"""Step "bootstrap": a minimal Debian in the target directory, made by mmdebstrap or
debootstrap -- or the tree of an earlier build: from the stage cache (its packages
installed too), or from the base cache (as the bootstrapper left it, basecache.py).

Reads: settings.release, .arch, .mirrors, .bootstrap, .cache_dir, .stage_cache.
Writes: the target root (and, for a disk image, its /etc/fstab); ctx.origin (which
bootstrapper, whether the tree comes from the stage or the base cache).
Undoes: nothing itself (the work directory goes as a whole; an overlay over a cached
tree is on the build's cleanup stack).

The package list is installed by apt afterwards (steps/packages.py): debootstrap
--include resolves dependencies poorly and runs maintainer scripts without our
daemon block.

mmdebstrap makes the same base system as debootstrap (its variants are debootstrap's)
in about a third of the time: one apt solve, one dpkg run per stage and no
per-package shell.  ``--bootstrapper auto`` takes it where it can serve the build
(``choose``) and debootstrap otherwise: very old releases, debootstrap-only options,
a qemu-user handler without the F flag, and a package cache on another filesystem
than the target (mmdebstrap's cache is hard links into the target, see below).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import shlex
import shutil
from pathlib import Path

from .. import archive, basecache, binfmt, cache, mounts, reproducible, stagecache
from ..cachestore import INFO, Entry
from ..chroot import write_file
from ..context import Context, Origin
from ..errors import BuildError
from ..outputs import image
from ..run import CommandFailed, CommandRunner
from ..settings import Settings
from ..stagecache import StageInputs
from ..values import Bootstrapper
from . import packages

log = logging.getLogger("vmdebootstrap")


def debootstrap_argv(settings: Settings, root: Path, cache_dir: Path | None, download_only: bool = False) -> list[str]:
    options = settings.bootstrap
    argv = ["debootstrap", f"--arch={settings.arch.name}"]
    if download_only:
        argv.append("--download-only")
    elif settings.foreign:
        argv.append("--foreign")  # first stage here, second stage under emulation below
    if options.variant:
        argv.append(f"--variant={options.variant}")
    components = settings.mirrors.components
    if components and components != ("main",):
        argv.append("--components=" + ",".join(components))
    if options.keyring:
        argv.append(f"--keyring={options.keyring}")
    if not options.check_gpg:
        if "--no-check-gpg" not in options.extra_options:
            argv.append("--no-check-gpg")
    else:
        # Without this debootstrap only warns when it cannot check the Release file.
        argv.append("--force-check-gpg")
    if cache_dir is not None:
        argv.append(f"--cache-dir={cache_dir}")
    argv += options.extra_options
    argv += [settings.release.name, os.fspath(root), settings.mirrors.build]
    if options.script is not None:
        argv.append(os.fspath(options.script))
    return argv


# Left alone, mmdebstrap merges a bookworm /usr by installing usrmerge, which pulls in perl
# (10 MiB of squashfs in a minbase image); its merged-usr hook makes the symlinks as
# debootstrap does and installs usr-is-merged, so both bootstrappers make the same system.
# From trixie on base-files ships the symlinks itself (releases.Release.merged_usr); before
# bookworm there is no usr-is-merged, and debootstrap builds.
MERGED_USR_HOOK = Path("/usr/share/mmdebstrap/hooks/merged-usr")
# apt's setting for a mirror whose Release file has expired (--no-check-valid-until): given
# to mmdebstrap, and to the image's apt for the rest of the build (the scrub removes it).
NO_VALID_UNTIL = 'Acquire::Check-Valid-Until "false"'
NO_VALID_UNTIL_CONF = "/etc/apt/apt.conf.d/00vmdebootstrap-no-check-valid-until"
# mmdebstrap's variants that mean what debootstrap's do ("" is debootstrap's default).
MMDEBSTRAP_VARIANTS = {"": "debootstrap", "minbase": "minbase", "buildd": "buildd"}


DEBOOTSTRAP = Bootstrapper.DEBOOTSTRAP


def choose(settings: Settings, workdir: Path) -> tuple[Bootstrapper, str]:
    """(bootstrapper, why) for this build, whose root is made in ``workdir``."""
    options = settings.bootstrap
    if options.tool is not Bootstrapper.AUTO:
        return options.tool, f"--bootstrapper {options.tool}"
    if not shutil.which("mmdebstrap"):
        return DEBOOTSTRAP, "mmdebstrap is not installed"
    if options.extra_options:
        return DEBOOTSTRAP, "--debootstrapopts are debootstrap's"
    if options.variant not in MMDEBSTRAP_VARIANTS:
        return DEBOOTSTRAP, f"variant {options.variant} is debootstrap's"
    if not settings.release.merged_usr:
        return DEBOOTSTRAP, f"{settings.release} predates usr-is-merged, which mmdebstrap's merged-/usr hook needs"
    if settings.release.merged_usr == "hook" and not MERGED_USR_HOOK.is_dir():
        return DEBOOTSTRAP, f"mmdebstrap's merged-/usr hook {MERGED_USR_HOOK} is missing"
    if settings.foreign and binfmt.probe(settings.arch).needs_copy:
        return DEBOOTSTRAP, "the qemu-user handler lacks the F flag"
    if settings.foreign and not shutil.which("arch-test"):
        return DEBOOTSTRAP, "mmdebstrap needs arch-test for foreign architectures"
    if not settings.root_in_memory and not _cache_beside(settings, workdir):
        return DEBOOTSTRAP, f"the package cache {cache.debs_path(settings)} is on another filesystem than the target"
    return Bootstrapper.MMDEBSTRAP, "installed"


def _cache_beside(settings: Settings, target: Path) -> bool:
    """Whether the package cache can be hard-linked into ``target`` (the root, or the work directory
    it is made in).  Looked at without making either (--cache-keys makes nothing): a directory not
    made yet will be on the filesystem of its nearest existing ancestor."""
    debs = cache.debs_path(settings)
    return debs is None or os.stat(_nearest_existing(debs)).st_dev == os.stat(_nearest_existing(target)).st_dev


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def mmdebstrap_argv(settings: Settings, root: Path, cache_dir: Path | None,
                    keyring_dir: Path | None = None) -> list[str]:
    variant = settings.bootstrap.variant
    argv = ["mmdebstrap", "--mode=root", "--format=directory", f"--arch={settings.arch.name}",
            f"--variant={MMDEBSTRAP_VARIANTS.get(variant, variant)}",
            "--components=" + ",".join(settings.mirrors.components or ("main",)),
            # The packages step runs apt-get update against the same mirror anyway.
            "--skip=cleanup/apt/lists",
            # The build is thrown away if it fails: dpkg need not fsync every file.  The
            # setting lands in /etc/dpkg/dpkg.cfg.d/99mmdebstrap, removed again below.
            "--dpkgopt=force-unsafe-io"]
    if settings.release.merged_usr == "hook" and MERGED_USR_HOOK.is_dir():
        argv.append(f"--hook-dir={MERGED_USR_HOOK}")
    if not settings.bootstrap.check_valid_until:
        argv.append(f"--aptopt={NO_VALID_UNTIL}")
    if keyring_dir is not None:
        # mmdebstrap --keyring FILE replaces only apt's Trusted file and keeps the host's
        # trusted.gpg.d; a directory holding just the keyring makes it the only one, as
        # debootstrap --keyring does.  (The aptopt file goes again with 99mmdebstrap.)
        # And mmdebstrap would add signed-by=<the archive keyring it guesses for the suite>
        # to the sources when the trusted keys lack it -- verifying against a keyring
        # the user did not name (a Release that fails with --keyring built anyway).
        argv += [f"--keyring={keyring_dir}", f"--aptopt=Dir::Etc::Trusted \"{keyring_dir}/none.gpg\"",
                 "--skip=check/signed-by"]
    if not settings.bootstrap.check_gpg:
        argv += ["--aptopt=Acquire::AllowInsecureRepositories \"true\"",
                 "--aptopt=APT::Get::AllowUnauthenticated \"true\""]
    if cache_dir is not None:
        # The shared cache: hard links in before the downloads (apt takes a file whose
        # size and hash match), hard links out afterwards.  Links are atomic and the
        # files are never written in place, so neither direction needs more than the
        # lock against a debootstrap filling the cache at the same moment.
        cache = shlex.quote(os.fspath(cache_dir))
        lock = shlex.quote(os.fspath(cache_dir.parent / "lock"))
        archives = '"$1/var/cache/apt/archives"'
        argv += [
            "--skip=essential/unlink",
            f"--setup-hook=mkdir -p {archives} && flock {lock} find {cache} -maxdepth 1 -name '*.deb' "
            f"-exec cp -l -t {archives} {{}} +",
            f"--customize-hook=for deb in {archives}/*.deb; do [ -e {cache}/\"${{deb##*/}}\" ] || "
            f"ln \"$deb\" {cache}/ 2>/dev/null || true; done",
        ]
    argv.append('--customize-hook=rm -f "$1/etc/dpkg/dpkg.cfg.d/99mmdebstrap" "$1/etc/apt/apt.conf.d/99mmdebstrap"')
    argv += [settings.release.name, os.fspath(root), settings.mirrors.build]
    return argv


@dataclasses.dataclass(frozen=True)
class Source:
    """What decide knows before it looks into the caches: what their keys are made of."""

    bootstrapper: Bootstrapper
    reason: str  # why that one
    release: bytes | None  # the suite's InRelease as the mirror serves it now; None: none came
    stage: StageInputs | None  # what the stage key hashes; None: the cache is off, or no Release file came


def source(settings: Settings, runner: CommandRunner, workdir: Path) -> Source:
    """The bootstrapper, the mirror's InRelease (fetched into ``workdir``) and the stage cache's
    inputs: decide's first half, and all cachekeys.keys_for prints the keys of, so that the keys
    it prints are a build's by construction."""
    bootstrapper, why = choose(settings, workdir)
    release = archive.release_file(runner, settings.mirrors.build, settings.release.name, workdir)
    stage = None
    if release is not None and stagecache.enabled(settings):
        stage = stagecache.inputs(settings, packages.selected(settings), bootstrapper,
                                  hashlib.sha256(release).hexdigest(), image.before_the_kernel(settings))
    return Source(bootstrapper, why, release, stage)


def decide(ctx: Context) -> None:
    """As the step starts: which bootstrapper, the build's epoch, and where the tree comes
    from (the stage cache, the base cache or the bootstrapper): ctx.origin."""
    settings = ctx.settings
    found = source(settings, ctx.runner, ctx.workdir)
    log.info("bootstrapper: %s (%s)", found.bootstrapper, found.reason)
    set_epoch(ctx, found.release)
    set_emulated_cpu(ctx)
    entry, cached = stagecache.lookup(settings, ctx.stack, found.stage)
    cached = cached and not settings.root_in_memory  # a tree on disk: see save_stage
    based = entry is not None and not cached and (basecache.entry_for(entry).directory / INFO).is_file()
    ctx.origin = Origin(found.bootstrapper, found.reason, entry, cached, base_cached=based)


def set_emulated_cpu(ctx: Context) -> None:
    """QEMU_CPU for every command of a foreign build: the architecture's fastest-to-emulate
    CPU, unless the caller's environment names one."""
    settings = ctx.settings
    cpu = os.environ.get("QEMU_CPU") or settings.arch.user_cpu
    if settings.foreign and cpu:
        ctx.runner.environment["QEMU_CPU"] = cpu
        log.info("QEMU_CPU=%s (the CPU qemu-user emulates for the %s programs)", cpu, settings.arch.name)


def _origin(ctx: Context) -> Origin:
    assert ctx.origin is not None, "the bootstrap step decides the origin as it starts (decide)"
    return ctx.origin


def set_epoch(ctx: Context, release: bytes | None) -> None:
    """SOURCE_DATE_EPOCH for every command from now on: --source-date-epoch (or the variable),
    else the Date of the release's InRelease, so that the same mirror state gives the same epoch."""
    epoch = ctx.settings.source_date_epoch
    if epoch is None and release is not None:
        epoch = archive.release_date(release)
    if epoch is None:
        log.warning("no SOURCE_DATE_EPOCH: the mirror's Release file has no Date; the outputs carry today's")
        return
    ctx.epoch = epoch
    ctx.runner.environment["SOURCE_DATE_EPOCH"] = str(epoch)
    log.info("SOURCE_DATE_EPOCH=%d (%s)", epoch, "given" if ctx.settings.source_date_epoch is not None else
             f"the Date of {ctx.settings.release}'s Release file")


def note(ctx: Context) -> str:
    origin = _origin(ctx)
    if origin.cached and origin.stage is not None:
        return f" (from the stage cache, {origin.stage.key[:12]})"
    emulated = f" [emulated {ctx.settings.arch.name}]" if ctx.settings.foreign else ""
    if origin.base_cached:
        return f" ({ctx.settings.release} {ctx.settings.arch.name}, from the base cache)"
    return f" ({ctx.settings.release} {ctx.settings.arch.name}, {origin.bootstrapper}){emulated}"


def run(ctx: Context) -> None:
    origin = _origin(ctx)
    if ctx.settings.root_in_memory:
        _root_in_memory(ctx)
    if origin.cached and origin.stage is not None:
        origin.base = "unused"
        stagecache.use(ctx.runner, ctx.stack, ctx.workdir, ctx.root, origin.stage)
        if ctx.settings.foreign:
            provide_interpreter(ctx)
    elif origin.stage is not None:
        _from_base(ctx, origin, origin.stage)
    else:
        _bootstrap(ctx, origin)
    if not ctx.settings.bootstrap.check_valid_until:
        write_file(ctx.root, NO_VALID_UNTIL_CONF, f"// vmdebootstrap --no-check-valid-until, until the scrub\n"
                                                  f"{NO_VALID_UNTIL};\n")
    if ctx.image is not None and not origin.cached:
        image.write_fstab(ctx, ctx.image)


def _root_in_memory(ctx: Context) -> None:
    """A tmpfs of the build's own at the target root (Settings.root_in_memory says why); the
    build's mount namespace takes it away if the build is killed."""
    ctx.root.mkdir(mode=0o755, exist_ok=True)
    mounts.mount(ctx.runner, ctx.stack, "vmdebootstrap-root", ctx.root, fstype="tmpfs", options="mode=0755")
    log.info("the %s root is built in memory (a tmpfs): 32-bit programs under qemu-user cannot read "
             "ext4 directories", ctx.settings.arch.name)


def _bootstrap(ctx: Context, origin: Origin) -> None:
    if origin.bootstrapper == "mmdebstrap":
        _mmdebstrap(ctx)
    else:
        _debootstrap(ctx)


def _from_base(ctx: Context, origin: Origin, stage: Entry) -> None:
    """The bootstrapped tree copied from the base cache, or bootstrapped and copied there."""
    settings = ctx.settings
    base = basecache.entry_for(stage)
    with basecache.claimed(base, f"{settings.release} {settings.arch.name}, {origin.bootstrapper}") as found:
        if found:
            log.info("the bootstrapped tree comes from the base cache (%s)", base.key[:12])
            basecache.restore(ctx.runner, base, ctx.root, settings.mirrors.components)
            if settings.foreign:
                provide_interpreter(ctx)
        else:
            _bootstrap(ctx, origin)
            basecache.save(ctx.runner, base, ctx.root, ctx.settings.cache_entries)
    origin.base = "hit" if found else "miss"


def save_stage(ctx: Context) -> None:
    """After the last step of the stage: keep the tree in the stage cache (when this build
    has an entry there and did not come from it)."""
    origin = _origin(ctx)
    if ctx.settings.root_in_memory and origin.stage is not None and not origin.cached:
        log.info("stage not cached: the root is in memory, and a cached tree on disk would give its "
                 "32-bit programs the same unreadable directories")
        return
    if origin.stage is not None and not origin.cached:
        # The .debs in the tree's apt archive are hard links to the shared package cache
        # (mmdebstrap's and cache.link_into's): cleaned away first, or clamping the tree's
        # times would change the cache's files too (the fault campaign saw it).
        ctx.runner.run(["apt-get", "clean"], chroot=ctx.root)
        if ctx.epoch is not None:  # clamped here, the overlay never copies a file up to clamp it
            reproducible.clamp_mtimes(ctx.root, ctx.epoch)
        stagecache.save(ctx.runner, ctx.stack, ctx.workdir, ctx.root, origin.stage,
                        limit=ctx.settings.cache_entries)


def _mmdebstrap(ctx: Context) -> None:
    settings = ctx.settings
    if not settings.bootstrap.check_gpg:
        log.warning("archive signatures are NOT being checked (--no-check-gpg): the image is only as "
                    "trustworthy as the network path to %s", settings.mirrors.build)
    keyring_dir = None
    keyring = settings.bootstrap.keyring
    if keyring is not None:
        keyring_dir = ctx.workdir / "keyring"
        keyring_dir.mkdir()
        suffix = ".asc" if keyring.read_bytes().lstrip().startswith(b"-----BEGIN") else ".gpg"
        shutil.copyfile(keyring, keyring_dir / f"keyring{suffix}")
    debs = cache.debs_dir(settings)
    if settings.root_in_memory:
        debs = None  # hard links cannot reach the tmpfs; the packages step copies from the cache
    elif not _cache_beside(settings, ctx.root):
        # Its cache is hard links (--bootstrapper mmdebstrap chosen by hand: auto would
        # have taken debootstrap); a copy of the whole cache would cost more than it saves.
        log.info("the package cache %s is on another filesystem than the target: mmdebstrap downloads "
                 "everything itself", debs)
        debs = None
    try:
        ctx.runner.run(mmdebstrap_argv(settings, ctx.root, debs, keyring_dir))
    except CommandFailed as exc:
        raise BuildError(_explain(exc, settings)) from exc


def _debootstrap(ctx: Context) -> None:
    settings = ctx.settings
    argv = debootstrap_argv(settings, ctx.root, cache.debs_dir(settings))
    if "--no-check-gpg" in argv:
        log.warning("archive signatures are NOT being checked (--no-check-gpg): the image is only as "
                    "trustworthy as the network path to %s", settings.mirrors.build)
    if settings.bootstrap.script is not None:
        log.info("debootstrap has no script for %s: it uses %s's, as its own symlinks do for new releases",
                 settings.release, settings.bootstrap.script.name)
    ctx.root.mkdir(mode=0o755, exist_ok=True)
    target = ctx.root  # where the failing debootstrap kept its log
    try:
        cache_dir = cache.debs_dir(settings)
        if cache_dir is not None:
            # Downloads go into the shared cache under its lock; a first, download-only run
            # holds it for seconds, so that two builds' installations run side by side.
            # (debootstrap writes a cached .deb only when it is missing or its checksum
            # is wrong; the second run finds them all and only reads.)
            target = ctx.workdir / "download"
            target.mkdir()
            with cache.locked(settings):
                ctx.runner.run(debootstrap_argv(settings, target, cache_dir, download_only=True))
            shutil.rmtree(target)
            target = ctx.root
        ctx.runner.run(argv)
        if settings.foreign:
            finish_foreign_bootstrap(ctx)
    except CommandFailed as exc:
        details = _log_debootstrap_log(target)
        raise BuildError(_explain(exc, settings, details)) from exc


def provide_interpreter(ctx: Context) -> None:
    """Without the binfmt F flag the kernel looks for qemu-user inside the chroot: copy it
    there and note it, so that the scrub at the end of the finish step removes it from the
    image.  Also called for a tree from the stage cache, which still holds the copy the cold
    build made."""
    emulation = binfmt.probe(ctx.settings.arch)
    if not emulation.needs_copy:
        return
    target = ctx.root / emulation.interpreter.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(emulation.interpreter, target)
    ctx.interpreter_copy = target
    log.info("copied %s into the target for %s (removed again at the end)", emulation.interpreter,
             emulation.handler)


def finish_foreign_bootstrap(ctx: Context) -> None:
    """debootstrap's second stage inside the target, its programs run by qemu-user."""
    provide_interpreter(ctx)
    ctx.runner.run(["/debootstrap/debootstrap", "--second-stage"], chroot=ctx.root)


def _log_debootstrap_log(root: Path) -> list[str]:
    """debootstrap keeps its details in the target, which is about to be removed."""
    path = root / "debootstrap/debootstrap.log"
    if not path.is_file():
        return []
    lines = path.read_text(errors="replace").splitlines()[-60:]
    log.error("last lines of debootstrap.log:\n  %s", "\n  ".join(lines))
    return lines


def _explain(exc: CommandFailed, settings: Settings, details: list[str] | None = None) -> str:
    """One sentence for the failures a user can fix, from debootstrap's or apt's (mmdebstrap's) words."""
    text = "\n".join(exc.tail)
    mirror, suite = settings.mirrors.build, settings.release.name
    if ("Release signed by unknown key" in text or "Invalid Release signature" in text
            or "NO_PUBKEY" in text or "EXPKEYSIG" in text or "signatures were invalid" in text):
        # (apt adds "is not signed" after NO_PUBKEY: this test must come first)
        return f"the Release file of '{suite}' from {mirror} does not verify with the keyring"
    if "Failed getting release signature" in text or "InRelease' is not signed" in text \
            or "Release' is not signed" in text:
        # The Release file came, its signature did not: an unsigned archive, not a missing one.
        return (f"the Release file of '{suite}' from {mirror} is not signed (no InRelease, no Release.gpg): "
                "refusing an unverifiable archive (--no-check-gpg builds from it anyway, insecurely)")
    if "is expired" in text:
        return (f"the Release file of '{suite}' from {mirror} has expired (its Valid-Until date has passed): the "
                "mirror is not up to date (for a snapshot or frozen mirror, --no-check-valid-until builds anyway)")
    if "Failed getting release file" in text or "does not have a Release file" in text:
        return (f"could not fetch the Release file of '{suite}' from {mirror}: the mirror is "
                f"unreachable or does not carry that release (old releases live on archive mirrors)")
    if "Keyring-based check was requested" in text or (
            "No such file or directory" in text and "keyring" in text.lower()):
        return ("debootstrap found no keyring to check the archive with (install debian-archive-keyring, "
                "or name one with --keyring)")
    # A full disk shows only in debootstrap.log (its cp and tar write there): carry the
    # line up, main names the filesystem (diskfull.py).
    full = [line.strip() for line in [*(details or []), *exc.tail] if "No space left on device" in line]
    if full:
        return f"{exc}: {full[0]}"
    return str(exc)
