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
from pathlib import Path

from .. import cache
from ..context import Context
from ..errors import BuildError
from ..run import CommandFailed
from ..settings import Settings

log = logging.getLogger("vmdebootstrap")


def extra_options(settings: Settings) -> list[str]:
    """--debootstrapopts "variant=buildd no-check-gpg" -> --variant=buildd --no-check-gpg."""
    return [f"--{token}" for value in settings.items("debootstrapopts") for token in value.split()]


def debootstrap_argv(settings: Settings, root: Path, cache_dir: Path | None) -> list[str]:
    argv = ["debootstrap", f"--arch={settings.arch}"]
    if settings.text("variant"):
        argv.append(f"--variant={settings.text('variant')}")
    components = settings.items("components")
    if components and components != ["main"]:
        argv.append("--components=" + ",".join(components))
    if settings.text("keyring"):
        argv.append(f"--keyring={settings.text('keyring')}")
    extra = extra_options(settings)
    if not settings.flag("check-gpg") or "--no-check-gpg" in extra:
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
    ctx.root.mkdir(mode=0o755)
    try:
        ctx.runner.run(argv)
    except CommandFailed as exc:
        _log_debootstrap_log(ctx.root)
        raise BuildError(_explain(exc, settings)) from exc


def _log_debootstrap_log(root: Path) -> None:
    """debootstrap keeps its details in the target, which is about to be removed."""
    path = root / "debootstrap/debootstrap.log"
    if path.is_file():
        lines = path.read_text(errors="replace").splitlines()[-60:]
        log.error("last lines of debootstrap.log:\n  %s", "\n  ".join(lines))


def _explain(exc: CommandFailed, settings: Settings) -> str:
    text = "\n".join(exc.tail)
    mirror, suite = settings.text("mirror"), settings.suite
    if "Failed getting release file" in text or "Failed getting release signature" in text:
        return (f"debootstrap could not fetch the Release file of '{suite}' from {mirror}: the mirror is "
                f"unreachable or does not carry that release (old releases live on archive mirrors)")
    if "Release signed by unknown key" in text or "Invalid Release signature" in text:
        return f"the Release file of '{suite}' from {mirror} does not verify with the keyring"
    if "No such file or directory" in text and "keyring" in text.lower():
        return "debootstrap found no keyring to check the archive with"
    return str(exc)
