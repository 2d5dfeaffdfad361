"""Packages installed with apt inside the target after the bootstrap.

* The package list (--package, the kernel, sudo, acpid, ...) goes through apt.
  With ``--recommends`` Recommends are installed too: debootstrap --include
  ignores them, and a live image without them is not what anyone expects (live.rst).
* ``--custom-package``: local .deb files, installed by apt so their dependencies
  come from the build mirror (the old tool ran dpkg -i and ignored its status).

Daemons are blocked for the duration (recipe.py), apt shows no progress bars and
dpkg's per-package lines go to the log.  With --no-check-gpg apt accepts the unsigned
archive debootstrap accepted, for this step only: the image's apt keeps checking.
"""

from __future__ import annotations

import os
import re
import shutil

from .. import cache
from ..chroot import use_host_dns, write_file
from ..context import Context
from . import bootstrap, iso

DEB_DIR = "tmp/vmdebootstrap-debs"
UNCHECKED_CONF = "/etc/apt/apt.conf.d/00vmdebootstrap-no-check-gpg"
UNCHECKED = """\
// Written by vmdebootstrap --no-check-gpg for the packages step; removed after it.
Acquire::AllowInsecureRepositories "true";
APT::Get::AllowUnauthenticated "true";
"""


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
    if bootstrap.signatures_checked(ctx.settings):
        _install(ctx)
        return
    conf = write_file(ctx.root, UNCHECKED_CONF, UNCHECKED)
    try:
        _install(ctx)
    finally:
        conf.unlink(missing_ok=True)


def _install(ctx: Context) -> None:
    settings, root, run = ctx.settings, ctx.root, ctx.runner.run
    custom = settings.items("custom-package")
    use_host_dns(ctx)
    run(apt_get("update"), chroot=root)
    if settings.text("iso"):
        # Before the installation: systemd-resolved's postinst leaves the chroot without DNS.
        iso.fetch_grub(ctx)
    recommends = ["-o", f"APT::Install-Recommends={'true' if settings.flag('recommends') else 'false'}"]
    # The kernel goes last, on its own: its postinst builds the initramfs once, with every
    # initramfs hook (live-boot, ...) already in place.  Installed together, the hooks'
    # trigger builds it a second time -- ten minutes for arm64 under qemu-user.
    kernel = settings.kernel_package
    first = [p for p in settings.packages if p != kernel]
    if kernel and kernel in settings.packages and not {"initramfs-tools", "dracut"} & set(first):
        # Arriving with the kernel, initramfs-tools' own trigger would build the initramfs
        # again right after the kernel's postinst did (seen with disk images on arm64).
        first.append("initramfs-tools")
    if first:
        install_through_cache(ctx, [*recommends, "install", *first])
    if kernel and kernel in settings.packages:
        install_through_cache(ctx, [*recommends, "install", kernel])
    if custom:
        staging = root / DEB_DIR
        staging.mkdir(parents=True, exist_ok=True)
        inside = []
        for deb in custom:
            shutil.copy2(deb, staging / os.path.basename(deb))
            inside.append(f"/{DEB_DIR}/{os.path.basename(deb)}")
        use_host_dns(ctx)
        run(apt_get("install", *inside), chroot=root)
        shutil.rmtree(staging)


def install_through_cache(ctx: Context, args: list[str]) -> None:
    """apt-get ARGS, its downloads going through the shared package cache.

    Only the download runs against the cache (under its lock, bind-mounted as the
    archive directory); the files are then linked into the target's own archive
    directory and the installation runs without the cache.  apt locks its archive
    directory for a whole installation, so installing straight from the shared cache
    would make a second build wait for the first one's dpkg runs (minutes under
    emulation).
    """
    root, run = ctx.root, ctx.runner.run
    # The run before may have installed systemd-resolved, whose postinst points
    # /etc/resolv.conf into /run: the chroot would have no name server for this one.
    use_host_dns(ctx)
    debs = cache.debs_dir(ctx)
    if debs is not None:
        listing = run(apt_get("--print-uris", *args), chroot=root, capture=True, quiet=True).output
        names = re.findall(r"^'[^']+' (\S+\.deb) \d+ ", listing, re.MULTILINE)
        with cache.locked(ctx):
            with cache.apt_archives(ctx):
                run(apt_get("--download-only", *args), chroot=root)
            cache.link_into(ctx, debs, names)
    run(apt_get(*args), chroot=root)
