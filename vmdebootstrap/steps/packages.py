"""Packages installed with apt inside the target after the bootstrap.

* The package list (--package, the kernel, sudo, acpid, ...) goes through apt.
  With ``--recommends`` Recommends are installed too: debootstrap --include
  ignores them, and a live image without them is not what anyone expects (live.rst).
* ``--custom-package``: local .deb files, installed by apt so their dependencies
  come from the build mirror (the old tool ran dpkg -i and ignored its status).

Daemons are blocked for the duration (recipe.py), apt shows no progress bars and
dpkg's per-package lines go to the log.
"""

from __future__ import annotations

import os
import shutil

from .. import cache
from ..chroot import use_host_dns
from ..context import Context
from . import iso

DEB_DIR = "tmp/vmdebootstrap-debs"


def apt_get(*args: str) -> list[str]:
    """apt-get argv for unattended runs: no prompts, no progress bars, no fsync storms."""
    return [
        "apt-get", "--yes", "--quiet",
        "-o", "Dpkg::Use-Pty=0",
        "-o", "Dpkg::Options::=--force-confdef",
        "-o", "Dpkg::Options::=--force-confold",
        # The image is thrown away if the build fails, so dpkg need not fsync every file.
        "-o", "Dpkg::Options::=--force-unsafe-io",
        *args,
    ]  # fmt: skip


def needed(ctx: Context) -> bool:
    return bool(ctx.settings.items("custom-package") or ctx.settings.packages)


def install(ctx: Context) -> None:
    settings, root, run = ctx.settings, ctx.root, ctx.runner.run
    custom = settings.items("custom-package")
    use_host_dns(ctx)
    with cache.locked(ctx), cache.apt_archives(ctx):
        run(apt_get("update"), chroot=root)
        if settings.text("iso"):
            # Before the installation: systemd-resolved's postinst leaves the chroot without DNS.
            iso.fetch_grub(ctx)
        if settings.packages:
            recommends = "true" if settings.flag("recommends") else "false"
            run(apt_get("-o", f"APT::Install-Recommends={recommends}", "install", *settings.packages),
                chroot=root)
        if custom:
            staging = root / DEB_DIR
            staging.mkdir(parents=True, exist_ok=True)
            inside = []
            for deb in custom:
                shutil.copy2(deb, staging / os.path.basename(deb))
                inside.append(f"/{DEB_DIR}/{os.path.basename(deb)}")
            run(apt_get("install", *inside), chroot=root)
            shutil.rmtree(staging)
