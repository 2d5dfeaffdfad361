"""Step "packages": the package list, installed with apt inside the target after the bootstrap.

Reads: settings (``selected`` below makes the list), the package cache.
Writes: packages into the target.  Undoes: the no-check-gpg apt setting it adds.
The recipe blocks daemons and mounts the API filesystems around it (its own session).

* The package list (--package, the kernel, sudo, acpid, ...) goes through apt.
  With ``--recommends`` Recommends are installed too: debootstrap --include
  ignores them, and a live image without them is not what anyone expects (live.rst).
* ``--custom-package``: local .deb files, installed by apt so that their dependencies
  come from the build mirror (dpkg -i would leave them unresolved).

Daemons are blocked for the duration (recipe.py), apt shows no progress bars and
dpkg's per-package lines go to the log.  With --no-check-gpg apt accepts the unsigned
archive debootstrap accepted, for this step only: the image's apt keeps checking.
"""

from __future__ import annotations

import re
import shutil

from .. import cache, outputs
from ..bootloaders import loader
from ..chroot import use_host_dns, write_file
from ..context import Context
from ..settings import Settings
from . import users

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


def selected(settings: Settings) -> tuple[str, ...]:
    """The packages the image gets beyond the bootstrap, in this order, de-duplicated: --package,
    what the outputs need, acpid, sudo, adduser for --user, ca-certificates for an https apt
    mirror, the kernel, what the bootloader needs (docs/compatibility.md)."""
    chosen = list(settings.packages)
    for kind in outputs.wanted(settings):
        chosen += kind.packages(settings)
    if settings.acpid:
        chosen.append("acpid")
    if settings.sudo:
        chosen.append("sudo")
    chosen += users.packages(settings)
    chosen += apt_transport_packages(settings)
    if settings.kernel_package:
        chosen.append(settings.kernel_package)
        # initramfs-tools only Recommends zstd and falls back to gzip, which is slower to
        # build (minutes under qemu-user) and to boot.
        if settings.release.initramfs_zstd:
            chosen.append("zstd")
    if settings.disk is not None:
        chosen += loader.load(settings.disk.bootloader).packages(settings)
    # bookworm split systemd-resolved out of systemd; networkd alone cannot resolve names.
    # Only for bootable systems: a kernel-less tarball (a container) gets no network stack.
    if settings.networkd and settings.kernel_package and settings.release.resolved_split:
        chosen.append("systemd-resolved")
    return tuple(dict.fromkeys(p for p in chosen if p))


def apt_transport_packages(settings: Settings) -> list[str]:
    """What the image's own apt needs for the sources it is left with: the CA store for an https
    mirror (apt verifies it; without ca-certificates every update fails), as mmdebstrap adds it."""
    mirror = settings.mirrors.image if settings.configure_apt else settings.mirrors.build
    return ["ca-certificates"] if mirror.startswith("https://") else []


def needed(settings: Settings) -> bool:
    return bool(settings.custom_packages or selected(settings))


def note(ctx: Context) -> str:
    emulated = f" [emulated {ctx.settings.arch.name}]" if ctx.settings.foreign else ""
    return f" ({len(selected(ctx.settings))} requested){emulated}"


def run(ctx: Context) -> None:
    if ctx.settings.bootstrap.check_gpg:
        _install(ctx)
        return
    conf = write_file(ctx.root, UNCHECKED_CONF, UNCHECKED)
    try:
        _install(ctx)
    finally:
        conf.unlink(missing_ok=True)


def _install(ctx: Context) -> None:
    settings, root, run = ctx.settings, ctx.root, ctx.runner.run
    custom = settings.custom_packages
    wanted = selected(settings)
    use_host_dns(ctx)
    run(apt_get("update"), chroot=root)
    recommends = ["-o", f"APT::Install-Recommends={'true' if settings.recommends else 'false'}"]
    # The kernel goes last, on its own: its postinst builds the initramfs once, with every
    # initramfs hook (live-boot, ...) already in place.  Installed together, the hooks'
    # trigger builds it a second time -- ten minutes for arm64 under qemu-user.
    kernel = settings.kernel_package
    first = [p for p in wanted if p != kernel]
    if kernel and kernel in wanted and not {"initramfs-tools", "dracut"} & set(first):
        # Arriving with the kernel, initramfs-tools' own trigger would build the initramfs
        # again right after the kernel's postinst did (seen with disk images on arm64).
        first.append("initramfs-tools")
    if first:
        install_through_cache(ctx, [*recommends, "install", *first])
    if kernel and kernel in wanted:
        install_through_cache(ctx, [*recommends, "install", kernel])
    if custom:
        copies = root / DEB_DIR
        copies.mkdir(parents=True, exist_ok=True)
        for deb in custom:
            shutil.copy2(deb, copies / deb.name)
        use_host_dns(ctx)
        run(apt_get("install", *(f"/{DEB_DIR}/{deb.name}" for deb in custom)), chroot=root)
        shutil.rmtree(copies)


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
    debs = cache.debs_dir(ctx.settings)
    if debs is not None:
        listing = run(apt_get("--print-uris", *args), chroot=root, capture=True, quiet=True).output
        names = re.findall(r"^'[^']+' (\S+\.deb) \d+ ", listing, re.MULTILINE)
        with cache.locked(ctx.settings):
            with cache.apt_archives(ctx):
                run(apt_get("--download-only", *args), chroot=root)
            cache.link_into(ctx, debs, names)
    run(apt_get(*args), chroot=root)
