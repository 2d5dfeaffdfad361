"""Bootstrap: debootstrap a minimal Debian into the target directory.

Reads: arch, distribution, mirror, variant, components, keyring, check-gpg,
debootstrapopts, cache-dir.  The package list is installed by apt afterwards
(steps/packages.py): debootstrap --include resolves dependencies poorly and runs
maintainer scripts without our daemon block.
Writes: the target root.  Undoes: nothing (the work directory goes as a whole).

The bootstrapper is this one module: another one (mmdebstrap) can take its place
by offering the same ``bootstrap(ctx)``.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from .. import binfmt, cache
from ..context import Context
from ..errors import BuildError
from ..run import CommandFailed
from ..settings import Settings

log = logging.getLogger("vmdebootstrap")


def extra_options(settings: Settings) -> list[str]:
    """--debootstrapopts "variant=buildd no-check-gpg" -> --variant=buildd --no-check-gpg."""
    return [f"--{token}" for value in settings.items("debootstrapopts") for token in value.split()]


def signatures_checked(settings: Settings) -> bool:
    """False with --no-check-gpg (or --debootstrapopts no-check-gpg): the archive is taken unverified."""
    return settings.flag("check-gpg") and "--no-check-gpg" not in extra_options(settings)


def debootstrap_argv(settings: Settings, root: Path, cache_dir: Path | None, download_only: bool = False) -> list[str]:
    argv = ["debootstrap", f"--arch={settings.arch}"]
    if download_only:
        argv.append("--download-only")
    elif settings.foreign:
        argv.append("--foreign")  # first stage here, second stage under emulation below
    if settings.text("variant"):
        argv.append(f"--variant={settings.text('variant')}")
    components = settings.items("components")
    if components and components != ["main"]:
        argv.append("--components=" + ",".join(components))
    if settings.text("keyring"):
        argv.append(f"--keyring={settings.text('keyring')}")
    extra = extra_options(settings)
    if not signatures_checked(settings):
        if "--no-check-gpg" not in extra:
            argv.append("--no-check-gpg")
    else:
        # Without this debootstrap only warns when it cannot check the Release file.
        argv.append("--force-check-gpg")
    if cache_dir is not None:
        argv.append(f"--cache-dir={cache_dir}")
    argv += extra
    argv += [settings.suite, os.fspath(root), settings.text("mirror")]
    return argv


def bootstrap(ctx: Context) -> None:
    settings = ctx.settings
    argv = debootstrap_argv(settings, ctx.root, cache.debs_dir(ctx))
    if "--no-check-gpg" in argv:
        log.warning("archive signatures are NOT being checked (--no-check-gpg): the image is only as "
                    "trustworthy as the network path to %s", settings.text("mirror"))
    ctx.root.mkdir(mode=0o755, exist_ok=True)  # a disk image's root is mounted there already
    target = ctx.root  # where the failing debootstrap kept its log
    try:
        cache_dir = cache.debs_dir(ctx)
        if cache_dir is not None:
            # Downloads go into the shared cache under its lock; a first, download-only run
            # holds it for seconds, so that two builds' installations run side by side.
            # (debootstrap writes a cached .deb only when it is missing or its checksum
            # is wrong; the second run finds them all and only reads.)
            target = ctx.workdir / "download"
            target.mkdir()
            with cache.locked(ctx):
                ctx.runner.run(debootstrap_argv(settings, target, cache_dir, download_only=True))
            shutil.rmtree(target)
            target = ctx.root
        ctx.runner.run(argv)
        if settings.foreign:
            second_stage(ctx)
    except CommandFailed as exc:
        details = _log_debootstrap_log(target)
        raise BuildError(_explain(exc, settings, details)) from exc


def second_stage(ctx: Context) -> None:
    """Finish a foreign bootstrap inside the target, its programs run by qemu-user."""
    emulation = binfmt.probe(ctx.settings.arch)
    if emulation.needs_copy:
        # Without the F flag the kernel looks for the interpreter inside the chroot.
        target = ctx.root / emulation.interpreter.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(emulation.interpreter, target)
        ctx.interpreter_in_target = target
        log.info("copied %s into the target for %s (removed again at the end)", emulation.interpreter,
                 emulation.handler)
    # The environment is built from scratch by the runner: the host cannot override
    # DEBIAN_FRONTEND and friends (the old tool let it, §6.4 item 13).
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
    text = "\n".join(exc.tail)
    mirror, suite = settings.text("mirror"), settings.suite
    if "Failed getting release signature" in text:
        # The Release file came, its signature did not: an unsigned archive, not a missing one.
        return (f"the Release file of '{suite}' from {mirror} is not signed (no InRelease, no Release.gpg): "
                "refusing an unverifiable archive (--no-check-gpg builds from it anyway, insecurely)")
    if "Failed getting release file" in text:
        return (f"debootstrap could not fetch the Release file of '{suite}' from {mirror}: the mirror is "
                f"unreachable or does not carry that release (old releases live on archive mirrors)")
    if "Release signed by unknown key" in text or "Invalid Release signature" in text:
        return f"the Release file of '{suite}' from {mirror} does not verify with the keyring"
    if "Keyring-based check was requested" in text or (
            "No such file or directory" in text and "keyring" in text.lower()):
        return ("debootstrap found no keyring to check the archive with (install debian-archive-keyring, "
                "or name one with --keyring)")
    # A full disk shows only in debootstrap.log (its cp and tar write there): carry the
    # line up, main names the filesystem (diskfull.py).
    full = [line.strip() for line in details or [] if "No space left on device" in line]
    if full:
        return f"{exc}: {full[0]}"
    return str(exc)
